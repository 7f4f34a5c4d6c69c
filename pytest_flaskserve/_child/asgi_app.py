"""Runs in the server: the app as an ASGI app, the way Flask's ASGI page wraps it.

``asgiref.wsgi.WsgiToAsgi(app)``, with the app built by the generated entry module
(``FLASKSERVE_ENTRY``), exactly once. An ASGI server imports ``app`` from here.
"""

from asgiref.wsgi import WsgiToAsgi

from pytest_flaskserve._entry import app as _wsgi_app

app = WsgiToAsgi(_wsgi_app)  # type: ignore[no-untyped-call, unused-ignore]

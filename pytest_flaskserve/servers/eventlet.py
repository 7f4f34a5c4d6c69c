"""eventlet's WSGI server: ``eventlet.wsgi.server(eventlet.listen((HOST, PORT)), app)``.

Flask's "Deploying to Production" (up to Flask 3.0; later versions say eventlet is no
longer maintained and point to gevent) runs it from a small script that imports the
server and the app; the plugin ships that script (``pytest_flaskserve._child.
eventlet_server``), so every spec form reaches it through the generated entry module. It
does not monkey-patch, as the docs' script does not. One process, one green thread per
connection; SIGTERM ends it at once (exit -15).
"""

from __future__ import annotations

from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.shipped_script import ShippedScriptServer


@register
class Eventlet(ShippedScriptServer):
    name = "eventlet"
    description = "eventlet.wsgi.server(eventlet.listen((HOST, PORT)), app) (green threads)"
    requires = "eventlet"
    install_hint = "pip install 'pytest-flaskserve[eventlet]'"
    entry = "pytest_flaskserve._child.eventlet_server"
    serves_with = "eventlet.wsgi.server"
    docs_page = "eventlet"

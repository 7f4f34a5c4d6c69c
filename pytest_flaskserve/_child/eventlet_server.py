"""Runs in the server: eventlet's WSGI server, the way Flask's docs deploy with eventlet.

``python -m pytest_flaskserve._child.eventlet_server HOST:PORT`` builds the app through the
generated entry module (``FLASKSERVE_ENTRY``) and runs
``eventlet.wsgi.server(eventlet.listen((HOST, PORT)), app)``, the docs' script. Like the
docs it does not monkey-patch: an app that wants that calls ``eventlet.monkey_patch()``
itself. SIGTERM ends it at once (exit -15). With ``FLASKSERVE_TLS_CERT`` and
``FLASKSERVE_TLS_KEY`` set the socket is wrapped with ``eventlet.wrap_ssl``.
"""

import os
import socket
import sys

import eventlet
from eventlet import wsgi


def main() -> None:
    host, _, port_text = sys.argv[1].rpartition(":")
    host, port = host.strip("[]"), int(port_text)
    from pytest_flaskserve._entry import app

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = eventlet.listen((host, port), family=family)
    if "FLASKSERVE_TLS_CERT" in os.environ:  # with TLS: eventlet's documented wrap_ssl
        sock = eventlet.wrap_ssl(sock, certfile=os.environ["FLASKSERVE_TLS_CERT"],
                                 keyfile=os.environ["FLASKSERVE_TLS_KEY"], server_side=True)
    wsgi.server(sock, app)


if __name__ == "__main__":
    main()

"""Runs in the server: gevent's WSGI server, the way Flask's docs deploy with gevent.

``python -m pytest_flaskserve._child.gevent_server HOST:PORT`` patches the standard
library first (``monkey.patch_all()``, before anything else imports ``socket`` or
``threading``), then builds the app through the generated entry module
(``FLASKSERVE_ENTRY``) and serves it with ``gevent.pywsgi.WSGIServer`` until it is
signalled. SIGTERM ends it at once (exit -15), as it ends the script in the docs. With
``FLASKSERVE_TLS_CERT`` and ``FLASKSERVE_TLS_KEY`` set it serves HTTPS with them.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402 - after the patch, which must come first
import sys  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402


def main() -> None:
    host, _, port_text = sys.argv[1].rpartition(":")
    host, port = host.strip("[]"), int(port_text)
    from pytest_flaskserve._entry import app

    # with TLS, the certificate the launcher was given (WSGIServer's ssl arguments)
    tls = {}
    if "FLASKSERVE_TLS_CERT" in os.environ:
        tls = {"certfile": os.environ["FLASKSERVE_TLS_CERT"],
               "keyfile": os.environ["FLASKSERVE_TLS_KEY"]}
    server = WSGIServer((host, port), app, **tls)
    print(f"gevent WSGIServer serving on http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

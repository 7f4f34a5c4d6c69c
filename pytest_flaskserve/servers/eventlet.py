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
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest, ignored_args

ENTRY = "pytest_flaskserve._child.eventlet_server"


@register
class Eventlet(Launcher):
    name = "eventlet"
    description = "eventlet.wsgi.server(eventlet.listen((HOST, PORT)), app) (green threads)"
    requires = "eventlet"
    install_hint = "pip install 'pytest-flaskserve[eventlet]'"
    default = False
    #: the script gives the server the certificate (FLASKSERVE_TLS_CERT / _KEY)
    terminates_tls = True
    exit_codes = {1: "the app failed to import or the address is in use (the traceback is "
                     "in the log)"}

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app = request.app
        argv = [request.python, "-m", ENTRY, request.address]
        env = self.entry_env(app)
        if request.tls is not None:
            env.update(FLASKSERVE_TLS_CERT=str(request.tls.cert_path),
                       FLASKSERVE_TLS_KEY=str(request.tls.key_path))
        return LaunchPlan(argv=argv, env=env, notes=ignored_args(request) + (
            f"{app.describe()} is served by eventlet.wsgi.server from {ENTRY}, the script "
            "Flask's eventlet page shows",))

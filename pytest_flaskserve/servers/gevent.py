"""gevent's own WSGI server: ``gevent.pywsgi.WSGIServer`` after ``monkey.patch_all()``.

Flask's "Deploying to Production" runs gevent from a small script that imports the
server and the app; the plugin ships that script (``pytest_flaskserve._child.
gevent_server``), so every spec form reaches it through the generated entry module. One
process, one greenlet per connection; the standard library is patched first, so an app
whose blocking calls misbehave under gevent shows it here. SIGTERM ends it at once
(exit -15: the docs' script installs no handler, and gevent has none of its own).
"""

from __future__ import annotations

from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest, ignored_args

ENTRY = "pytest_flaskserve._child.gevent_server"


@register
class Gevent(Launcher):
    name = "gevent"
    description = "gevent.pywsgi.WSGIServer((HOST, PORT), app) after monkey.patch_all() (greenlets)"
    requires = "gevent"
    install_hint = "pip install 'pytest-flaskserve[gevent]'"
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
            f"{app.describe()} is served by gevent.pywsgi.WSGIServer from {ENTRY}, the "
            "script Flask's gevent page shows",))

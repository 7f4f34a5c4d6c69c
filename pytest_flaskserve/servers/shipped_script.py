"""A server run from a small script the plugin ships under ``_child/`` (Flask's deployment
pages run gevent and eventlet that way): the base of those launchers."""

from __future__ import annotations

from typing import ClassVar

from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest, ignored_args


class ShippedScriptServer(Launcher):
    """``python -m ENTRY HOST:PORT`` with the app named by the generated entry's environment;
    the script gives the server our certificate (``FLASKSERVE_TLS_CERT`` / ``_KEY``)."""

    #: the module run as the server's main (under ``pytest_flaskserve._child``)
    entry: ClassVar[str]
    #: how the script serves, for the -v note ("gevent.pywsgi.WSGIServer")
    serves_with: ClassVar[str]
    #: the Flask docs page the script follows, for the -v note
    docs_page: ClassVar[str]
    default = False
    #: each script (gevent's, eventlet's) patches first, as their docs' scripts do
    cold_reason = "it monkey-patches the standard library before anything else imports it"
    terminates_tls = True
    exit_codes = {1: "the app failed to import or the address is in use (the traceback is "
                     "in the log)"}

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app = request.app
        env = self.entry_env(app)
        if request.tls is not None:
            env.update(FLASKSERVE_TLS_CERT=str(request.tls.cert_path),
                       FLASKSERVE_TLS_KEY=str(request.tls.key_path))
        return LaunchPlan(argv=[request.python, "-m", self.entry, request.address], env=env,
                          notes=ignored_args(request) + (
                              f"{app.describe()} is served by {self.serves_with} from "
                              f"{self.entry}, the script Flask's {self.docs_page} page shows",))

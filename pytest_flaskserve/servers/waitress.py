"""Waitress: ``python -m waitress --listen=127.0.0.1:PORT module:app``.

Waitress takes ``module:name`` and ``--call module:factory`` (no arguments); a factory
with arguments goes through the generated entry module.
"""

from __future__ import annotations

import re

from pytest_flaskserve.deploy.listen import HostPortFlags, Rewriter
from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest


@register
class Waitress(Launcher):
    name = "waitress"
    description = "python -m waitress --listen=HOST:PORT MODULE:APP (threaded, pure Python)"
    requires = "waitress"
    install_hint = "pip install 'pytest-flaskserve[waitress]'"
    starts_warm = True
    warm_preload = ("waitress", "waitress.runner", "waitress.server", "waitress.task",
                    "waitress.channel")
    missing_attribute_wordings = ((re.compile(r"Bad object name '(\w+)'"), 1),)
    listening_wordings = ("Serving on",)
    exit_codes = {1: "Waitress could not import the app or the object is not callable"}
    commands = ("waitress-serve", "waitress")

    def deploy_rewriter(self) -> Rewriter:
        # waitress-serve reads its options with getopt: they go before the app
        return HostPortFlags(host=("--host",), port=("--port",), listen=("--listen",),
                             unix=("--unix-socket",), default="0.0.0.0:8080")

    def tls_unsupported(self) -> str | None:
        return ("Waitress has no TLS support (by design: it is deployed behind a proxy "
                "that terminates TLS); run it behind nginx for HTTPS")

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app, opts = request.app, request.options
        argv = [request.python, "-m", "waitress", f"--listen={request.address}"]
        if opts.threads:
            argv.append(f"--threads={opts.threads}")
        argv += list(opts.extra_args)
        if (app.is_factory and not (app.args or app.kwargs) and app.dotted_module
                and not app.app_settings):  # config is applied by the generated entry
            argv += ["--call", f"{app.module}:{app.attr}"]
            return LaunchPlan(argv=argv)
        ref, env, notes = self.target(app, call_syntax=False, call_arguments=False,
                                      why="Waitress's --call takes no arguments")
        argv.append(ref)
        return LaunchPlan(argv=argv, env=env, notes=notes)

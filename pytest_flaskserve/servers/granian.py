"""Granian: ``python -m granian --interface wsgi --host H --port P MODULE:APP``.

Granian is a Rust HTTP server; its Python main process forks worker processes
(multiprocessing) that import the app, so a broken app shows as a worker that exits and a
main process that shuts down with exit code 1. It reads ``MODULE:ATTR`` like Flask and can
call a factory without arguments (``--factory``); a factory with arguments goes through
the generated entry module. Under coverage the app is served through
``pytest_flaskserve._traced_entry`` (see there). Every behaviour flag is passed explicitly because Granian also
reads ``GRANIAN_*`` environment variables, and a stray ``GRANIAN_FACTORY`` or
``GRANIAN_INTERFACE`` would otherwise change what is served.
"""

from __future__ import annotations

from pytest_flaskserve import coverage_support
from pytest_flaskserve.deploy.listen import HostPortFlags, Rewriter
from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest, StopStrategy


@register
class Granian(Launcher):
    name = "granian"
    description = "python -m granian --interface wsgi --host HOST --port PORT MODULE:APP (Rust)"
    requires = "granian"
    install_hint = "pip install 'pytest-flaskserve[granian]'"
    starts_warm = True
    warm_preload = ("granian", "granian.cli", "granian.server")
    #: it also reads GRANIAN_* variables: a stray GRANIAN_FACTORY would change what is served
    scrubbed_env_prefixes = ("GRANIAN_",)
    #: our SIGTERM to the group reached the worker before the main process had handled its
    #: own: "Unexpected exit from worker-1" and exit 1 instead of 0 (seen in CI)
    stop_strategy = StopStrategy.LEADER_FIRST
    terminates_tls = True
    commands = ("granian",)

    def deploy_rewriter(self) -> Rewriter:
        return HostPortFlags(host=("--host",), port=("--port",), default="127.0.0.1:8000",
                             unix=("--uds",))
    exit_codes = {
        1: "Granian stopped because its worker exited: usually the app failed to import or "
           "the name after ':' is wrong (the worker's traceback is in the log)",
    }

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app, opts = request.app, request.options
        argv = [
            request.python, "-m", "granian",
            "--interface", "wsgi",
            "--host", request.host,
            "--port", str(request.port),
            "--workers", str(opts.workers or 1),
            # a WSGI app has no websockets; saying so keeps an info line out of the log
            "--no-ws",
        ]
        if request.tls is not None:
            argv += ["--ssl-certificate", str(request.tls.cert_path),
                     "--ssl-keyfile", str(request.tls.key_path)]
        if opts.threads:
            argv += ["--blocking-threads", str(opts.threads)]
        if coverage_support.measuring():
            # Granian runs requests on its own threads, which coverage does not trace.
            argv.append("--no-factory")
            argv += list(opts.extra_args)
            argv.append("pytest_flaskserve._traced_entry:app")
            return LaunchPlan(argv=argv, env=self.entry_env(app), notes=(
                f"coverage: {app.describe()} is served through pytest_flaskserve._traced_entry "
                "so that requests on Granian's threads are measured",))
        if (app.is_factory and not (app.args or app.kwargs) and app.dotted_module
                and not app.app_settings):  # config is applied by the generated entry
            argv += ["--factory", *opts.extra_args, f"{app.module}:{app.attr}"]
            return LaunchPlan(argv=argv)
        ref, env, notes = self.target(app, call_syntax=False, call_arguments=False,
                                      why="Granian's --factory calls the factory without "
                                          "arguments")
        argv += ["--no-factory", *opts.extra_args, ref]
        return LaunchPlan(argv=argv, env=env, notes=notes)

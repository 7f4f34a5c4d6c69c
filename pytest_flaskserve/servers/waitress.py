"""Waitress: ``python -m waitress --listen=127.0.0.1:PORT module:app``.

Waitress takes ``module:name`` and ``--call module:factory`` (no arguments); a factory
with arguments goes through the generated entry module.
"""

from __future__ import annotations

from . import register
from .base import Launcher, LaunchPlan, LaunchRequest


@register
class Waitress(Launcher):
    name = "waitress"
    description = "python -m waitress --listen=HOST:PORT MODULE:APP (threaded, pure Python)"
    requires = "waitress"
    install_hint = "pip install 'pytest-flaskserve[waitress]'"
    exit_codes = {1: "Waitress could not import the app or the object is not callable"}

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app, opts = request.app, request.options
        host = f"[{request.host}]" if ":" in request.host else request.host
        argv = [request.python, "-m", "waitress", f"--listen={host}:{request.port}"]
        if opts.threads:
            argv.append(f"--threads={opts.threads}")
        argv += list(opts.extra_args)
        env: dict[str, str] = {}
        notes: tuple[str, ...] = ()
        if not app.dotted_module:
            argv.append("pytest_flaskserve._entry:app")
            env = self.entry_env(app)
            notes = (f"generated entry module for {app.describe()}: Waitress's "
                     f"'module:object' syntax rejects the module name {app.module!r}",)
        elif not app.is_factory:
            argv.append(f"{app.module}:{app.attr}")
        elif not (app.args or app.kwargs):
            argv += ["--call", f"{app.module}:{app.attr}"]
        else:
            argv.append("pytest_flaskserve._entry:app")
            env = self.entry_env(app)
            notes = (f"generated entry module for {app.describe()}: Waitress's --call takes no arguments",)
        return LaunchPlan(argv=argv, env=env, notes=notes)

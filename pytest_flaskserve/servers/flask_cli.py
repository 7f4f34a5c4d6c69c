"""``flask run``: Flask's own development server, driven by its own CLI."""

from __future__ import annotations

from .base import Launcher, LaunchPlan, LaunchRequest
from . import register


@register
class FlaskRun(Launcher):
    name = "flask-run"
    description = "python -m flask --app SPEC run (Werkzeug development server)"
    production = False
    supports_reload = True
    exit_codes = {2: "flask CLI usage error: the app could not be found or loaded"}

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        opts = request.options
        argv = [request.python, "-m", "flask", "--app", request.app.spec.raw]
        if opts.debug:
            argv.append("--debug")
        argv += ["run", "--host", request.host, "--port", str(request.port)]
        argv.append("--reload" if opts.reload else "--no-reload")
        if opts.threads == 1:
            argv.append("--without-threads")
        argv += list(opts.extra_args)
        return LaunchPlan(argv=argv)

"""Gunicorn: ``python -m gunicorn module:app`` (it calls ``module:factory(args)`` itself)."""

from __future__ import annotations

from .base import Launcher, LaunchPlan, LaunchRequest
from . import register


@register
class Gunicorn(Launcher):
    name = "gunicorn"
    description = "python -m gunicorn MODULE:APP (pre-fork, sync workers by default)"
    requires = "gunicorn"
    install_hint = "pip install 'pytest-flaskserve[gunicorn]'"
    supports_reload = True
    exit_codes = {
        1: "Gunicorn could not start (bad option or the address is in use)",
        3: "a worker failed to boot (Gunicorn's WORKER_BOOT_ERROR)",
        4: "the app failed to load (Gunicorn's APP_LOAD_ERROR)",
    }

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        opts = request.options
        ref = request.app.reference(call_syntax=True, call_arguments=True)
        assert ref is not None
        argv = [
            request.python, "-m", "gunicorn",
            "--bind", f"{request.host}:{request.port}",
            "--workers", str(opts.workers or 1),
            # parallel instances would overwrite each other's ~/.gunicorn/gunicorn.ctl
            "--no-control-socket",
            # stop quickly: an idle test server has no request worth 30 s of grace
            "--graceful-timeout", "2",
        ]
        if opts.threads:
            argv += ["--threads", str(opts.threads)]
        if opts.worker_class:
            argv += ["--worker-class", opts.worker_class]
        if opts.reload:
            argv.append("--reload")
        argv += list(opts.extra_args)
        argv.append(ref)
        return LaunchPlan(argv=argv)

"""uWSGI: the ``uwsgi`` binary (the ``uwsgi`` or ``pyuwsgi`` distribution).

``--need-app`` makes a broken app exit (22) instead of answering 500, ``--die-on-term``
makes SIGTERM a stop instead of a reload, ``--http-socket`` lets the worker speak HTTP
itself (no router process). uWSGI cannot call a factory, so factories go through the
generated entry module.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .base import Launcher, LaunchPlan, LaunchRequest
from . import register


def find_uwsgi() -> str | None:
    """The uwsgi binary of this environment first, then one on PATH."""
    local = Path(sys.executable).parent / "uwsgi"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("uwsgi")


@register
class UWSGI(Launcher):
    name = "uwsgi"
    description = "uwsgi --http-socket HOST:PORT --master --need-app --module MODULE:APP"
    install_hint = "pip install 'pytest-flaskserve[uwsgi]' (compiles) or pip install pyuwsgi"
    exit_codes = {
        1: "uWSGI could not start (bad option, the address is in use, or Python failed)",
        22: "no app could be loaded (uWSGI's --need-app): import error or wrong callable",
    }

    def unavailable(self) -> str | None:
        if find_uwsgi() is None:
            return f"uwsgi is not installed in this environment ({self.install_hint})"
        return None

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app, opts = request.app, request.options
        binary = find_uwsgi()
        assert binary is not None
        argv = [
            binary,
            "--http-socket", f"{request.host}:{request.port}",
            "--master", "--processes", str(opts.workers or 1),
            "--need-app", "--die-on-term", "--no-orphans",
            "--pythonpath", app.path_entry,
        ]
        if sys.prefix != sys.base_prefix:
            argv += ["--home", sys.prefix]
        if opts.threads:
            argv += ["--enable-threads", "--threads", str(opts.threads)]
        if opts.reload:
            argv += ["--py-autoreload", "1"]
        argv += list(opts.extra_args)
        env: dict[str, str] = {}
        notes: tuple[str, ...] = ()
        ref = app.reference(call_syntax=False, call_arguments=False)
        if ref is None:
            ref = "pytest_flaskserve._entry:app"
            env = self.entry_env(app)
            notes = (f"generated entry module for {app.describe()}: uWSGI cannot call a factory",)
        argv += ["--module", ref]
        return LaunchPlan(argv=argv, env=env, notes=notes)

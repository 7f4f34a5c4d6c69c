"""``flask run``: Flask's own development server, driven by its own CLI."""

from __future__ import annotations

import os
import re

from pytest_flaskserve.deploy.listen import HostPortFlags, Rewriter
from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest
from pytest_flaskserve.servers.reloading import (
    WERKZEUG_DETECTED,
    WERKZEUG_RESTARTED,
    WERKZEUG_TYPES,
    ReloadProfile,
)


@register
class FlaskRun(Launcher):
    name = "flask-run"
    description = "python -m flask --app SPEC run (Werkzeug development server)"
    production = False
    proxy_protocol = None  # a development server: never deployed behind a proxy
    supports_reload = True
    reload_profile = ReloadProfile(
        "flask-run", WERKZEUG_DETECTED, WERKZEUG_RESTARTED, WERKZEUG_RESTARTED,
        "flask run was started without --reload", werkzeug=True, werkzeug_cli=True,
        types=WERKZEUG_TYPES,
    )
    starts_warm = True
    #: what ``python -m flask run`` imports before the app
    warm_preload = ("flask.cli", "werkzeug.serving")
    warm_entry_point_groups = ("flask.commands",)  # Flask's CLI plugins
    missing_attribute_wordings = ((re.compile(r"Failed to find attribute '(\w+)' in '([\w.]+)'"), 1),)
    listening_wordings = ("Running on",)
    exit_codes = {2: "flask CLI usage error: the app could not be found or loaded"}
    terminates_tls = True
    commands = ("flask",)

    def deploy_rewriter(self) -> Rewriter:
        # only ``flask ... run`` serves (``flask db upgrade`` does not); its flags follow run
        return HostPortFlags(host=("--host", "-h"), port=("--port", "-p"), after="run",
                             default="127.0.0.1:5000")

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        opts = request.options
        # flask --app takes every spec form; config needs the generated entry (see target)
        ref, env, notes = (self.target(request.app, call_syntax=True, call_arguments=True,
                                       any_module_name=True, why="")
                           if request.app.app_settings else (request.app.spec.raw, {}, ()))
        argv = [request.python, "-m", "flask", "--app", ref]
        if opts.debug:
            argv.append("--debug")
        argv += ["run", "--host", request.host, "--port", str(request.port)]
        argv.append("--reload" if opts.reload else "--no-reload")
        if request.tls is not None:
            argv += ["--cert", str(request.tls.cert_path), "--key", str(request.tls.key_path)]
        if opts.threads == 1:
            argv.append("--without-threads")
        argv += list(opts.extra_args)
        if opts.reload:
            # Imported here: importing app_run at module level would register it first.
            from pytest_flaskserve.servers.app_run import BOOT_DIR, RELOADER_ENV

            if any(key == RELOADER_ENV for key, _ in opts.env):
                # The reloader's interval and type have no CLI flag: the boot hook sets them.
                env["PYTHONPATH"] = os.pathsep.join([BOOT_DIR, request.app.path_entry])
        return LaunchPlan(argv=argv, env=env, notes=notes)

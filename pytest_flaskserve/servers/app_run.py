"""The app's own script entry point: ``python hello.py`` or ``python -m pkg``.

The script's ``app.run(...)`` keeps all its arguments but the address: a small
``sitecustomize`` (``pytest_flaskserve/_boot``) moves it to the plugin's port, also in
the reloader's child, which re-runs the same command with the same environment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pytest_flaskserve._child.app_settings import ENV as SETTINGS_ENV
from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.errors import UsageError
from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest
from pytest_flaskserve.servers.reloading import (
    WERKZEUG_DETECTED,
    WERKZEUG_RESTARTED,
    WERKZEUG_TYPES,
    ReloadProfile,
)

BOOT_DIR = str(Path(__file__).resolve().parent.parent / "_child" / "boot")
#: JSON overrides of the Werkzeug reloader (interval, type, extra files, exclude patterns)
#: that the boot ``sitecustomize`` applies to ``run_simple``; set through ServerOptions.env.
RELOADER_ENV = "FLASKSERVE_RELOADER"


@register
class AppRun(Launcher):
    name = "app-run"
    description = "python hello.py / python -m pkg (the script's own app.run())"
    production = False
    proxy_protocol = None  # a development server: never deployed behind a proxy
    supports_reload = True
    reload_profile = ReloadProfile(
        "app-run", WERKZEUG_DETECTED, WERKZEUG_RESTARTED, WERKZEUG_RESTARTED,
        "the script's app.run() runs without the reloader: call "
        "app.run(use_reloader=True) or app.run(debug=True) under "
        "`if __name__ == '__main__':`",
        werkzeug=True, types=WERKZEUG_TYPES, reload_option=None,
    )
    starts_warm = True
    #: what ``python app.py`` imports before app.run() starts serving
    warm_preload = ("werkzeug.serving",)
    runs_script = True
    listening_wordings = ("Running on",)
    wrong_port_hint = (
        "the script serves on an address of its own: app-run moves Flask's app.run() "
        "and Werkzeug's run_simple() to its port, and this script starts another "
        "server (uvicorn, connexion, waitress.serve...) or binds a fixed port another "
        "way; let the script read its port from the environment, or test the app "
        "under a production server instead of app-run")
    needs_app_to_decide = True
    #: the boot hook moves ``ssl_context`` into ``app.run()`` the way it moves the port
    terminates_tls = True

    def unsupported(self, app: ResolvedApp) -> str | None:
        return app.script_reason or None

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app = request.app
        if app.script is None:
            raise UsageError(f"app-run cannot start {app.spec.raw!r}: {app.script_reason}; "
                             "choose a module or package with a source file")
        argv = [request.python, *app.script, *request.options.extra_args]
        conf: dict[str, object] = {"host": request.host, "port": request.port}
        if request.tls is not None:
            conf["ssl_context"] = [str(request.tls.cert_path), str(request.tls.key_path)]
        pythonpath = os.pathsep.join([BOOT_DIR, app.path_entry])
        env = {"FLASKSERVE_APP_RUN": json.dumps(conf), "PYTHONPATH": pythonpath}
        if app.app_settings:  # applied where the script calls app.run(), by the boot hook
            env[SETTINGS_ENV] = app.app_settings
        return LaunchPlan(
            argv=argv,
            env=env,
            notes=(f"app.run() is moved to {request.host}:{request.port} by {BOOT_DIR}/sitecustomize.py",),
        )

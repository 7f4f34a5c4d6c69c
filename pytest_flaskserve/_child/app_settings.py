"""Config a test gives its app, applied inside the server process, the same on every server.

The test process puts it in ``FLASKSERVE_APP_SETTINGS`` (JSON: ``config``, a dict of
config keys, and ``instance_path``, a directory or absent). The generated entry module
(``pytest_flaskserve._entry``) applies it around building the app; under app-run, where the
app's own script builds it, the boot ``sitecustomize`` does the same from ``run_simple``.

``instance_path`` is given to the app when it is created (it becomes the default that
``Flask(...)`` finds, so a factory that derives paths from ``app.instance_path`` sees it);
``config`` is applied after creation and before the first request. Standard library only.
"""

from __future__ import annotations

import json
import os
from typing import Any

ENV = "FLASKSERVE_APP_SETTINGS"


def load() -> dict[str, Any] | None:
    """The settings this process was started with, or None."""
    raw = os.environ.get(ENV)
    return json.loads(raw) if raw else None


def before_create(settings: dict[str, Any], flask_module: Any) -> None:
    """Make ``settings["instance_path"]`` the instance path a new Flask app finds."""
    path = settings.get("instance_path")
    if not path:
        return

    def auto_find_instance_path(self: Any) -> str:
        return str(path)

    flask_module.Flask.auto_find_instance_path = auto_find_instance_path


def after_create(app: Any, settings: dict[str, Any]) -> None:
    """Apply ``settings["config"]`` to the app the server is about to serve."""
    app.config.update(settings.get("config") or {})

"""Loaded by ``python hello.py`` under the app-run launcher (this folder is put first on
PYTHONPATH). It moves ``app.run()`` / ``run_simple()`` to the port the plugin chose,
keeping every other argument of the script (debug, threaded, reloader...). The reloader
re-runs the same command with the same environment, so its child is moved as well.
Then it hands over to the interpreter's own ``sitecustomize``, if there is one.

``FLASKSERVE_RELOADER`` (JSON, set by the reloader fixture for ``flask run`` and
``app.run()``) overrides the Werkzeug reloader's poll interval and type and adds extra
files and exclude patterns, so reloader tests need not wait a full second per poll;
Flask's CLI has no flag for the interval or the type.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing and inspect stay out of the import path of the app
    import inspect
    from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))


def _reloader_options(reloader: dict[str, Any], bound: inspect.BoundArguments) -> None:
    """Apply the reloader overrides to run_simple's bound arguments (lists are merged)."""
    args = bound.arguments
    if "interval" in reloader:
        args["reloader_interval"] = reloader["interval"]
    if "type" in reloader:
        args["reloader_type"] = reloader["type"]
    for key in ("extra_files", "exclude_patterns"):
        if reloader.get(key):
            args[key] = [*(args.get(key) or ()), *reloader[key]]


def _install() -> None:
    conf = json.loads(os.environ.get("FLASKSERVE_APP_RUN") or "{}")
    reloader = json.loads(os.environ.get("FLASKSERVE_RELOADER") or "{}")
    import inspect

    def patch(module: Any) -> None:
        original = module.run_simple
        signature = inspect.signature(original)

        def run_simple(hostname: str, port: int, application: Any, *args: Any,
                       **kwargs: Any) -> Any:
            if "port" in conf:
                sys.stderr.write(
                    f" * pytest-flaskserve: app.run() asked for {hostname}:{port}, "
                    f"serving on {conf['host']}:{conf['port']}\n"
                )
                hostname, port = conf["host"], conf["port"]
            if not reloader:
                return original(hostname, port, application, *args, **kwargs)
            bound = signature.bind(hostname, port, application, *args, **kwargs)
            _reloader_options(reloader, bound)
            return original(*bound.args, **bound.kwargs)

        module.run_simple = run_simple

    # The package is importable in every server process (same environment as pytest).
    from pytest_flaskserve._after_import import after_import

    after_import("werkzeug.serving", patch)


def _chain() -> None:
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    ours = sys.modules.pop("sitecustomize")
    try:
        import sitecustomize  # type: ignore[import-not-found]  # noqa: F401  the interpreter's own
    except ModuleNotFoundError as exc:
        # importlib expects this module back in sys.modules when there is no other one
        sys.modules["sitecustomize"] = ours
        if exc.name != "sitecustomize":
            raise


if os.environ.get("FLASKSERVE_APP_RUN") or os.environ.get("FLASKSERVE_RELOADER"):
    _install()
_chain()

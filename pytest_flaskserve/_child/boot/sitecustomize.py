"""Loaded by ``python hello.py`` under the app-run launcher (this folder is put first on
PYTHONPATH). It moves ``app.run()`` / ``run_simple()`` to the port the plugin chose
(and, over TLS, to the session's certificate: ``ssl_context``), keeping every other
argument of the script (debug, threaded, reloader...). The reloader
re-runs the same command with the same environment, so its child is moved as well.
A test's config (``FLASKSERVE_APP_SETTINGS``, see ``_child/app_settings.py``) is applied
to the app the script serves, as the generated entry does on the other servers.
Then it hands over to the interpreter's own ``sitecustomize``, if there is one.

``FLASKSERVE_RELOADER`` (JSON, set by the reloader fixture for ``flask run`` and
``app.run()``) overrides the Werkzeug reloader's poll interval and type and adds extra
files and exclude patterns, so reloader tests need not wait a full second per poll;
Flask's CLI has no flag for the interval or the type. It also narrows the watchdog
reloader's inotify subscription to changes (``_changes_only``).
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

    # The package is importable in every server process (same environment as pytest).
    from pytest_flaskserve._child import app_settings
    from pytest_flaskserve._child.after_import import after_import

    settings = app_settings.load()

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
            if settings is not None:
                _apply_settings(application, settings)
            tls = conf.get("ssl_context")
            if not reloader and not tls:
                return original(hostname, port, application, *args, **kwargs)
            bound = signature.bind(hostname, port, application, *args, **kwargs)
            _reloader_options(reloader, bound)
            if tls:
                # moved like the port: the script's own ssl_context (or none) gives way
                # to the session's certificate, which the plugin's clients trust
                if bound.arguments.get("ssl_context") is not None:
                    sys.stderr.write(" * pytest-flaskserve: app.run()'s ssl_context is "
                                     "replaced by the session's certificate\n")
                bound.arguments["ssl_context"] = tuple(tls)
            return original(*bound.args, **bound.kwargs)

        module.run_simple = run_simple

    after_import("werkzeug.serving", patch)
    if settings is not None:
        after_import("flask", lambda flask: app_settings.before_create(settings, flask))
    if reloader:
        after_import("watchdog.observers.api", _changes_only)


def _apply_settings(application: Any, settings: dict[str, Any]) -> None:
    """The test's config, on the app the script hands to ``run_simple`` (``app.run()``)."""
    from pytest_flaskserve._child import app_settings

    if not hasattr(application, "config"):
        sys.stderr.write(f" * pytest-flaskserve: config= needs the Flask app, but the script "
                         f"serves {application!r} with run_simple(); serve the app itself\n")
        raise SystemExit(3)
    app_settings.after_create(application, settings)


def _changes_only(module: Any) -> None:
    """Subscribe Werkzeug's watchdog reloader to changes only.

    Werkzeug schedules recursive watches over every ``sys.path`` root (the standard
    library included) with no ``event_filter``, so watchdog asks inotify for every open
    and close too. Any busy Python process on the machine (a parallel test run) then
    can flood the 16384-event queue until it overflows and edits are lost (measured with
    watchdog 7.1 beside a full CI run: "Inotify queue overflowed; filesystem events were
    lost", over and over; not seen with watchdog 6 beside two pytest workers). Werkzeug
    acts only on created, deleted, modified, moved and closed-after-write events, so
    asking the kernel for those alone changes nothing it would reload on.
    """
    import inspect

    base = module.BaseObserver
    original = base.schedule
    if "event_filter" not in inspect.signature(original).parameters:
        return  # watchdog < 4 cannot narrow its subscription
    from watchdog import events

    wanted = [events.FileCreatedEvent, events.FileDeletedEvent, events.FileModifiedEvent,
              events.FileMovedEvent, events.FileClosedEvent, events.DirCreatedEvent,
              events.DirDeletedEvent, events.DirMovedEvent]

    def schedule(self: Any, event_handler: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and kwargs.get("event_filter") is None:
            kwargs["event_filter"] = wanted
        return original(self, event_handler, path, *args, **kwargs)

    base.schedule = schedule


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

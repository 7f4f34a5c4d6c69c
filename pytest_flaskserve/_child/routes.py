"""Child-process half of the smoke suite's route discovery: build the app, read its URL map.

Run as ``python -m pytest_flaskserve._child.routes REQUEST_JSON`` with the environment a
production server would get. It builds the app the way the generated entry module does
(module attribute, or factory called with literal arguments), with ``Flask.run`` made a
no-op so an ``app.run()`` at import cannot start serving, and prints one line
``FLASKSERVE-ROUTES <json>``. Only the standard library and Flask, never pytest: the
user's app is never imported into the pytest process.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
import traceback
from typing import Any


def _wrappers(app: Any) -> list[str]:
    """Class names along the ``wsgi_app`` middleware chain (``app``, ``application``)."""
    names: list[str] = []
    obj = app.wsgi_app
    for _ in range(20):
        if inspect.ismethod(obj):  # Flask.wsgi_app itself: the end of the chain
            break
        names.append(f"{type(obj).__module__}.{type(obj).__qualname__}")
        nxt = getattr(obj, "app", None) or getattr(obj, "application", None)
        if nxt is None or nxt is obj or not callable(nxt):
            break
        obj = nxt
    return names


def _session_cookie(app: Any) -> tuple[str, bool]:
    """The session cookie's name and whether the app asks for ``Secure``, as the app's
    own session interface says (a custom one may rename it)."""
    interface = app.session_interface
    try:
        return str(interface.get_cookie_name(app)), bool(interface.get_cookie_secure(app))
    except Exception:  # noqa: BLE001 - an interface without Flask's helpers: the config
        return (str(app.config.get("SESSION_COOKIE_NAME", "session")),
                bool(app.config.get("SESSION_COOKIE_SECURE")))


def facts(request: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, request["path_entry"])
    import flask

    flask.Flask.run = lambda self, *a, **k: None  # type: ignore[method-assign]
    target = request["target"]
    try:
        obj = getattr(importlib.import_module(target["module"]), target["attr"])
        if target["factory"]:
            args, kwargs = ast.literal_eval(target["arguments"])
            app = obj(*args, **kwargs)
        else:
            app = obj
    except BaseException as exc:  # noqa: BLE001 - anything the app raises is reported
        tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:])
        return {"ok": False, "message": f"{type(exc).__name__}: {exc}", "trace": tail.rstrip()}

    routes: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for rule in app.url_map.iter_rules():
        methods = sorted(rule.methods or ())
        if "GET" not in methods:
            continue
        why = ""
        if rule.arguments:
            why = "has URL parameters"
        elif getattr(rule, "websocket", False):
            why = "is a WebSocket route"
        elif rule.host or rule.subdomain:
            why = "is bound to a host or subdomain"
        elif rule.redirect_to is not None:
            why = "is a redirect rule"
        if why:
            skipped.append({"rule": rule.rule, "why": why})
            continue
        routes.append({"path": rule.rule, "endpoint": rule.endpoint, "methods": methods})
    routes.sort(key=lambda r: r["path"])
    wrappers = _wrappers(app)
    cookie_name, cookie_secure = _session_cookie(app)
    return {
        "ok": True,
        "routes": routes,
        "skipped": skipped,
        "debug": bool(app.debug),
        "debugger_wrapped": any("werkzeug.debug" in w for w in wrappers),
        "wrappers": wrappers,
        "session_cookie_name": cookie_name,
        "session_cookie_secure": cookie_secure,
        "flask_debug_env": os.environ.get("FLASK_DEBUG", ""),
    }


if __name__ == "__main__":
    from pytest_flaskserve._child.protocol import answer

    answer(facts)

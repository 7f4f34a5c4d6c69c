"""Child-process half of app resolution: import the user's app, apply Flask's rules.

Run as ``python -m pytest_flaskserve._child.resolver REQUEST_JSON``; it answers through
``_child.answer`` (one marker line, whatever it found; the app may print around it). It uses only the standard library and Flask, never pytest.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
import traceback
from typing import Any


def _fail(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "kind": kind, "message": message, **extra}


def _short_traceback(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(lines[-6:]).rstrip()


def _is_wsgi_callable(func: Any) -> bool:
    """Two required positional parameters named as PEP 3333's examples name them (a factory
    taking two settings is not one)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    required = [p for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) == 2 and len(params) == 2 and (
        params[0].name in ("environ", "env", "environment") or "start_response" in params[1].name)


def _wrong_args(func: Any, exc: BaseException) -> bool:
    """True when the TypeError came from calling ``func`` itself (Flask's rule)."""
    tb = exc.__traceback__
    code = getattr(func, "__code__", None)
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return False
        tb = tb.tb_next
    return True


def resolve(request: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("FLASK_RUN_FROM_CLI", "true")
    sys.path.insert(0, request["path_entry"])
    try:
        import flask
    except ImportError as exc:
        return _fail("flask_missing", f"Flask is not importable from {sys.executable}: {exc}")

    calls: list[str] = []
    original_run = flask.Flask.run

    def _record_run(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(repr(self))

    flask.Flask.run = _record_run  # type: ignore[method-assign]
    module_name = request["module"]
    try:
        __import__(module_name)
        module = sys.modules[module_name]
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            return _fail("module_not_found", f"no module named {missing!r}", missing=missing)
        return _fail(
            "dependency_missing",
            f"importing {module_name!r} failed: {exc}",
            missing=missing,
            trace=_short_traceback(exc),
        )
    except SyntaxError as exc:
        return _fail(
            "syntax_error",
            f"syntax error in {exc.filename}, line {exc.lineno}: {exc.msg}",
            trace=_short_traceback(exc),
        )
    except BaseException as exc:  # noqa: BLE001 - anything the app raises at import
        return _fail(
            "import_error",
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}",
            trace=_short_traceback(exc),
        )
    finally:
        flask.Flask.run = original_run  # type: ignore[method-assign]

    attr: str | None = request.get("attr")
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if request.get("arguments"):
        args, kwargs = ast.literal_eval(request["arguments"])
    is_factory = bool(request.get("is_call"))

    if attr is None:
        found = _discover(module, flask.Flask)
        if isinstance(found, dict):
            return found
        attr, is_factory = found
    elif not hasattr(module, attr):
        return _fail("attribute_missing", f"module {module_name!r} has no attribute {attr!r}")

    obj = getattr(module, attr)
    # Flask's find_app_by_string calls the attribute only when it is a function (with the
    # arguments, if any): 'mod:create_app' is called, 'mod:app()' is the app itself and
    # a callable instance is never called.
    is_factory = inspect.isfunction(obj)
    if is_factory:
        try:
            app = obj(*args, **kwargs)
        except TypeError as exc:
            if not args and not kwargs and _is_wsgi_callable(obj):
                return _fail(
                    "not_flask",
                    f"{module_name}:{attr} is a plain WSGI callable (environ, start_response), "
                    "not a Flask application or factory: the plugin serves Flask apps; point "
                    "--flask-app at the Flask app (or run this one with "
                    "flask_server_factory.command)",
                )
            if _wrong_args(obj, exc):
                return _fail(
                    "factory_arguments",
                    f"factory {module_name}:{attr} cannot be called with these arguments: {exc}",
                )
            return _fail("factory_error", f"factory {module_name}:{attr} raised TypeError: {exc}",
                         trace=_short_traceback(exc))
        except BaseException as exc:  # noqa: BLE001
            return _fail(
                "factory_error",
                f"factory {module_name}:{attr} raised {type(exc).__name__}: {exc}",
                trace=_short_traceback(exc),
            )
    else:
        app = obj
    if not isinstance(app, flask.Flask):
        return _fail(
            "not_flask",
            (f"{module_name}:{attr}() returned a {type(app).__name__}, not a Flask application"
             if app is not obj else
             f"{module_name}:{attr} is a {type(app).__name__}, not a Flask application"),
        )
    module_file = getattr(module, "__file__", None)
    return {
        "ok": True,
        "module": module_name,
        "attr": attr,
        "is_factory": is_factory,
        "module_file": os.path.abspath(module_file) if module_file else None,
        "is_package": hasattr(module, "__path__"),
        "runs_at_import": bool(calls),
        "patches_at_import": _monkey_patcher(),
        "import_name": app.import_name,
        "flask_version": getattr(flask, "__version__", ""),
        "config_reprs": {key: _repr(value) for key, value in app.config.items()},
    }


def _monkey_patcher() -> str:
    """"gevent" or "eventlet" when importing the app monkey-patched the standard library
    with it (its patcher's record of patched modules is not empty), else ""."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and getattr(gevent_monkey, "saved", None):
        return "gevent"
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    if eventlet_patcher is not None and getattr(eventlet_patcher, "already_patched", None):
        return "eventlet"
    return ""


def _repr(value: Any) -> str:
    """``repr(value)``, or a marker no real repr equals when it raises."""
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - any object's __repr__ may raise
        return "\0unrepresentable"


def _discover(module: Any, flask_cls: type) -> tuple[str, bool] | dict[str, Any]:
    """Flask's ``find_best_app``, returning the attribute name instead of the app."""
    name = module.__name__
    for attr in ("app", "application"):
        if isinstance(getattr(module, attr, None), flask_cls):
            return attr, False
    matches = [k for k, v in vars(module).items() if isinstance(v, flask_cls)]
    if len(matches) == 1:
        return matches[0], False
    if len(matches) > 1:
        return _fail(
            "multiple_apps",
            f"module {name!r} holds several Flask apps ({', '.join(sorted(matches))}); "
            f"name one, e.g. '{name}:{sorted(matches)[0]}'",
        )
    for attr in ("create_app", "make_app"):
        if inspect.isfunction(getattr(module, attr, None)):
            return attr, True
    return _fail(
        "no_app",
        f"module {name!r} has no Flask app named 'app' or 'application', no single Flask "
        f"instance and no create_app/make_app factory; name it, e.g. '{name}:my_app'",
    )


if __name__ == "__main__":
    from pytest_flaskserve._child.protocol import answer

    answer(resolve)

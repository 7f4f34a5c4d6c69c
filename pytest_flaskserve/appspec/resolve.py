"""Resolve a parsed spec to a concrete app in a child interpreter (never in pytest).

The child (``_resolver.py``) runs Flask's discovery rules with ``FLASK_RUN_FROM_CLI``
set, so an ``app.run()`` at import time does not start serving; it reports what it found
as JSON. Results are cached per spec for the session.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping

from pytest_flaskserve._child.protocol import last_line, read_answer
from pytest_flaskserve.appspec.grammar import AppSpec, ResolvedApp, script_entry
from pytest_flaskserve.errors import AppImportError, UsageError, hide_own_errors
from pytest_flaskserve.lifecycle.process import run_captured

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

_cache: dict[tuple[str, str, tuple[tuple[str, str], ...]], ResolvedApp] = {}
_lock = threading.Lock()

_FIXES = {
    "module_not_found": "check the module name and that pytest runs from the project directory",
    "dependency_missing": "install the missing package in this environment",
    "syntax_error": "fix the syntax error",
    "import_error": "fix the error the app raises at import",
    "attribute_missing": "check the name after ':'",
    "not_flask": "point the spec at the Flask() object or at a factory that returns one",
    "factory_arguments": "pass the arguments the factory expects, e.g. create_app('dev')",
    "factory_error": "fix the factory or pass arguments it accepts",
    # the messages of these two already name the fix ("name one, e.g. 'mod:a'")
    "multiple_apps": "",
    "no_app": "",
    "not_callable": "point the spec at the Flask() object or a factory function",
    "flask_missing": "pip install flask in this environment",
}


#: failures of the app's own code, which the environment it is imported with can change
_ENV_SENSITIVE = frozenset({"import_error", "factory_error"})


def resolve_app(spec: AppSpec, timeout: float = 30.0,
                env: Mapping[str, str] | None = None) -> ResolvedApp:
    """Import the app in a child interpreter and return the concrete target.

    ``env``: variables the servers will get on top of pytest's environment (a factory's
    or a marker's ``env=``), so an app that reads them at import (``from_envvar``)
    resolves as it will be served. Raises :class:`UsageError` (one line: the spec, what
    went wrong, the fix) when the app cannot be loaded, or when its import does not
    finish within ``timeout`` seconds.
    """
    extra = tuple(sorted((env or {}).items()))
    key = (spec.raw, spec.base_dir, extra)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    request = {
        "module": spec.module,
        "path_entry": spec.path_entry,
        "attr": spec.attr,
        "is_call": spec.is_call,
        "arguments": repr((spec.args, dict(spec.kwargs))) if spec.is_call else None,
    }
    child_env = {k: v for k, v in os.environ.items()
                 if k not in ("WERKZEUG_RUN_MAIN", "WERKZEUG_SERVER_FD")}
    child_env.update(extra)
    child_env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = run_captured(
        [sys.executable, "-m", "pytest_flaskserve._child.resolver", json.dumps(request)],
        env=child_env, cwd=spec.base_dir, timeout=timeout,
    )
    if result.timed_out:
        raise UsageError(
            f"app spec {spec.raw!r} (from {spec.source}): importing the app did not finish "
            f"within {timeout:g} s; it blocks at import (app.run()/serve_forever() at import, "
            "a service it waits for): move that under `if __name__ == '__main__':` or raise "
            "--flask-startup-timeout"
        )
    data = read_answer(result.answer, result.output)
    if data is None:
        raise UsageError(
            f"app spec {spec.raw!r} (from {spec.source}): the app exited during import "
            f"({result.returncode}): {last_line(result.output)}; importing it must not exit "
            "the interpreter"
        )
    if not data["ok"]:
        fix = _FIXES.get(data["kind"], "see the message")
        error = AppImportError if data["kind"] in _ENV_SENSITIVE else UsageError
        raise error(f"app spec {spec.raw!r} (from {spec.source}): {data['message']}"
                    + (f"; {fix}" if fix else ""))
    script, reason = script_entry(data["module"], data["module_file"], data["is_package"], spec.base_dir)
    resolved = ResolvedApp(
        spec=spec,
        module=data["module"],
        attr=data["attr"],
        is_factory=data["is_factory"],
        # arguments go to a factory function only ('mod:app()' is the app, as in Flask)
        args=spec.args if spec.is_call and data["is_factory"] else (),
        kwargs=spec.kwargs if spec.is_call and data["is_factory"] else (),
        module_file=data["module_file"],
        is_package=data["is_package"],
        script=script,
        script_reason=reason,
        runs_at_import=data["runs_at_import"],
        import_name=data.get("import_name", ""),
        config_reprs=tuple(sorted((data.get("config_reprs") or {}).items())),
        patches_at_import=data.get("patches_at_import", ""),
    )
    with _lock:
        _cache[key] = resolved
    return resolved


__all__ = ["resolve_app"]

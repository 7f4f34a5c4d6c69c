"""What the smoke suite needs to know about the app, read in a child interpreter.

The app is built in ``_routes.py`` with the environment a production server gets (the
supervisor's scrubbed environment), so ``app.debug`` is the value Gunicorn or uWSGI
would see, and the pytest process never imports the user's code.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

from pytest_flaskserve._child.protocol import last_line, read_answer
from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.lifecycle.environment import server_env
from pytest_flaskserve.lifecycle.process import run_captured
from pytest_flaskserve.servers import ServerOptions

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


@dataclass(frozen=True)
class Route:
    path: str
    endpoint: str
    methods: tuple[str, ...]


@dataclass(frozen=True)
class AppFacts:
    """The app's GET routes without URL parameters, its debug and session-cookie configuration."""

    routes: tuple[Route, ...]
    skipped: tuple[tuple[str, str], ...]  # (rule, why it is not requested)
    debug: bool
    debugger_wrapped: bool
    wrappers: tuple[str, ...]
    #: the session cookie's name and whether the app sets SESSION_COOKIE_SECURE
    session_cookie_name: str = "session"
    session_cookie_secure: bool = False


def read_facts(app: ResolvedApp, options: ServerOptions, *, load_dotenv: bool,
               timeout: float) -> AppFacts:
    """Build the app in a child process and return its routes and debug settings.

    Raises :class:`UsageError` when the app cannot be built or the child overruns.
    """
    env = server_env(dict(os.environ), app, options, {}, load_dotenv)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    request = {"path_entry": app.path_entry, "target": json.loads(app.entry_payload())}
    result = run_captured([sys.executable, "-m", "pytest_flaskserve._child.routes", json.dumps(request)],
                          env=env, cwd=app.cwd, timeout=timeout)
    if result.timed_out:
        raise UsageError(f"reading the URL map of {app.describe()} did not finish within "
                         f"{timeout:g} s; the app blocks at import: raise --flask-startup-timeout")
    data = read_answer(result.answer, result.output)
    if data is None:
        raise UsageError(f"reading the URL map of {app.describe()} failed "
                         f"(exit {result.returncode}): {last_line(result.output)}")
    if not data["ok"]:
        raise UsageError(f"building {app.describe()} to read its URL map raised "
                         f"{data['message']}; fix the app (trace: {data.get('trace', '')!r})")
    return AppFacts(
        routes=tuple(Route(r["path"], r["endpoint"], tuple(r["methods"])) for r in data["routes"]),
        skipped=tuple((s["rule"], s["why"]) for s in data["skipped"]),
        debug=bool(data["debug"]),
        debugger_wrapped=bool(data["debugger_wrapped"]),
        wrappers=tuple(data["wrappers"]),
        session_cookie_name=str(data["session_cookie_name"]),
        session_cookie_secure=bool(data["session_cookie_secure"]),
    )

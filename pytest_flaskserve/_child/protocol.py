"""The protocol of our short-lived child interpreters (``_resolver``, ``_routes``).

A child imports the user's app, which may print anything, so its answer is one line
``<MARKER><json>`` at the end of its output; then it leaves with ``os._exit`` because the
app may have started threads or atexit work that would keep it alive. The parent runs it
with a deadline (``process.run_captured``) and picks the last marker line; before
leaving, the child kills what the app's import left below it. The child side imports
neither pytest nor Flask here.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

MARKER = "FLASKSERVE-ANSWER "


def answer(handler: Callable[[dict[str, Any]], dict[str, Any]]) -> NoReturn:
    """Child side: run ``handler`` on the JSON request in argv[1], print, leave at once."""
    request = json.loads(sys.argv[1])
    try:
        result = handler(request)
    except BaseException as exc:  # noqa: BLE001 - report, never a traceback
        result = {"ok": False, "kind": "internal", "message": f"{type(exc).__name__}: {exc}",
                  "trace": ""}
    sys.stdout.flush()
    print("\n" + MARKER + json.dumps(result), flush=True)
    sys.stderr.flush()
    # The parent started this child as a subreaper: what the app's import forked (a
    # pool, a detached daemon) is below it now, and would pass to init when it exits.
    from pytest_flaskserve.lifecycle.reach import kill_descendants

    kill_descendants()
    os._exit(0)


def read_answer(output: str) -> dict[str, Any] | None:
    """Parent side: the child's answer, or None when it exited without giving one."""
    for line in reversed(output.splitlines()):
        if line.startswith(MARKER):
            data: dict[str, Any] = json.loads(line[len(MARKER):])
            return data
    return None


def last_line(output: str) -> str:
    """The last line a child printed, for messages about a child that gave no answer."""
    lines = output.strip().splitlines()
    return lines[-1] if lines else "no output"

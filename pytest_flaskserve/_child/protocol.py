"""The protocol of our short-lived child interpreters (``_resolver``, ``_routes``).

A child imports the user's app, which may print anything, from any thread and without
end, so its answer goes to a file descriptor of its own (``FLASKSERVE_ANSWER_FD``, a
file the parent made): written in the app's output it could be split by another
thread's write or pushed out of the kept tail. Only where that descriptor is gone (an
import that closed every descriptor) is the answer the line ``<MARKER><json>`` on
stdout. Then the child leaves with ``os._exit``, because the app may have started
threads or atexit work that would keep it alive. The parent runs it with a deadline
(``process.run_captured``); before leaving, the child kills what the app's import left
below it. The child side imports neither pytest nor Flask here.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

MARKER = "FLASKSERVE-ANSWER "
#: the environment variable naming the descriptor the answer is written to
ANSWER_FD_ENV = "FLASKSERVE_ANSWER_FD"


def answer(handler: Callable[[dict[str, Any]], dict[str, Any]]) -> NoReturn:
    """Child side: run ``handler`` on the JSON request in argv[1], print, leave at once."""
    request = json.loads(sys.argv[1])
    try:
        result = handler(request)
    except BaseException as exc:  # noqa: BLE001 - report, never a traceback
        result = {"ok": False, "kind": "internal", "message": f"{type(exc).__name__}: {exc}",
                  "trace": ""}
    text = json.dumps(result)
    if not _write_answer(text):
        sys.stdout.flush()
        print("\n" + MARKER + text, flush=True)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    # The parent started this child as a subreaper: what the app's import forked (a
    # pool, a detached daemon) is below it now, and would pass to init when it exits.
    from pytest_flaskserve.lifecycle.reach import kill_descendants

    kill_descendants()
    os._exit(0)


def _write_answer(text: str) -> bool:
    """Write the answer to its own descriptor; False where there is none."""
    fd = os.environ.get(ANSWER_FD_ENV, "")
    if not fd.isdigit():
        return False
    data = text.encode()
    try:
        while data:
            data = data[os.write(int(fd), data):]
        os.close(int(fd))
    except OSError:
        return False
    return True


def read_answer(answer: str, output: str) -> dict[str, Any] | None:
    """Parent side: the child's answer (its own channel, else the marker line in its
    output), or None when it exited without giving one."""
    if answer.strip():
        with contextlib.suppress(ValueError):  # cut short: the child was killed mid-write
            data: dict[str, Any] = json.loads(answer)
            return data
    for line in reversed(output.splitlines()):
        if line.startswith(MARKER):
            found: dict[str, Any] = json.loads(line[len(MARKER):])
            return found
    return None


#: how much of a child's last line a message quotes
_QUOTED = 200


def last_line(output: str) -> str:
    """The last line a child printed (its first 200 characters), for messages about a
    child that gave no answer."""
    lines = output.strip().splitlines()
    if not lines:
        return "no output"
    line = lines[-1]
    return line if len(line) <= _QUOTED else line[:_QUOTED] + f"... ({len(line)} characters)"

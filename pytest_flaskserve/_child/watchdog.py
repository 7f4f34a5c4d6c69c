"""Watchdog: stops this session's servers when the pytest process dies without doing so.

Run as ``python -m pytest_flaskserve._child.watchdog TOKEN FD``: FD is its end of a
socketpair with pytest (stdin is /dev/null). A socket, unlike a pipe, cannot be opened
again through ``/proc/<pid>/fd/FD``, so no other process can add orders. Lines are
``+ PID STARTED OWNER`` (a process we started, its start time and owner marker),
``- PID`` (stopped), ``d PATH`` / ``-d PATH`` (a server's temp directory made and
removed; PATH percent-quoted) and ``bye`` (clean end). End of input without ``bye`` means
pytest is gone (SIGKILL, crash): every remaining process that is provably still the one
registered (:func:`~pytest_flaskserve.lifecycle.reach.claim`) is killed with its whole
tree, the processes carrying the session's marker are swept, and the directories still
registered are removed. A pid whose process has changed (it exited and the pid went to a
stranger) is left alone.
Imports nothing from the package but the lifecycle helpers, and no Flask.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
from urllib.parse import unquote


def main() -> int:
    from pytest_flaskserve.lifecycle.reach import Identity, claim, kill_tree

    token, fd = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = socket.socket(fileno=fd)
    registered: dict[int, Identity] = {}
    temp_dirs: set[str] = set()
    clean = False
    with channel, channel.makefile("rb") as lines:
        for raw in lines:
            words = raw.decode(errors="replace").split()
            op, fields = (words[0], words[1:]) if words else ("", [])
            if op == "bye":
                clean = True
                break
            if op == "+" and (identity := Identity.parse(fields)) is not None:
                registered[identity.pid] = identity
            elif op == "-" and fields and fields[0].isdigit():
                registered.pop(int(fields[0]), None)
            elif op == "d" and fields and os.path.isabs(path := unquote(fields[0])):
                temp_dirs.add(path)
            elif op == "-d" and fields:
                temp_dirs.discard(unquote(fields[0]))
    if clean and not registered and not temp_dirs:
        return 0
    for identity in registered.values():
        proc = claim(identity)
        if proc is not None:
            kill_tree(proc)
    from pytest_flaskserve.lifecycle.process import sweep_owned

    sweep_owned(token)
    for path in temp_dirs:  # after the kills: nothing writes there any more
        shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

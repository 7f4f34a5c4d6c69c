"""Watchdog: stops this session's servers when the pytest process dies without doing so.

Run as ``python -m pytest_flaskserve._child.watchdog TOKEN`` with a pipe on stdin. Lines are
``+ PID`` (a server started; its process group is PID), ``- PID`` (stopped) and ``bye``
(clean end). End of input without ``bye`` means pytest is gone (SIGKILL, crash): every
remaining group is killed and the processes carrying our owner token are swept.
Imports nothing from the package but ``process`` helpers, and no Flask.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    token = sys.argv[1]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    clean = False
    for raw in sys.stdin.buffer:
        line = raw.decode(errors="replace").strip()
        if line == "bye":
            clean = True
            break
        op, _, pid = line.partition(" ")
        if not pid.isdigit():
            continue
        if op == "+":
            groups.add(int(pid))
        elif op == "-":
            groups.discard(int(pid))
    if clean and not groups:
        return 0
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    from pytest_flaskserve.lifecycle.process import sweep_owned

    sweep_owned(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())

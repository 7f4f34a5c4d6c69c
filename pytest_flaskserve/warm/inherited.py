"""What a process inherits from the one that starts it besides its environment and
working directory: the file-mode creation mask, the resource limits, the scheduling
priority and the CPUs it may run on. A cold server
gets pytest's as they are at its start; a warm one gets what the zygote got at the
session's start, as its forker's imports left it (Granian's extension raises the soft
limit of open files as it loads, in both). So a warm start is exact only while pytest's
are still what they were when the zygote started. Standard library only."""

from __future__ import annotations

import os
import resource
from typing import Any

#: the limits compared (those Linux has; a name missing here is skipped)
_LIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
           "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE",
           "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_SIGPENDING",
           "RLIMIT_STACK")


def current() -> dict[str, Any]:
    """This process's umask, limits, niceness and CPUs (``{"umask": 18, "RLIMIT_NOFILE":
    (soft, hard), ...}``)."""
    state: dict[str, Any] = {name: resource.getrlimit(getattr(resource, name))
                             for name in _LIMITS if hasattr(resource, name)}
    state["umask"] = _umask()
    state["nice"] = os.getpriority(os.PRIO_PROCESS, 0)
    state["CPU affinity"] = frozenset(os.sched_getaffinity(0))
    return state


def first_difference(before: dict[str, Any], now: dict[str, Any]) -> str | None:
    """The name of one value that differs between two states, or None."""
    return next((key for key in sorted(before.keys() | now.keys())
                 if before.get(key) != now.get(key)), None)


def _umask() -> int | None:
    """The umask, read without changing it (``os.umask`` can only set it, and another
    thread could create a file meanwhile)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return None

"""Kill only what is provably ours, and keep every descendant of a server within reach.

A pid alone proves nothing: once a process is reaped its pid can be handed to a stranger.
What we started is known by an :class:`Identity` (pid, start time, owner marker) recorded
while it lived; :func:`claim` accepts a process only if all three still match, and
:func:`kill_verified` signals through a pidfd opened *before* that check, so the process
checked is the process killed.

Reach: a process whose parent exits is normally re-parented to init, and one that also
calls ``setsid()`` and drops our marker from its environment is then found by nothing.
A *child subreaper* (``PR_SET_CHILD_SUBREAPER``) receives such orphans instead, so every
descendant stays in its tree, whatever session, group or environment it chose; the tree
is what :func:`kill_tree` walks. Imports nothing from the package (the watchdog uses it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

#: prctl(2) option (Linux 3.4+): orphaned descendants are re-parented to this process
PR_SET_CHILD_SUBREAPER = 36

#: the environment variable every process we start carries (see ``lifecycle.process``)
OWNER_ENV = "FLASKSERVE_OWNER"


def _find_prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None
    return prctl


#: resolved once, in the parent: a forked child about to exec should not load libraries
_PRCTL = _find_prctl()


def become_subreaper() -> bool:
    """Make the calling process the reaper of its orphaned descendants; False where the
    kernel has no such thing. Kept across ``execve``, not inherited by ``fork``."""
    return _PRCTL is not None and _PRCTL(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _subreaper_before_exec() -> None:
    # Runs in the forked child before exec (Popen's preexec_fn): one foreign call with
    # a function resolved in the parent, no allocation that could need another thread's
    # lock. Costs the vfork fast path: about 6 ms more per start from a 150 MB pytest.
    assert _PRCTL is not None
    _PRCTL(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


#: ``preexec_fn`` that starts a command as a child subreaper (None where there is none)
SUBREAPER_PREEXEC: Callable[[], None] | None = (
    _subreaper_before_exec if _PRCTL is not None else None)


@dataclass(frozen=True)
class Identity:
    """What proves a process is the one we started: its pid, its start time (psutil's
    ``create_time``, from the kernel's boot-relative start tick) and the owner marker
    it was started with."""

    pid: int
    started: float
    owner: str

    def line(self) -> str:
        """One line of the watchdog protocol: ``+ PID STARTED OWNER``."""
        return f"+ {self.pid} {self.started!r} {self.owner}\n"

    @classmethod
    def parse(cls, fields: list[str]) -> Identity | None:
        """The inverse of :meth:`line` (without the ``+``); None for a malformed line."""
        if len(fields) != 3 or not fields[0].isdigit():
            return None
        try:
            return cls(int(fields[0]), float(fields[1]), fields[2])
        except ValueError:
            return None


def identify(pid: int, owner: str) -> Identity | None:
    """The identity of the live process ``pid``, started by us as ``owner``."""
    import psutil

    try:
        return Identity(pid, psutil.Process(pid).create_time(), owner)
    except psutil.Error:
        return None


def session_of(owner: str) -> str:
    """The session part of an owner marker (``TOKEN:server`` -> ``TOKEN:``)."""
    return owner.split(":", 1)[0] + ":"


def carries_marker(proc: psutil.Process, prefix: str) -> bool:
    """The process's environment holds our marker starting with ``prefix`` (a session
    ``TOKEN:`` or one server's full marker)."""
    import psutil

    try:
        return proc.environ().get(OWNER_ENV, "").startswith(prefix)
    except psutil.Error:
        return False


def claim(identity: Identity) -> psutil.Process | None:
    """The process ``identity`` names if it is provably still ours: alive (not a
    zombie), started at the recorded time, and carrying this session's marker."""
    import psutil

    try:
        proc = psutil.Process(identity.pid)
        if proc.create_time() != identity.started or proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return proc if carries_marker(proc, session_of(identity.owner)) else None


def kill_verified(proc: psutil.Process, sig: int = signal.SIGKILL) -> bool:
    """Send ``sig`` to ``proc`` only if the pid still holds the process the handle was
    made for (same start time). The pidfd pins the process across the check: between
    check and kill the pid cannot pass to anyone else."""
    import psutil

    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:
        return False  # gone (or a kernel without pidfds: then psutil's own check below)
    except AttributeError:  # pragma: no cover - Python without pidfd_open
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)  # psutil refuses a pid reused since the handle was made
            return True
        return False
    try:
        if psutil.Process(proc.pid).create_time() != proc.create_time():
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except (OSError, psutil.Error):
        return False
    finally:
        os.close(fd)


def live_descendants(root: psutil.Process) -> list[psutil.Process]:
    """Descendants of ``root`` that are not zombies (empty when ``root`` is gone)."""
    import psutil

    found = []
    try:
        children = root.children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
    return found


def kill_tree(root: psutil.Process, *, rounds: int = 100) -> list[int]:
    """SIGKILL every descendant of ``root`` (which must be ours, see :func:`claim`), then
    its process group and ``root`` itself; the pids killed.

    Descendants go first, while ``root`` lives: if it is a subreaper, every process its
    tree forks, detaches or orphans stays below it until we get there. The listing is
    repeated until it comes back empty (a process can fork between listing and kill).
    The group is signalled while its leader is alive and ours, so the id is not a
    stranger's.
    """
    killed: list[int] = []
    for _ in range(rounds):
        targets = live_descendants(root)
        if not targets:
            break
        for proc in targets:
            if kill_verified(proc):
                killed.append(proc.pid)
        time.sleep(0.002)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if root.is_running() and os.getpgid(root.pid) == root.pid:
            os.killpg(root.pid, signal.SIGKILL)
    if kill_verified(root):
        killed.append(root.pid)
    return killed


def kill_descendants() -> None:
    """SIGKILL every descendant of this process (a subreaper about to exit: what it
    adopted would otherwise pass to init, out of anyone's reach)."""
    import psutil

    me = psutil.Process()
    for _ in range(100):
        targets = live_descendants(me)
        if not targets:
            return
        for proc in targets:
            kill_verified(proc)
        time.sleep(0.002)

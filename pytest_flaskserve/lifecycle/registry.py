"""What this session started, and how nothing of it outlives the session.

Every process we start carries :data:`OWNER_ENV`; the :data:`registry` knows the live ones
and feeds a watchdog process that stops them if pytest dies; the sweeps find, by that
marker, whatever escaped its process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from pytest_flaskserve.lifecycle.reach import identify, kill_verified

if TYPE_CHECKING:
    import psutil

    from pytest_flaskserve.lifecycle.process import StopResult

#: Every process we start carries this variable (``<session token>:<server id>``), so a
#: sweep can find what escaped its process group, and only what we started.
OWNER_ENV = "FLASKSERVE_OWNER"

SESSION_TOKEN = uuid.uuid4().hex[:16]


class Registered(Protocol):
    """What the registry holds: a process group leader that can be stopped."""

    @property
    def pid(self) -> int: ...

    @property
    def owner(self) -> str: ...

    def stop(self, sig: int = signal.SIGTERM, grace: float = 5.0) -> StopResult: ...


def signal_group(pgid: int, sig: int) -> None:
    """``sig`` to the process group ``pgid``; nothing if it is gone or not ours to signal."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_reaped_group(pgid: int, sig: int) -> None:
    """Signal what is left of the group of a leader we have already reaped, never a
    stranger. While a member lives, the kernel does not hand its group id out as a new pid,
    so every member is ours; but once the group is empty the id is free, and a process
    that now has that pid (and leads its own group) was started by someone else."""
    if not os.path.exists(f"/proc/{pgid}"):
        signal_group(pgid, sig)  # no process has the leader's pid: only our members can be left
        return
    import psutil

    for proc in group_members(pgid):
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def group_members(pgid: int) -> list[psutil.Process]:
    """The processes of group ``pgid`` other than its leader (reads every process)."""
    import psutil

    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if proc.pid != pgid and os.getpgid(proc.pid) == pgid:
                members.append(proc)
    return members


def sweep_owned(token: str = SESSION_TOKEN, *, owner: str | None = None,
                settle: float = 0.0) -> list[int]:
    """Kill every process whose environment says this session (or, with ``owner``,
    this one server) started it.

    The last line of defence for processes that escaped both the process group and the
    descendant snapshot. ``settle``: keep looking until that long has passed without a
    find. A process can fork between a listing and its kill, or exit between the listing
    and the read of its environment after forking (daemonizing's middle process does
    both within a millisecond), and its child is in no listing made before. Returns the
    pids killed.
    """
    import psutil

    killed: list[int] = []
    me = os.getpid()
    quiet_until = time.monotonic() + settle
    for _ in range(50):
        found = False
        for p in psutil.process_iter(["pid"]):
            if p.pid == me:
                continue
            try:
                mark = p.environ().get(OWNER_ENV, "")
                mine = mark == owner if owner is not None else mark.startswith(token + ":")
                if not mine or p.status() == psutil.STATUS_ZOMBIE:
                    continue
                found = True  # even if it exits before the kill: it may have forked
                if kill_verified(p):  # never a stranger that got the pid since the listing
                    killed.append(p.pid)
            except psutil.Error:
                continue
        if found:
            quiet_until = time.monotonic() + max(settle, 0.01)
        elif time.monotonic() >= quiet_until:
            break
        time.sleep(0.01)
    return killed


class Registry:
    """Processes started and not yet stopped, for the final sweep and the watchdog."""

    def __init__(self) -> None:
        self._live: dict[int, Registered] = {}
        self.started = False  # anything was ever started (worth a final sweep)
        self._lock = threading.RLock()  # re-entrant for the SIGTERM handler, as in a stop
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watch_sock: socket.socket | None = None

    def watch(self) -> None:
        """Have the watchdog running before a process is spawned: if pytest died between
        the spawn and :meth:`add`, a watchdog started only then would never exist, while
        one already running sweeps the new process by its marker."""
        with self._lock:
            self.started = True
            if self._watch_sock is None:
                self._start_watchdog()

    def add(self, proc: Registered) -> None:
        with self._lock:
            self.started = True
            self._live[proc.pid] = proc
            identity = identify(proc.pid, proc.owner)
            if identity is not None:  # else it is gone already: nothing to watch
                self._tell(identity.line())

    def discard(self, proc: Registered) -> None:
        with self._lock:
            if self._live.pop(proc.pid, None) is not None:
                self._tell(f"- {proc.pid}\n")

    def add_temp_dir(self, path: str) -> None:
        """A directory made for a server outside the session's temp dir (which pytest
        cleans): removed by the watchdog if pytest dies before its server's stop does."""
        with self._lock:
            self._tell(f"d {quote(path)}\n")

    def discard_temp_dir(self, path: str) -> None:
        with self._lock:
            self._tell(f"-d {quote(path)}\n")

    def live(self) -> list[Registered]:
        with self._lock:
            return list(self._live.values())

    def _tell(self, line: str) -> None:
        if self._watch_sock is None:
            self._start_watchdog()
        sock = self._watch_sock
        if sock is None:
            return
        try:
            sock.sendall(line.encode())
        except OSError:
            self._watch_sock = None

    def _start_watchdog(self) -> None:
        """A tiny process that outlives a killed pytest and stops what we started.

        It learns each process's identity over a socketpair (which, unlike a pipe on its
        stdin, no other process can open through ``/proc``); when the socket closes without
        ``bye`` (pytest died, even by SIGKILL), it kills the trees of those still provably
        ours and sweeps by ``OWNER_ENV``.
        """
        if os.environ.get("FLASKSERVE_NO_WATCHDOG"):
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-m", "pytest_flaskserve._child.watchdog", SESSION_TOKEN,
                 str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                pass_fds=(theirs.fileno(),),
                cwd=tempfile.gettempdir(),
            )
            self._watch_sock = ours
        except OSError:
            self._watchdog = None
            ours.close()
        finally:
            theirs.close()

    def close(self, timeout: float = 5.0) -> None:
        """Clean end of the session: tell the watchdog, and wait for it."""
        with self._lock:
            sock, self._watch_sock = self._watch_sock, None
            dog, self._watchdog = self._watchdog, None
        if sock is not None:
            with sock:
                try:
                    sock.sendall(b"bye\n")
                except OSError:
                    pass
        if dog is not None:
            try:
                dog.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                dog.kill()
                dog.wait()


registry = Registry()


def stop_all(grace: float = 2.0) -> list[StopResult]:
    """Stop everything still running (end of session, Ctrl-C) and close the watchdog."""
    results = [p.stop(signal.SIGTERM, grace) for p in registry.live()]
    registry.close()
    if registry.started:
        sweep_owned()  # anything that escaped its group and its server's own stop
    return results

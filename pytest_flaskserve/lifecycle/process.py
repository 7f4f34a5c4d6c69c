"""Start a command in its own session with its log in a file; stop its whole tree.

This module knows nothing of HTTP or Flask. ``Popen`` is the single source of truth for
a process's exit code: psutil is used only to find descendants, never to wait.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_flaskserve.lifecycle.reach import identify, kill_verified

#: Every process we start carries this variable (``<session token>:<server id>``), so a
#: sweep can find what escaped its process group, and only what we started.
OWNER_ENV = "FLASKSERVE_OWNER"

SESSION_TOKEN = uuid.uuid4().hex[:16]


def describe_exit(code: int | None) -> str:
    """``exit code 3`` or ``killed by SIGKILL`` for a Popen return code."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass(frozen=True)
class StopResult:
    """How a stop went: the real exit code, and whether we had to SIGKILL."""

    returncode: int | None
    forced: bool
    seconds: float
    already_exited: bool
    #: processes of this server that had left its session and process group (a
    #: daemonizing server: Gunicorn's ``daemon = True``) and were killed by its marker
    detached: tuple[int, ...] = ()


#: how long the sweep after a leader's own exit looks for a daemon it may have forked
_DAEMON_SETTLE = 0.15

#: waits before retrying a fork that failed with EAGAIN (about 3 s in all)
_FORK_RETRY_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.5)


class ManagedProcess:
    """One started command: its own session and process group, output in ``log_path``."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str,
        log_path: Path,
    ) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.log_path = log_path
        self.server_id = uuid.uuid4().hex[:12]
        self.owner = f"{SESSION_TOKEN}:{self.server_id}"
        self.env = {**env, OWNER_ENV: self.owner}
        self._popen: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.stop_result: StopResult | None = None

    # -- start ----------------------------------------------------------------------
    def start(self) -> int:
        """Start the command; returns its pid. Raises OSError if it cannot be executed."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            for pause in (*_FORK_RETRY_PAUSES, None):
                try:
                    self._popen = subprocess.Popen(
                        self.argv,
                        cwd=self.cwd,
                        env=self.env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        close_fds=True,
                    )
                    break
                except BlockingIOError:
                    # EAGAIN from fork: the machine is at its process limit for a moment
                    # (seen with two suites and their servers on 2 cores); not our input.
                    if pause is None:
                        raise
                    time.sleep(pause)
        assert self._popen is not None
        _registry.add(self)
        return self._popen.pid

    @property
    def pid(self) -> int:
        assert self._popen is not None, "process not started"
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def poll(self) -> int | None:
        """The exit code if the leader has exited, else None (reaps it)."""
        return self.returncode

    def descendants(self) -> list[object]:
        """psutil handles of the leader's descendants (empty when it is gone)."""
        import psutil

        try:
            return list(psutil.Process(self.pid).children(recursive=True))
        except psutil.Error:
            return []

    def tree_pids(self) -> set[int]:
        import psutil

        pids = {self.pid}
        for p in self.descendants():
            assert isinstance(p, psutil.Process)
            pids.add(p.pid)
        return pids

    # -- stop -----------------------------------------------------------------------
    def stop(self, sig: int = signal.SIGTERM, grace: float = 5.0) -> StopResult:
        """Stop the whole tree: ``sig`` to the group, ``grace`` seconds, SIGKILL, sweep.

        Safe to call more than once and from any thread; later calls return the first
        result.
        """
        with self._lock:
            if self.stop_result is not None:
                return self.stop_result
            popen = self._popen
            if popen is None:
                raise RuntimeError("process was never started")
            t0 = time.perf_counter()
            already = popen.poll() is not None
            snapshot = [] if already else self.descendants()
            forced = False
            if not already:
                _killpg(popen.pid, sig)
                try:
                    popen.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    forced = True
                    _killpg(popen.pid, signal.SIGKILL)
                    popen.wait()
            # A leader that exited on its own may be daemonizing (fork, setsid, fork): its
            # children, still in the group or already out of it, are found by the marker
            # in their environment (searched only then: it reads every process) and
            # counted, so the failure can say so.
            detached = sweep_owned(owner=self.owner, settle=_DAEMON_SETTLE) if already else []
            # Whatever stayed in the group (workers, the reloader child) goes now.
            kill_reaped_group(popen.pid, signal.SIGKILL)
            _kill_survivors(snapshot)
            self.stop_result = StopResult(
                returncode=popen.returncode,
                forced=forced,
                seconds=time.perf_counter() - t0,
                already_exited=already,
                detached=tuple(detached),
            )
            _registry.discard(self)
            return self.stop_result


def _killpg(pgid: int, sig: int) -> None:
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
        _killpg(pgid, sig)  # no process has the leader's pid: only our members can be left
        return
    import psutil

    for proc in psutil.process_iter():
        try:
            if proc.pid != pgid and os.getpgid(proc.pid) == pgid:
                proc.send_signal(sig)
        except (OSError, psutil.Error):
            pass


def _kill_survivors(procs: Sequence[object]) -> None:
    """SIGKILL descendants that left the process group (setsid) and still run."""
    import psutil

    for p in procs:
        assert isinstance(p, psutil.Process)
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                p.kill()
        except psutil.Error:
            pass


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


class _Registry:
    """Processes started and not yet stopped, for the final sweep and the watchdog."""

    def __init__(self) -> None:
        self._live: dict[int, ManagedProcess] = {}
        self.started = False  # anything was ever started (worth a final sweep)
        self._lock = threading.Lock()
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watch_sock: socket.socket | None = None

    def add(self, proc: ManagedProcess) -> None:
        with self._lock:
            self.started = True
            self._live[proc.pid] = proc
            identity = identify(proc.pid, proc.owner)
            if identity is not None:  # else it is gone already: nothing to watch
                self._tell(identity.line())

    def discard(self, proc: ManagedProcess) -> None:
        with self._lock:
            if self._live.pop(proc.pid, None) is not None:
                self._tell(f"- {proc.pid}\n")

    def live(self) -> list[ManagedProcess]:
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


_registry = _Registry()


def stop_all(grace: float = 2.0) -> list[StopResult]:
    """Stop everything still running (end of session, Ctrl-C) and close the watchdog."""
    results = [p.stop(signal.SIGTERM, grace) for p in _registry.live()]
    _registry.close()
    if _registry.started:
        sweep_owned()  # anything that escaped its group and its server's own stop
    return results


@dataclass(frozen=True)
class Captured:
    returncode: int | None
    output: str
    timed_out: bool


def run_captured(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
) -> Captured:
    """Run a short-lived helper with a deadline; kill its whole group if it overruns.

    Output goes to a temporary file, not a pipe, so a grandchild that keeps the pipe
    open cannot make us wait past the deadline.
    """
    _registry.started = True  # a helper importing the app can leave a daemon: sweep at the end
    with tempfile.TemporaryFile() as out:
        popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**env, OWNER_ENV: f"{SESSION_TOKEN}:helper"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        timed_out = False
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _killpg(popen.pid, signal.SIGKILL)  # the leader is alive: the group is ours
        popen.wait()
        kill_reaped_group(popen.pid, signal.SIGKILL)
        # The answer is the last line; an app printing 100 MB at import must not cost
        # 100 MB here (measured: 45 -> 244 MB peak before this limit).
        size = out.seek(0, os.SEEK_END)
        out.seek(max(0, size - _CAPTURE_LIMIT))
        text = out.read().decode("utf-8", errors="replace")
    return Captured(None if timed_out else popen.returncode, text, timed_out)


#: how much of a helper's output is kept (its end, where the answer is)
_CAPTURE_LIMIT = 1 << 20

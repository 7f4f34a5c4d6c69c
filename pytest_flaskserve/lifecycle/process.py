"""Start a command in its own session with its log in a file; stop its whole tree.

This module knows nothing of HTTP or Flask. The parent that started a process is the
single source of truth for its exit code (``Popen`` here, the zygote for a warm process):
psutil is used only to find descendants, never to wait.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_flaskserve._child.protocol import ANSWER_FD_ENV
from pytest_flaskserve.lifecycle.reach import SUBREAPER_PREEXEC, kill_tree
from pytest_flaskserve.lifecycle.registry import (
    OWNER_ENV,
    SESSION_TOKEN,
    group_members,
    kill_reaped_group,
    registry,
    signal_group,
    stop_all,
    sweep_owned,
)

if TYPE_CHECKING:
    import psutil


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


#: how often a stop that waits for the leader lists its tree again
_WATCH_SLICE = 0.02

#: how long the sweep after a leader's own exit looks for a daemon it may have forked
_DAEMON_SETTLE = 0.15

#: waits before retrying a fork that failed with EAGAIN (about 3 s in all)
_FORK_RETRY_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.5)


class ManagedProcess:
    """One started command: its own session and process group, output in ``log_path``.

    :meth:`stop` is the one stop algorithm; how a process is started, polled, waited for
    and reaped are its steps (:meth:`_spawn`, :meth:`_poll`, :meth:`_wait`,
    :meth:`_forget`), which a process started another way (a warm one, forked by the
    zygote) overrides.
    """

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
        self._pid: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        # Re-entrant: pytest's SIGTERM handler (plugin) stops every server from wherever
        # the main thread was, possibly inside a stop holding this lock.
        self._lock = threading.RLock()
        self.stop_result: StopResult | None = None
        #: why it started cold while warm starts were on (set by the warm launcher)
        self.cold_reason: str | None = None

    @property
    def started_warm(self) -> bool:
        """Forked from the warm launcher (see :class:`pytest_flaskserve.warm.WarmProcess`)."""
        return False

    # -- start ----------------------------------------------------------------------
    def start(self) -> int:
        """Start the command; returns its pid. Raises OSError if it cannot be executed."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        registry.watch()
        self._pid = self._spawn()
        registry.add(self)
        return self._pid

    @property
    def pid(self) -> int:
        assert self._pid is not None, "process not started"
        return self._pid

    @property
    def returncode(self) -> int | None:
        return None if self._pid is None else self._poll()

    def poll(self) -> int | None:
        """The exit code if the leader has exited, else None (reaps it)."""
        return self.returncode

    def descendants(self) -> list[psutil.Process]:
        """psutil handles of the leader's descendants (empty when it is gone)."""
        import psutil

        try:
            return list(psutil.Process(self.pid).children(recursive=True))
        except psutil.Error:
            return []

    def tree_pids(self) -> set[int]:
        return {self.pid, *(p.pid for p in self.descendants())}

    # -- stop -----------------------------------------------------------------------
    def stop(self, sig: int = signal.SIGTERM, grace: float = 5.0, *,
             signalled: bool = False) -> StopResult:
        """Stop the whole tree: ``sig`` to the group (0: only wait), ``grace`` seconds,
        SIGKILL, then whatever left the group. ``signalled``: the caller already sent the
        stop signal (a stop strategy), so an exit found at once answers it and is not
        reported as ``already_exited``.

        Safe to call more than once and from any thread; later calls return the first
        result.
        """
        with self._lock:
            if self.stop_result is not None:
                return self.stop_result
            if self._pid is None:
                raise RuntimeError("process was never started")
            pid = self._pid
            t0 = time.perf_counter()
            code = self._poll()
            exited = code is not None
            already = exited and not signalled
            snapshot = [] if exited else self.descendants()
            forced = False
            if not exited:
                if sig:
                    signal_group(pid, sig)
                code = self._wait_watching(grace, snapshot)
                if code is None:
                    forced = True
                    signal_group(pid, signal.SIGKILL)
                    code = self._wait(None)
            if not forced and not already:
                # The leader answered the stop; the rest of its tree got the same signal
                # and may still be on its way out (a worker or multiprocessing's resource
                # tracker saving coverage data in atexit). A SIGKILL now would cut that
                # short, so they get what is left of the grace first.
                # (A leader already gone when we came had no tree listed: its group is.)
                _wait_gone(group_members(pid) if exited else snapshot,
                           grace - (time.perf_counter() - t0))
            # A leader that exited on its own may be daemonizing (fork, setsid, fork): its
            # children, still in the group or already out of it, are found by the marker
            # in their environment (searched only then: it reads every process) and
            # counted, so the failure can say so.
            detached = sweep_owned(owner=self.owner, settle=_DAEMON_SETTLE) if already else []
            # Whatever stayed in the group (workers, the reloader child) goes now.
            kill_reaped_group(pid, signal.SIGKILL)
            # one that left the group (setsid) and outlived the grace ignored the stop, or
            # never heard it: killed, and the stop says it had to
            forced = kill_survivors(snapshot, pid) > 0 or forced
            self.stop_result = StopResult(
                returncode=code,
                forced=forced,
                seconds=time.perf_counter() - t0,
                already_exited=already,
                detached=tuple(detached),
            )
            registry.discard(self)
            self._forget()
            return self.stop_result

    def _wait_watching(self, grace: float, snapshot: list[psutil.Process]) -> int | None:
        """:meth:`_wait` for up to ``grace`` seconds, adding to ``snapshot`` what appears
        below the leader meanwhile: a daemon the app double-forks (fork, setsid, fork)
        is adopted by the leader, a subreaper, only while it lives; once it has exited the
        daemon passes to init, out of reach, so it is listed while it can be."""
        deadline = time.perf_counter() + grace
        known = {_identity(p) for p in snapshot}
        while True:
            code = self._wait(max(0.0, min(_WATCH_SLICE, deadline - time.perf_counter())))
            if code is not None:
                return code
            for p in self.descendants():
                found = _identity(p)
                if found is not None and found not in known:
                    known.add(found)
                    snapshot.append(p)
            if time.perf_counter() >= deadline:
                return None

    # -- the steps a process started another way overrides ------------------------------
    def _spawn(self) -> int:
        """Start the command in its own session; its pid."""
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
                        preexec_fn=SUBREAPER_PREEXEC,  # its orphans stay in its tree
                    )
                    break
                except BlockingIOError:
                    # EAGAIN from fork: the machine is at its process limit for a moment
                    # (seen with two suites and their servers on 2 cores); not our input.
                    if pause is None:
                        raise
                    time.sleep(pause)
        assert self._popen is not None
        return self._popen.pid

    def _poll(self) -> int | None:
        """The leader's exit code once it has exited (reaped), else None."""
        assert self._popen is not None
        return self._popen.poll()

    def _wait(self, timeout: float | None) -> int | None:
        """Wait up to ``timeout`` seconds (None: until it exits) for the exit code."""
        assert self._popen is not None
        try:
            return self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _forget(self) -> None:
        """The stop is done: drop what tracked the process (nothing to do for Popen)."""


def _identity(p: psutil.Process) -> tuple[int, float] | None:
    """A process's pid and start time (a reused pid is another process), None once gone."""
    import psutil

    try:
        return p.pid, p.create_time()
    except psutil.Error:
        return None


def _wait_gone(procs: Sequence[psutil.Process], timeout: float) -> None:
    """Wait up to ``timeout`` seconds until every process in ``procs`` has exited (a
    zombie counts as exited: its parent, not us, reaps it)."""
    import psutil

    deadline = time.perf_counter() + timeout
    pending = list(procs)
    while pending and time.perf_counter() < deadline:
        still = []
        for p in pending:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    still.append(p)
            except psutil.Error:
                pass
        if not still:
            return
        pending = still
        time.sleep(0.01)


def kill_survivors(procs: Sequence[psutil.Process], group: int) -> int:
    """SIGKILL descendants that left the process ``group`` (setsid) and still run; how
    many. Members of the group are not counted: its SIGKILL has just been sent, and one
    may not have died yet when it is looked at."""
    import psutil

    killed = 0
    for p in procs:
        try:
            if not p.is_running() or p.status() == psutil.STATUS_ZOMBIE:
                continue
            in_group = os.getpgid(p.pid) == group
            p.kill()
            killed += not in_group
        except (psutil.Error, ProcessLookupError):
            pass
    return killed


@dataclass(frozen=True)
class Captured:
    returncode: int | None
    output: str
    timed_out: bool
    #: what the helper wrote to its answer descriptor (``FLASKSERVE_ANSWER_FD``)
    answer: str = ""


def run_captured(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
) -> Captured:
    """Run a short-lived helper with a deadline; kill its whole group if it overruns.

    Output goes to a temporary file, not a pipe, so a grandchild that keeps the pipe
    open cannot make us wait past the deadline.
    """
    registry.watch()  # a helper importing the app can leave a daemon: swept at the end
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as answer:
        popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**env, OWNER_ENV: f"{SESSION_TOKEN}:helper",
                 ANSWER_FD_ENV: str(answer.fileno())},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            pass_fds=(answer.fileno(),),
            preexec_fn=SUBREAPER_PREEXEC,  # what the app's import forks stays below it
        )
        timed_out = False
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_helper_tree(popen.pid)
        except BaseException:  # Ctrl-C while the app imports: the helper goes with us
            _kill_helper_tree(popen.pid)
            popen.wait()
            kill_reaped_group(popen.pid, signal.SIGKILL)
            raise
        popen.wait()
        kill_reaped_group(popen.pid, signal.SIGKILL)
        # The answer is the last line; an app printing 100 MB at import must not cost
        # 100 MB here (measured: 45 -> 244 MB peak before this limit).
        size = out.seek(0, os.SEEK_END)
        out.seek(max(0, size - _CAPTURE_LIMIT))
        text = out.read().decode("utf-8", errors="replace")
        answer.seek(0)
        given = answer.read(_CAPTURE_LIMIT).decode("utf-8", errors="replace")
    return Captured(None if timed_out else popen.returncode, text, timed_out, given)


def _kill_helper_tree(pid: int) -> None:
    """A helper that overran: its tree first (it is a subreaper, so all of it is below
    it, detached or not), then its group; it is alive and unreaped, so the ids are ours."""
    import psutil

    try:
        kill_tree(psutil.Process(pid))
    except psutil.Error:
        signal_group(pid, signal.SIGKILL)


#: how much of a helper's output is kept (its end, where the answer is)
_CAPTURE_LIMIT = 1 << 20


__all__ = ["OWNER_ENV", "SESSION_TOKEN", "Captured", "ManagedProcess", "StopResult",
           "describe_exit", "kill_reaped_group", "run_captured", "stop_all", "sweep_owned"]

"""How a server's tree is stopped: the algorithm its launcher names (:class:`StopStrategy`).

The group stop is :meth:`ManagedProcess.stop`; the other strategies prepare it (the stop
signal to the leader alone, or to the children of a paused leader) and then let it wait,
kill what is left and reap, so every strategy ends in the same teardown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from typing import TYPE_CHECKING

from pytest_flaskserve.lifecycle.process import ManagedProcess, StopResult, kill_survivors
from pytest_flaskserve.servers.base import StopStrategy

if TYPE_CHECKING:
    import psutil


def stop(proc: ManagedProcess, strategy: StopStrategy, sig: int, grace: float) -> StopResult:
    """Stop ``proc``'s whole tree with ``strategy``; the first stop's result thereafter."""
    if strategy is StopStrategy.CHILDREN_FIRST:
        first = proc.stop_result is None
        t0 = time.perf_counter()
        # Once the leader has been told, a second signal must not follow: Python
        # restores default handlers while it finalizes, so a repeated SIGTERM would
        # kill the exiting master (-15) instead of letting it exit 0.
        signalled = stop_children_first(proc, sig, grace)
        told = signalled is not None
        # one stop timeout in all: a descendant that ignores the signal has used the
        # grace already, and the leader (its workers gone) needs only a moment to exit
        left = max(grace - (time.perf_counter() - t0), min(grace, _LEADER_EXIT))
        result = proc.stop(0 if told else sig, left if told else grace, signalled=told)
        # one of them that left the group and ignored the signal is no longer below the
        # leader once its parent exited: killed here, and the stop says it had to
        if kill_survivors(signalled or [], proc.pid) and not result.forced:
            result = proc.stop_result = dataclasses.replace(result, forced=True)
        if first and not result.already_exited:
            result = proc.stop_result = dataclasses.replace(
                result, seconds=time.perf_counter() - t0)
        return result
    if strategy is StopStrategy.LEADER_FIRST and proc.poll() is None:
        # Listed before the signal: a leader that exits at once takes its adopted orphans
        # (a daemon the app double-forked) out of its tree before the stop could list them.
        tree = proc.descendants()
        # not reaped yet, so the pid is still our leader's
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        # 0: wait, then kill the group; a leader that exits before that wait
        # begins answered our signal, it did not exit on its own
        result = proc.stop(0, grace, signalled=True)
        if kill_survivors(tree, proc.pid) and not result.forced:
            result = proc.stop_result = dataclasses.replace(result, forced=True)
        return result
    return proc.stop(sig, grace)


#: the least time a told leader gets to exit after its children's stop used the grace
_LEADER_EXIT = 0.5

_draining: set[int] = set()
#: a worker exits ~35 ms after its signal; one still running this much later lost it
_RESEND_AFTER = 0.3
#: re-entrant: the SIGTERM handler may stop a server while the main thread holds it
_draining_lock = threading.RLock()


def stop_children_first(proc: ManagedProcess, sig: int,
                        grace: float) -> list[psutil.Process] | None:
    """Let the leader's children exit on ``sig`` before the leader hears of the stop.

    For a pre-fork master that, once told to stop, kills whatever workers it still
    counts (Gunicorn: ``Arbiter.stop`` sends SIGTERM, waits ``graceful_timeout`` in
    0.1 s sleeps, then SIGKILL; a stop took ~270 ms). The master is paused (SIGSTOP) so
    it can neither reap nor respawn; the workers get ``sig`` and exit through their own
    clean path (atexit, ``worker_exit``); once they are all zombies the master gets
    ``sig`` and SIGCONT together. It then handles the stop and SIGCHLD in one batch,
    finds only exited workers, reaps them with their real status and exits with its own
    code. With ``--graceful-timeout 0`` that is the whole stop: ~70 ms, nothing killed.

    Bounded by ``grace``: workers still running then are left to the master's own
    timeout and to ``ManagedProcess.stop`` as before. The master is always resumed.
    Returns the children signalled, once the leader was sent ``sig`` too (None: nothing
    done, stop it as usual).
    """
    if proc.poll() is not None:
        return None
    with _draining_lock:
        if proc.pid in _draining or proc.stop_result is not None:
            return None
        _draining.add(proc.pid)
    try:
        # Paused before listing, so no worker is forked between the list and the signal.
        _signal(proc.pid, signal.SIGSTOP)
        children = proc.descendants()
        if not children:
            _signal(proc.pid, signal.SIGCONT)
            return None
        try:
            for child in children:
                _signal(child.pid, sig)
            deadline = time.monotonic() + grace
            resend = time.monotonic() + _RESEND_AFTER
            while time.monotonic() < deadline:
                running = [child for child in children if _running(child)]
                if not running:
                    break
                if time.monotonic() >= resend:
                    # A worker forked a moment before the pause still runs the master's
                    # handlers until it installs its own (Gunicorn's Worker.init_signals):
                    # they queue the signal for a master loop the worker never runs, so
                    # the first signal is lost and it would serve until the deadline.
                    for child in running:
                        _signal(child.pid, sig)
                    resend = time.monotonic() + _RESEND_AFTER
                time.sleep(0.002)
        finally:
            # Both pending when it resumes: the stop and the SIGCHLD of its exited workers.
            _signal(proc.pid, sig)
            _signal(proc.pid, signal.SIGCONT)
        return children
    finally:
        with _draining_lock:
            _draining.discard(proc.pid)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _running(child: psutil.Process) -> bool:
    """Not yet exited: alive and not a zombie waiting for its (paused) parent."""
    import psutil

    try:
        return child.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False

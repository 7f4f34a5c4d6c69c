"""A multi-process server's workers, and sending one request to a chosen worker.

Which worker accepts a connection is up to the kernel: with four Gunicorn workers, ten
requests in a row often all land on the same one, so per-worker state shows up now and
then instead of every time. To make it deterministic a request is *pinned* to a worker.
Workers are the leader's descendants that hold a listening socket on the server's port
(the Gunicorn arbiter and the uWSGI master are leaders and never take part). How to pin
depends on how the workers share the port, which is read from their file descriptors:

* one shared socket (Gunicorn, uWSGI): whoever calls ``accept()`` first gets the
  connection, so every other worker is paused (SIGSTOP) while the request runs and
  resumed (SIGCONT) right after;
* a socket per worker (``SO_REUSEPORT``, Granian): the kernel picks a socket by hashing
  the connection's addresses, and a paused worker's queue would hold the request, so
  instead a connection is opened, the worker that accepted it is looked up, and the
  connection is closed unused and reopened (new source port, new hash) until the chosen
  worker has it. Nothing is sent on a discarded connection.

Only processes this session started are signalled, and never the leader.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pytest_flaskserve.errors import hide_own_errors
from pytest_flaskserve.lifecycle.supervisor import ServerHandle
from pytest_flaskserve.parity.wire import Body, Exchange, connection_to, send

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


@dataclass(frozen=True)
class Workers:
    """The processes that accept on the server's port, and how they share it."""

    pids: tuple[int, ...]
    shared_socket: bool

    @property
    def several(self) -> bool:
        return len(self.pids) >= 2


def _listening_inodes(pid: int, port: int) -> set[str]:
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except psutil.Error:
        return set()
    inodes = set()
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
            try:
                inodes.add(os.readlink(f"/proc/{pid}/fd/{c.fd}"))
            except OSError:
                inodes.add(f"{pid}:{c.fd}")  # no /proc: assume not shared
    return inodes


def discover(handle: ServerHandle) -> Workers:
    """The server's workers right now (none for a single-process server)."""
    import psutil

    found: dict[int, set[str]] = {}
    for proc in handle.process.descendants():
        assert isinstance(proc, psutil.Process)
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        inodes = _listening_inodes(proc.pid, handle.port)
        if inodes:
            found[proc.pid] = inodes
    shared = bool(found) and len(set.union(*found.values())) == 1
    return Workers(pids=tuple(sorted(found)), shared_socket=shared)


def wait_for_workers(handle: ServerHandle, expected: int, timeout: float = 5.0) -> Workers:
    """The workers once ``expected`` of them listen, or what there is at the deadline.

    A server with no listening descendants right after it answered HTTP serves from one
    process, and the wait ends at once.
    """
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        workers = discover(handle)
        if not workers.pids or len(workers.pids) >= expected or time.monotonic() >= deadline:
            return workers
        time.sleep(pause)
        pause = min(pause * 1.5, 0.1)


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


@contextmanager
def _paused(pids: Iterator[int] | tuple[int, ...]) -> Iterator[None]:
    paused: list[int] = []
    try:
        for pid in pids:
            if _signal(pid, signal.SIGSTOP):
                paused.append(pid)
        yield
    finally:
        for pid in paused:
            _signal(pid, signal.SIGCONT)


def _accepted_by(pids: tuple[int, ...], local: tuple[str, int], deadline: float) -> int | None:
    """The worker holding the server side of our connection (client address ``local``)."""
    import psutil

    pause = 0.002
    while time.monotonic() < deadline:
        for pid in pids:
            try:
                conns = psutil.Process(pid).net_connections(kind="inet")
            except psutil.Error:
                continue
            if any(c.raddr and c.raddr.port == local[1] and c.raddr.ip == local[0]
                   for c in conns):
                return pid
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
    return None


class PinError(RuntimeError):
    """The chosen worker could not be given the request (it vanished, or never accepted)."""


def send_to(handle: ServerHandle, worker: int, method: str, path: str, *,
            headers: Any = None, body: Body = None, timeout: float = 10.0,
            workers: Workers | None = None) -> Exchange:
    """Send one request so that worker ``worker`` of ``handle`` serves it.

    Raises :class:`PinError` when ``worker`` is not a current worker, or (separate
    sockets) no connection reached it within the attempts and ``timeout``.
    """
    current = workers or discover(handle)
    if worker not in current.pids:
        raise PinError(f"pid {worker} is not a worker of {handle.server} "
                       f"(workers: {list(current.pids)})")
    if current.shared_socket:
        with _paused(tuple(p for p in current.pids if p != worker)):
            return send(handle.host, handle.port, method, path, headers=headers, body=body,
                        timeout=timeout, ca_path=handle.ca_path)
    deadline = time.monotonic() + timeout
    for _ in range(20 * len(current.pids)):
        conn = connection_to(handle.host, handle.port, ca_path=handle.ca_path,
                             timeout=max(0.1, deadline - time.monotonic()))
        try:
            conn.connect()
            assert conn.sock is not None
            local = conn.sock.getsockname()[:2]
            who = _accepted_by(current.pids, local, min(deadline, time.monotonic() + 2.0))
        except OSError:
            conn.close()
            raise
        if who == worker:
            return send(handle.host, handle.port, method, path, headers=headers, body=body,
                        timeout=max(0.1, deadline - time.monotonic()), connection=conn)
        conn.close()
        if time.monotonic() >= deadline:
            break
    raise PinError(f"no connection reached {handle.server} worker {worker} in time; its "
                   "workers each have their own socket and the kernel kept choosing others")


class RoundRobin:
    """Hands out a server's workers in turn, like a load balancer spreading requests."""

    def __init__(self, handle: ServerHandle) -> None:
        self.handle = handle
        self._next = 0
        # A server answers once its first worker does; the others may still be booting
        # (seconds on a loaded machine). Before the first turn, wait for as many as were
        # asked for, or every request of a short test would go to whoever is up.
        self._expected = handle.options.workers or 0

    def next_worker(self) -> tuple[int, Workers] | None:
        """The worker for the next request, or None for a single-process server."""
        if self._expected > 1:
            workers = wait_for_workers(self.handle, self._expected)
            self._expected = 0
        else:
            workers = discover(self.handle)
        if not workers.several:
            return None
        pid = workers.pids[self._next % len(workers.pids)]
        self._next += 1
        return pid, workers

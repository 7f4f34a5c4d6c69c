"""Runs in the zygote: the interpreter :class:`~.launcher.WarmLauncher` starts once per
session. Its ``-c`` code imports what every Flask server's start imports (Flask) before
anything of ours; :func:`zygote_main` then takes its own modules out of ``sys.modules``
(they keep working through the references they hold), so a child imports a fresh copy of
anything it needs and finds nothing a cold start would not have.

Per server it forks a :class:`~.forker.Forker` on the first request, which imports that
server's modules and forks the servers; the zygote relays between the launcher and its
forkers, reaps them, and on shutdown takes every process below it down.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import signal
import socket
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

from pytest_flaskserve.lifecycle.reach import become_subreaper, kill_descendants
from pytest_flaskserve.warm.become import become
from pytest_flaskserve.warm.command import Child
from pytest_flaskserve.warm.events import (
    ChildWake,
    Lines,
    exited_children,
    thread_count,
)
from pytest_flaskserve.warm.forker import Forker, loaded_top_level

#: our modules, out of ``sys.modules`` but alive (see the module docstring)
_HIDDEN: list[types.ModuleType] = []


def zygote_main(fd: int, keep: set[str], failed: dict[str, str], t0: float) -> None:
    """The zygote's main. ``keep``: ``sys.modules`` after the common preload, before
    this package was imported; ``failed``: preloads that did not import.

    A forked child returns here out of the loops (their frames, sockets and pipes gone)
    and runs the server from the interpreter's top level, so the exit path is the
    interpreter's.
    """
    _HIDDEN.extend(sys.modules.pop(name) for name in list(sys.modules) if name not in keep)
    result: Child | _NewForker | None = _Zygote(fd, failed, t0).serve()
    while isinstance(result, _NewForker):
        result = Forker(result.sock, result.group).serve()
    if result is None:
        return
    try:
        become(result)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - printed as the interpreter would, then exit 1
        tb = exc.__traceback__
        # our frames (this package) are not the script's: a cold start has none
        while tb is not None and os.path.dirname(tb.tb_frame.f_code.co_filename) == _HERE:
            tb = tb.tb_next
        # the hook prints the exception's own __traceback__ when it has one
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        raise SystemExit(1) from None


_HERE = os.path.dirname(__file__)


@dataclass
class _NewForker:
    """In a freshly forked forker: what it serves."""

    sock: socket.socket
    group: dict[str, Any]


@dataclass
class _Route:
    """A forker as the zygote sees it."""

    pid: int
    sock: socket.socket
    lines: Lines
    pending: set[int] = field(default_factory=set)  # request ids not answered yet
    live: set[int] = field(default_factory=set)  # servers it forked that run


class _Zygote:
    def __init__(self, fd: int, failed: dict[str, str], t0: float) -> None:
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)
        self.routes: dict[str, _Route] = {}
        # Orphans of a forker or a server come here rather than to init, detached and
        # unmarked or not, so shutdown (and the watchdog) can reach them.
        become_subreaper()
        self.wake = ChildWake()
        gc.collect()
        gc.freeze()
        self.send({"op": "ready", "pid": os.getpid(), "modules": loaded_top_level(),
                   "failed": failed, "threads": thread_count(),
                   "seconds": time.perf_counter() - t0})

    def send(self, message: dict[str, Any]) -> None:
        self.send_line(json.dumps(message).encode())

    def send_line(self, line: bytes) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(line + b"\n")

    def serve(self) -> _NewForker | None:
        lines = Lines(self.sock)
        while True:
            readable = self.wake.wait([self.sock.fileno(),
                                       *(r.sock.fileno() for r in self.routes.values())])
            for name, route in list(self.routes.items()):
                if route.sock.fileno() in readable:
                    self.relay(name, route)
            if self.sock.fileno() in readable:
                received = lines.read()
                if received is None:
                    self.shutdown()
                    return None
                for line in received:
                    message = json.loads(line)
                    if message.get("op") == "bye":
                        self.shutdown()
                        return None
                    if message.get("op") == "spawn":
                        forker = self.route(message, line)
                        if forker is not None:
                            return forker
            self.reap()

    def route(self, message: dict[str, Any], line: bytes) -> _NewForker | None:
        """Hand a spawn request to its server's forker, forking that first if need be."""
        group = message["group"]
        route = self.routes.get(group["name"])
        if route is None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                ours.close()
                self.wake.release()
                self.sock.close()
                for other in self.routes.values():
                    other.sock.close()
                return _NewForker(theirs, group)
            theirs.close()
            route = self.routes[group["name"]] = _Route(pid, ours, Lines(ours))
        route.pending.add(int(message["id"]))
        try:
            route.sock.sendall(line + b"\n")
        except OSError:
            self.drop(group["name"], route)
        return None

    def relay(self, name: str, route: _Route) -> None:
        """Pass a forker's replies up, keeping track of what is pending and running."""
        received = route.lines.read()
        if received is None:
            self.drop(name, route)
            return
        for line in received:
            message = json.loads(line)
            op = message.get("op")
            if op in ("spawned", "error"):
                route.pending.discard(int(message["id"]))
                if op == "spawned":
                    route.live.add(int(message["pid"]))
            elif op == "exit":
                route.live.discard(int(message["pid"]))
            self.send_line(line)

    def drop(self, name: str, route: _Route) -> None:
        """A forker is gone: its pending requests fail, its servers (whose exit codes
        nobody can read now) are killed and reported so."""
        self.routes.pop(name, None)
        route.sock.close()
        for request_id in route.pending:
            self.send({"op": "error", "id": request_id, "errno": errno.EIO,
                       "error": f"the warm forker of {name} exited", "cold": True})
        for pid in route.live:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            self.send({"op": "exit", "pid": pid, "code": -signal.SIGKILL})

    def reap(self) -> None:
        """Forkers and adopted orphans: nobody waits for their codes."""
        for _ in exited_children():
            pass

    def shutdown(self) -> None:
        """The client is done (or gone): nothing forked below may outlive the zygote."""
        for route in self.routes.values():
            route.sock.close()  # each forker stops its servers when its connection ends
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(r.pid) for r in self.routes.values()):
            self.reap()
            time.sleep(0.005)
        kill_descendants()  # forkers that did not finish, servers, adopted orphans
        self.reap()


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return waited == 0

"""Runs in a *forker*: a process the zygote forked for one server, which imports that
server's modules on top of the zygote's, then forks a child per spawn request, reaps its
children and reports their exit codes. Standard library only.

One forker per server keeps each child's ``sys.modules`` what its cold start would have:
the interpreter's start-up modules, Flask (which the app imports), and this server's own
modules, never another server's.
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
from typing import Any

from pytest_flaskserve.lifecycle.reach import become_subreaper, kill_descendants
from pytest_flaskserve.warm.command import (
    Child,
    Command,
    candidates,
    parse_command,
    prefix_entries,
)
from pytest_flaskserve.warm.events import (
    ChildWake,
    Lines,
    exited_children,
    thread_count,
)


class Forker:
    """Preload one server's modules (``group``: name, preload, entry_points, refresh) and
    serve spawn requests for it on ``sock``."""

    def __init__(self, sock: socket.socket, group: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        self.sock = sock
        self.name = str(group["name"])
        self.refreshers = tuple(filter(None, [group.get("refresh")]))
        failed: dict[str, str] = {}
        for name in group.get("preload", ()):
            try:
                __import__(name)
            except Exception as exc:  # noqa: BLE001 - not installed: that server starts slower
                failed[name] = f"{type(exc).__name__}: {exc}"
        if group.get("entry_points"):
            try:
                import importlib.metadata

                for entry_group in group["entry_points"]:
                    importlib.metadata.entry_points(group=entry_group)
            except Exception:  # noqa: BLE001 - only a cache warm-up
                pass
        #: what a child keeps: everything else the zygote's machinery imported is dropped
        self.allowed = frozenset(sys.modules)
        self.modules = loaded_top_level()
        self.threads = thread_count()
        self.children: set[int] = set()
        become_subreaper()  # a server's orphans stay with its forker, within the zygote
        self.wake = ChildWake()
        gc.collect()
        gc.freeze()  # children then share these pages instead of copying them on first GC
        self.send({"op": "group-ready", "group": self.name, "pid": os.getpid(),
                   "failed": failed, "threads": self.threads,
                   "seconds": time.perf_counter() - t0})

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(json.dumps(message).encode() + b"\n")

    def serve(self) -> Child | None:
        """Serve until the zygote closes the connection (None), or return in a forked
        child what it is to become."""
        lines = Lines(self.sock)
        while True:
            if self.sock.fileno() in self.wake.wait([self.sock.fileno()]):
                received = lines.read()
                if received is None:
                    self.shutdown()
                    return None
                for line in received:
                    child = self.spawn(json.loads(line))
                    if child is not None:
                        return child
            self.reap()

    def reap(self) -> None:
        for pid, status in exited_children():
            if pid in self.children:  # else an adopted orphan: nobody waits for its code
                self.children.discard(pid)
                self.send({"op": "exit", "pid": pid,
                           "code": os.waitstatus_to_exitcode(status)})

    def shutdown(self) -> None:
        """The zygote is done (or gone): nothing forked here may outlive it."""
        kill_descendants()
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # unreaped children: the ids are ours
        deadline = time.monotonic() + 5
        while self.children and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.005)

    def why_cold(self, command: Command, message: dict[str, Any]) -> str | None:
        """Why this request must start cold: what was imported here would differ from a
        cold start's."""
        if self.threads > 1:
            return (f"importing {self.name}'s modules starts {self.threads} threads; "
                    "forking would be unsafe")
        # a directory the child puts before site-packages holding another copy of a
        # module imported here (a project's flask.py, a vendored package)
        for entry in prefix_entries(command, message["env"], message["cwd"]):
            try:
                names = set(os.listdir(entry))
            except OSError:
                continue
            for name, origin in self.modules.items():
                for candidate in candidates(entry, name, names):
                    if os.path.realpath(candidate) != origin:
                        return f"{candidate} shadows the preloaded {name!r}"
        return None

    def spawn(self, message: dict[str, Any]) -> Child | None:
        request_id = message["id"]
        command = parse_command(message["argv"], sys.executable)
        cold = command if isinstance(command, str) else self.why_cold(command, message)
        if cold is not None:
            self.send({"op": "error", "id": request_id, "error": cold, "cold": True})
            return None
        assert not isinstance(command, str)
        cwd = message["cwd"]
        fds: list[int] = []
        try:
            if not os.path.isdir(cwd):
                raise FileNotFoundError(errno.ENOENT, f"No such directory: {cwd!r}")
            fds.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            fds.append(os.open(message["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND
                               | os.O_CLOEXEC, 0o644))
            sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
            fds += [sync_r, sync_w]
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self.send({"op": "error", "id": request_id, "error": str(exc), "errno": exc.errno})
            return None
        null_fd, log_fd = fds[0], fds[1]
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(sync_r)
                os.setsid()
                become_subreaper()  # as a cold server is: its orphans stay in its tree
                os.dup2(null_fd, 0)
                os.dup2(log_fd, 1)
                os.dup2(log_fd, 2)
                os.close(null_fd)
                os.close(log_fd)
                os.chdir(cwd)
                self.wake.release()
                self.sock.close()
                os.write(sync_w, b"ok")
                os.close(sync_w)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, then gone
                with contextlib.suppress(OSError):
                    os.write(sync_w, f"E{exc}".encode())
                os._exit(127)
            return Child(argv=message["argv"], env=message["env"], cwd=cwd, command=command,
                         refreshers=self.refreshers, allowed_modules=self.allowed)
        for fd in (sync_w, null_fd, log_fd):
            os.close(fd)
        status = b""
        with contextlib.suppress(OSError):
            status = os.read(sync_r, 4096)
        os.close(sync_r)
        self.children.add(pid)
        if status == b"ok":
            self.send({"op": "spawned", "id": request_id, "pid": pid})
        else:
            # The child exited (127) before becoming the server; reap it quietly.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.children.discard(pid)
            error = status[1:].decode(errors="replace") or "child died during setup"
            self.send({"op": "error", "id": request_id, "error": error, "errno": errno.EIO})
        return None


def loaded_top_level() -> dict[str, str]:
    """Top-level modules imported here, with the real path of the file they came from."""
    out: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        if "." in name or name in ("__main__", "sitecustomize", "usercustomize"):
            continue
        origin = getattr(module, "__file__", None)
        if origin:
            out[name] = os.path.realpath(origin)
    return out

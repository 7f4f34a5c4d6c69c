"""Runs in the zygote (``python -c "...zygote_main(fd, preload, groups, refreshers)"``): preload the
servers' modules, fork a child per request, reap children and report their exit codes."""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import types
from typing import Any

from pytest_flaskserve.lifecycle.reach import become_subreaper, kill_descendants
from pytest_flaskserve.warm.become import become
from pytest_flaskserve.warm.command import Child, parse_command


def zygote_main(fd: int, preload: list[str], groups: list[str],
                refreshers: list[str]) -> None:
    """The zygote's main: preload, serve; in a forked child, become the server.

    The child returns here out of the loop (its frames, sockets and pipes gone) and runs
    the server from the interpreter's top level, so the exit path is the interpreter's.
    """
    child = _Zygote(fd, preload, groups, refreshers).serve()
    if child is None:
        return
    try:
        become(child)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - printed as the interpreter would, then exit 1
        tb = exc.__traceback__
        # our frames (this module, become) are not the script's: a cold start has none
        while tb is not None and os.path.dirname(tb.tb_frame.f_code.co_filename) == _HERE:
            tb = tb.tb_next
        # the hook prints the exception's own __traceback__ when it has one
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        raise SystemExit(1) from None


_HERE = os.path.dirname(__file__)


class _Zygote:
    def __init__(self, fd: int, preload: list[str], groups: list[str],
                 refreshers: list[str]) -> None:
        t0 = time.perf_counter()
        self.refreshers = tuple(refreshers)
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)
        self.base_path = [p for p in sys.path if p]
        self.initial_sigchld = signal.getsignal(signal.SIGCHLD)
        failed: dict[str, str] = {}
        for name in preload:
            try:
                __import__(name)
            except Exception as exc:  # noqa: BLE001 - not installed: that server starts slower
                failed[name] = f"{type(exc).__name__}: {exc}"
        try:
            import importlib.metadata

            for group in groups:
                importlib.metadata.entry_points(group=group)
        except Exception:  # noqa: BLE001 - only a cache warm-up
            pass
        self.modules = _loaded_top_level()
        self.children: set[int] = set()
        # Orphans of a server whose main process exited come here rather than to init,
        # detached and unmarked or not, so shutdown (and the watchdog) can reach them.
        become_subreaper()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, _noop)
        signal.set_wakeup_fd(self.wake_w)
        gc.collect()
        gc.freeze()  # children then share these pages instead of copying them on first GC
        self.send({"op": "ready", "pid": os.getpid(), "modules": self.modules,
                   "failed": failed, "threads": _thread_count(),
                   "seconds": time.perf_counter() - t0})

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(json.dumps(message).encode() + b"\n")

    def serve(self) -> Child | None:
        buffer = b""
        while True:
            try:
                readable, _, _ = select.select([self.sock.fileno(), self.wake_r], [], [])
            except InterruptedError:
                continue
            if self.wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_r, 512):
                        pass
                self.reap()
            if self.sock.fileno() in readable:
                data = self.sock.recv(1 << 20)
                if not data:
                    self.shutdown()
                    return None
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    message = json.loads(line)
                    if message.get("op") == "bye":
                        self.shutdown()
                        return None
                    if message.get("op") == "spawn":
                        child = self.spawn(message)
                        if child is not None:
                            return child
            self.reap()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.children:  # else an adopted orphan: nobody waits for its code
                self.children.discard(pid)
                self.send({"op": "exit", "pid": pid,
                           "code": os.waitstatus_to_exitcode(status)})

    def shutdown(self) -> None:
        """The client is done (or gone): nothing forked here may outlive the zygote."""
        kill_descendants()  # servers, their trees and the orphans adopted from them
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # unreaped children: the ids are ours
        deadline = time.monotonic() + 5
        while self.children and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.005)

    def spawn(self, message: dict[str, Any]) -> Child | None:
        request_id = message["id"]
        command = parse_command(message["argv"], sys.executable)
        if isinstance(command, str):
            self.send({"op": "error", "id": request_id, "error": command, "errno": errno.EINVAL})
            return None
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
                signal.set_wakeup_fd(-1)
                os.close(self.wake_r)
                os.close(self.wake_w)
                self.sock.close()
                os.write(sync_w, b"ok")
                os.close(sync_w)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, then gone
                with contextlib.suppress(OSError):
                    os.write(sync_w, f"E{exc}".encode())
                os._exit(127)
            signal.signal(signal.SIGCHLD, self.initial_sigchld)
            return Child(argv=message["argv"], env=message["env"], cwd=cwd, command=command,
                         refreshers=self.refreshers)
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


def _thread_count() -> int:
    """Threads of this process, native ones included (a preloaded extension could start
    some, and forking a process with other threads can deadlock the child)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _noop(signum: int, frame: types.FrameType | None) -> None:
    """SIGCHLD only has to write to the wake-up fd, which any Python handler does."""


def _loaded_top_level() -> dict[str, str]:
    """Top-level modules imported here, with the real path of the file they came from."""
    out: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        if "." in name or name in ("__main__", "sitecustomize", "usercustomize"):
            continue
        origin = getattr(module, "__file__", None)
        if origin:
            out[name] = os.path.realpath(origin)
    return out

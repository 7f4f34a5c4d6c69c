"""What the zygote's and its forkers' loops share: a wake-up when a child exits, and
newline-delimited JSON over a socket. Standard library only."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import types
from collections.abc import Iterator


class ChildWake:
    """SIGCHLD makes a pipe readable (``signal.set_wakeup_fd``), so ``select`` returns
    when a child exits."""

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._initial = signal.getsignal(signal.SIGCHLD)
        signal.signal(signal.SIGCHLD, _noop)
        signal.set_wakeup_fd(self._write_fd)

    def wait(self, fds: list[int]) -> set[int]:
        """Block until one of ``fds`` can be read or a child exited; the readable ones."""
        while True:
            try:
                readable = set(select.select([*fds, self.fd], [], [])[0])
                break
            except InterruptedError:
                continue
        if self.fd in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(self.fd, 512):
                    pass
        return readable - {self.fd}

    def release(self) -> None:
        """In a forked child: the interpreter's own SIGCHLD handling back, the pipe closed."""
        signal.set_wakeup_fd(-1)
        os.close(self.fd)
        os.close(self._write_fd)
        signal.signal(signal.SIGCHLD, self._initial)


class Lines:
    """Messages arriving on ``sock``, one JSON document per line."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def read(self) -> list[bytes] | None:
        """The complete lines received so far; None once the peer has closed."""
        try:
            data = self.sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            return None
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return lines


def exited_children() -> Iterator[tuple[int, int]]:
    """Reap every child that has exited, without waiting: (pid, wait status) each."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def thread_count() -> int:
    """Threads of this process, native ones included (a preloaded extension could start
    some, and forking a process with other threads can deadlock the child)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _noop(signum: int, frame: types.FrameType | None) -> None:
    """SIGCHLD only has to write to the wake-up fd, which any Python handler does."""

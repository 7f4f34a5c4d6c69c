"""A running server as its starter sees it: URL, command, log, stop."""

from __future__ import annotations

import re
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.errors import ServerDiedError, hide_own_errors
from pytest_flaskserve.lifecycle import logs, stopping
from pytest_flaskserve.lifecycle.process import ManagedProcess, StopResult, describe_exit
from pytest_flaskserve.servers import Launcher, ServerOptions

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


@dataclass
class ServerHandle:
    """A running server. ``str(handle)`` is its base URL; ``handle + "/path"`` a URL.

    A context manager: ``with start_server(...) as handle:`` stops it on the way out.
    """

    server: str
    url: str
    host: str
    port: int
    pid: int
    argv: list[str]
    log_path: Path
    app: ResolvedApp
    options: ServerOptions
    ready_seconds: float
    ready_status: int
    notes: tuple[str, ...]
    _process: ManagedProcess = field(repr=False)
    _launcher: Launcher = field(repr=False)
    _stop_timeout: float = field(repr=False, default=5.0)
    stop_result: StopResult | None = None
    #: starts it took: more than 1 means a port was lost to a race and retried
    attempts: int = 1
    #: the CA (PEM) that signed the certificate of a server serving HTTPS, for clients
    #: (``requests``' and ``httpx``' ``verify=``, ``curl --cacert``); None over plain HTTP
    ca_path: str | None = None
    _on_stop: list[Callable[[ServerHandle], None]] = field(repr=False, default_factory=list)
    _on_stop_lock: threading.Lock = field(repr=False, default_factory=threading.Lock)

    @property
    def command(self) -> str:
        """The exact command line, shell-quoted, as it was run."""
        return shlex.join(self.argv)

    @property
    def stop_signal(self) -> int:
        """The signal a stop sends (the server's own choice)."""
        return self._launcher.stop_signal

    @property
    def stop_timeout(self) -> float:
        """Seconds a stop waits after the signal before it kills the tree."""
        return self._stop_timeout

    def __str__(self) -> str:
        return self.url

    def __add__(self, path: str) -> str:
        return self.url + path

    @property
    def upstream_url(self) -> str:
        """The server's own address; behind a proxy ``url`` is the proxy's, this is not."""
        return self.url

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def read_log(self) -> str:
        """The whole log so far."""
        return logs.read_log(self.log_path)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log (read bounded)."""
        return logs.tail(logs.read_bounded(self.log_path), lines)

    def wait_for_log(self, text: str | re.Pattern[str], timeout: float = 10.0, *, after: int = 0) -> str:
        """Wait until ``text`` (a substring or compiled regex) appears in the log.

        ``after`` skips that many characters (use ``len(handle.read_log())`` taken before
        an action to wait for what the action causes). Returns the matching line; raises
        :class:`TimeoutError` with the log tail, or :class:`ServerDiedError` if the
        server exits first.
        """
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            log = self.read_log()[after:]
            if isinstance(text, re.Pattern):
                match = text.search(log)
                idx = match.start() if match else -1
            else:
                idx = log.find(text)
            if idx != -1:
                start = log.rfind("\n", 0, idx) + 1
                end = log.find("\n", idx)
                return log[start:end if end != -1 else None]
            code = self._process.poll()
            if code is not None:
                raise ServerDiedError(
                    f"{self.server} exited ({describe_exit(code)}) before logging {text!r}\n"
                    f"{self.log_tail()}", server=self.server, exit_code=code)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{text!r} did not appear in the {self.server} log within "
                                   f"{timeout:g} s; last lines:\n{self.log_tail()}")
            time.sleep(pause)
            pause = min(pause * 1.5, 0.05)

    def is_running(self) -> bool:
        return self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return self._process.poll()

    @property
    def process(self) -> ManagedProcess:
        return self._process

    def on_stop(self, callback: Callable[[ServerHandle], None]) -> None:
        """Call ``callback(handle)`` once the first :meth:`stop` has finished
        (:attr:`stop_result` is set then); callbacks run in the order they were added."""
        with self._on_stop_lock:
            self._on_stop.append(callback)

    def stop(self) -> int | None:
        """Stop the whole process tree; returns the server's real exit code."""
        launcher = self._launcher
        self.stop_result = stopping.stop(self._process, launcher.stop_strategy,
                                         launcher.stop_signal, self._stop_timeout)
        self._stopped()
        return self.stop_result.returncode

    def _stopped(self) -> None:
        """Run the :meth:`on_stop` callbacks (once); a subclass's ``stop`` calls it last."""
        with self._on_stop_lock:
            callbacks, self._on_stop = self._on_stop, []
        for callback in callbacks:
            callback(self)

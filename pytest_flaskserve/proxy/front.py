"""nginx as a managed process: its own prefix, a free loopback port, a graceful stop.

nginx runs in the foreground (``daemon off``) with a master and a worker, in their own
session and process group like every server we start (so the watchdog and the final
sweep cover it after a SIGKILL of pytest). ``-e stderr`` sends even the messages nginx
writes before it has read the config to our log; ``[emerg]`` lines there are its own
explanation of a failed start.

nginx runs under a one-line ``sh`` that waits for it: nginx writes its process title
("nginx: master process ...") over the memory that ``/proc/PID/environ`` shows, so its
own environment no longer carries the owner marker that the watchdog and the sweep
require before they kill anything. The shell keeps it, and nginx's master and worker are
in its tree and its process group. The shell ignores the stop signals (nginx installs its
own handlers, so they still reach nginx) and exits with nginx's exit code.

It is ready when a request through it reaches the
upstream; an answer nginx made up itself (502/504 with an upstream error in its log) is
a failed start that says what nginx could not reach.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_flaskserve.errors import ServerStartupError
from pytest_flaskserve.lifecycle import logs
from pytest_flaskserve.lifecycle.ports import free_port
from pytest_flaskserve.lifecycle.process import ManagedProcess, StopResult, describe_exit
from pytest_flaskserve.lifecycle.readiness import NotReady, NotReadyKind, wait_until_serving
from pytest_flaskserve.proxy import nginx

#: the shell nginx runs under (see the module docstring): "$0" "$@" is nginx's argv
_HOLDER = ("/bin/sh", "-c", 'trap "" INT QUIT TERM; "$0" "$@"; exit $?')
#: the start of an error log line: "2026/12/03 10:00:00 [emerg] 123#123: " (and "*1 ")
_LOG_PREFIX = re.compile(r"^.*?\[\w+\] \d+#\d+: (?:\*\d+ )?")
#: what nginx says when its listening port was taken between our pick and its bind
_ADDRESS_IN_USE = re.compile(r"bind\(\) to \S+ failed \(98")
#: an error nginx logs when it cannot get an answer from the upstream
_UPSTREAM_ERROR = re.compile(r"\[(?:error|crit)\].*(?:upstream|while connecting)")


@dataclass
class NginxFront:
    """One running nginx: ``url``, ``port``, ``prefix`` (its directory), its logs."""

    url: str
    host: str
    port: int
    prefix: Path
    config_path: Path
    log_path: Path
    argv: list[str]
    process: ManagedProcess
    ready_seconds: float
    stop_timeout: float = 5.0
    stop_result: StopResult | None = None

    @property
    def access_log_path(self) -> Path:
        return self.prefix / "access.log"

    @property
    def pid(self) -> int:
        """nginx's master process (a child of the shell that holds our marker)."""
        import psutil

        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.Error:
            children = []
        return children[0].pid if children else self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The end of nginx's error log and of its access log."""
        parts = [f"nginx error log ({self.log_path}):", logs.tail(_read(self.log_path), lines)]
        access = _read(self.access_log_path)
        if access:
            parts += [f"nginx access log ({self.access_log_path}):", logs.tail(access, lines)]
        return "\n".join(parts)

    def stop(self) -> StopResult:
        """SIGQUIT (nginx's graceful shutdown: requests under way finish), then SIGKILL of
        the group after the stop timeout."""
        self.stop_result = self.process.stop(signal.SIGQUIT, self.stop_timeout)
        return self.stop_result


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def start_front(
    *,
    server_block: Callable[[str], str],
    prefix: Path,
    log_path: Path,
    host: str,
    ready_path: str,
    startup_timeout: float,
    stop_timeout: float,
    upstream_alive: Callable[[], bool],
    name: str,
    port_retries: int = 3,
    ca_path: str | None = None,
) -> NginxFront:
    """Start nginx in ``prefix`` with the server block ``server_block(listen)`` and wait
    until a request to ``ready_path`` goes through it.

    ``upstream_alive`` tells whether the server behind it still runs (a dead upstream
    is the real cause of a 502). Raises :class:`ServerStartupError` named ``name``.
    """
    binary = nginx.find_nginx()
    if binary is None:
        raise ServerStartupError(nginx.unavailable() or "nginx not found", server=name,
                                 command="nginx", exit_code=None, log_tail="", diagnosis=[])
    from pytest_flaskserve.tls import client_context, client_host

    context = client_context(ca_path) if ca_path is not None else None
    client = client_host(host) if ca_path is not None else host
    url_host = f"[{client}]" if ":" in client else client
    listen_host = f"[{host}]" if ":" in host else host
    scheme = "https" if ca_path is not None else "http"
    for attempt in range(port_retries + 1):
        port = free_port(host)
        config = nginx.write_prefix(prefix, server_block(f"{listen_host}:{port}"))
        argv = [binary, "-e", "stderr", "-p", str(prefix), "-c", str(config)]
        proc = ManagedProcess([*_HOLDER, *argv], env=dict(os.environ), cwd=str(prefix),
                              log_path=log_path)
        t0 = time.monotonic()
        try:
            proc.start()
        except OSError as exc:
            raise ServerStartupError(f"nginx could not be executed: {exc}", server=name,
                                     command=shlex.join(argv), exit_code=None, log_tail="",
                                     diagnosis=[str(exc)]) from None
        try:
            ready = wait_until_serving(client, port, ready_path, poll_exit=proc.poll,
                                       timeout=startup_timeout, tls=context)
        except NotReady as nr:
            proc.stop(signal.SIGKILL, 1.0)
            log = _read(log_path)
            if _ADDRESS_IN_USE.search(log) and attempt < port_retries:
                continue
            raise _startup_error(name, argv, config, log_path, log, nr) from None
        if ready.status in (502, 504) and _UPSTREAM_ERROR.search(_read(log_path)):
            proc.stop(signal.SIGKILL, 1.0)
            log = _read(log_path)
            why = ("the server behind it had exited" if not upstream_alive()
                   else "nginx could not get an answer from the server behind it")
            raise _startup_error(name, argv, config, log_path, log, NotReady(
                NotReadyKind.UPSTREAM_FAILED, f"answered {ready.status}: {why}",
                seconds=time.monotonic() - t0)) from None
        return NginxFront(url=f"{scheme}://{url_host}:{port}", host=host, port=port, prefix=prefix,
                          config_path=config, log_path=log_path, argv=argv, process=proc,
                          ready_seconds=ready.seconds, stop_timeout=stop_timeout)
    raise AssertionError("unreachable")


def _startup_error(name: str, argv: list[str], config: Path, log_path: Path, log: str,
                   nr: NotReady) -> ServerStartupError:
    own = [_LOG_PREFIX.sub("", line) for line in log.splitlines()
           if "[emerg]" in line or _UPSTREAM_ERROR.search(line)]
    status = (f"nginx exited with {describe_exit(nr.exit_code)}" if nr.exited
              else f"nginx {nr.reason}")
    command = shlex.join(argv)
    tail = logs.tail(log)
    lines = [f"{name}: {status}", f"  command: {command}", f"  config: {config}",
             *(f"  nginx says: {line}" for line in own[-3:]),
             f"  log ({log_path}), last lines:",
             *("    " + ln for ln in (tail.splitlines() or ["(empty)"]))]
    return ServerStartupError("\n".join(lines), server=name, command=command,
                              exit_code=nr.exit_code if nr.exited else None, log_tail=tail,
                              diagnosis=own[-3:])

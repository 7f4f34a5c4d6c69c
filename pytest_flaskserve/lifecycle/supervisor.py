"""One server's life: render, start, wait until it serves, hand out a handle, stop.

Fixtures, the reloader helpers and the benchmarks all start servers through
:func:`start_server`, so every path gets the same environment hygiene, readiness rule,
port retry, diagnosis and teardown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
import re
import shlex
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_flaskserve import coverage_support
from pytest_flaskserve.appspec.dotenv import dotenv_env
from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.errors import ServerDiedError, ServerStartupError, hide_own_errors
from pytest_flaskserve.lifecycle import diagnose
from pytest_flaskserve.lifecycle.ports import free_port, listening_in, listening_ports
from pytest_flaskserve.lifecycle.process import ManagedProcess, StopResult, describe_exit
from pytest_flaskserve.lifecycle.readiness import NotReady, wait_until_serving
from pytest_flaskserve.servers import Launcher, LaunchRequest, ServerOptions

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

#: Variables that silently change how Flask and Werkzeug start: never inherited.
SCRUBBED_ENV = ("FLASK_RUN_FROM_CLI", "WERKZEUG_RUN_MAIN", "WERKZEUG_SERVER_FD", "FLASK_APP",
                "FLASK_DEBUG", "FLASKSERVE_APP_RUN", "FLASKSERVE_ENTRY", "FLASKSERVE_RELOADER")
_SCRUBBED_PREFIXES = ("FLASK_RUN_", "GRANIAN_")

_counter = itertools.count(1)


@dataclass(frozen=True)
class StartConfig:
    """How to start and stop servers, independent of which server."""

    log_dir: Path
    host: str = "127.0.0.1"
    ready_path: str = "/"
    startup_timeout: float = 30.0
    stop_timeout: float = 5.0
    load_dotenv: bool = False
    port_retries: int = 3
    log_tag: str = ""
    #: builds the process object (``ManagedProcess``'s signature); warm mode passes its
    #: launcher's factory here, which falls back to a cold ``ManagedProcess`` by itself
    process_factory: Callable[..., ManagedProcess] | None = None
    #: a user's nginx site file for servers behind nginx (None: the generated one)
    nginx_conf: Path | None = None


@dataclass
class ServerHandle:
    """A running server. ``str(handle)`` is its base URL; ``handle + "/path"`` a URL."""

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

    @property
    def command(self) -> str:
        """The exact command line, shell-quoted, as it was run."""
        return shlex.join(self.argv)

    def __str__(self) -> str:
        return self.url

    def __add__(self, path: str) -> str:
        return self.url + path

    @property
    def upstream_url(self) -> str:
        """The server's own address; behind a proxy ``url`` is the proxy's, this is not."""
        return self.url

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return diagnose.tail(_read(self.log_path), lines)

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

    def stop(self) -> int | None:
        """Stop the whole process tree; returns the server's real exit code."""
        sig, grace = self._launcher.stop_signal, self._stop_timeout
        if self._launcher.stop_children_first:
            t0 = time.perf_counter()
            # Once the leader has been told, a second signal must not follow: Python
            # restores default handlers while it finalizes, so a repeated SIGTERM would
            # kill the exiting master (-15) instead of letting it exit 0.
            told = _stop_children_first(self._process, sig, grace)
            result = self._process.stop(0 if told else sig, grace)
            if self.stop_result is None and not result.already_exited:
                result = dataclasses.replace(result, seconds=time.perf_counter() - t0)
            self.stop_result = result
        elif self._launcher.stop_leader_first and self._process.poll() is None:
            # not reaped yet, so the pid is still our leader's
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, sig)
            self.stop_result = self._process.stop(0, grace)  # 0: wait, then kill the group
        else:
            self.stop_result = self._process.stop(sig, grace)
        return self.stop_result.returncode


_draining: set[int] = set()
#: a worker exits ~35 ms after its signal; one still running this much later lost it
_RESEND_AFTER = 0.3
_draining_lock = threading.Lock()


def _stop_children_first(proc: ManagedProcess, sig: int, grace: float) -> bool:
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
    Returns whether the leader was sent ``sig`` (False: nothing done, stop it as usual).
    """
    if proc.poll() is not None:
        return False
    with _draining_lock:
        if proc.pid in _draining or proc.stop_result is not None:
            return False
        _draining.add(proc.pid)
    try:
        # Paused before listing, so no worker is forked between the list and the signal.
        _signal(proc.pid, signal.SIGSTOP)
        children = proc.descendants()
        if not children:
            _signal(proc.pid, signal.SIGCONT)
            return False
        try:
            for child in children:
                _signal(child.pid, sig)  # type: ignore[attr-defined]
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
                        _signal(child.pid, sig)  # type: ignore[attr-defined]
                    resend = time.monotonic() + _RESEND_AFTER
                time.sleep(0.002)
        finally:
            # Both pending when it resumes: the stop and the SIGCHLD of its exited workers.
            _signal(proc.pid, sig)
            _signal(proc.pid, signal.SIGCONT)
        return True
    finally:
        with _draining_lock:
            _draining.discard(proc.pid)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _running(child: object) -> bool:
    """Not yet exited: alive and not a zombie waiting for its (paused) parent."""
    import psutil

    assert isinstance(child, psutil.Process)
    try:
        return child.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def server_env(
    base: dict[str, str], app: ResolvedApp, options: ServerOptions, plan_env: dict[str, str],
    load_dotenv: bool,
) -> dict[str, str]:
    """The environment a server runs with: ours, scrubbed of what silently changes Flask."""
    env = {k: v for k, v in base.items()
           if k not in SCRUBBED_ENV and not k.startswith(_SCRUBBED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    if load_dotenv:
        # every server gets what flask run would read, not the dev servers alone
        env.update(dotenv_env(app.cwd, base))
    else:
        env["FLASK_SKIP_DOTENV"] = "1"
    if options.debug is not None:
        env["FLASK_DEBUG"] = "1" if options.debug else "0"
    extra = dict(plan_env)
    path = extra.pop("PYTHONPATH", app.path_entry)
    inherited = base.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([path, inherited]) if inherited else path
    env.update(extra)
    env.update(coverage_support.server_env())  # measured runs measure their servers too
    env.update(dict(options.env))
    return env


def _log_path(config: StartConfig, server: str, app: ResolvedApp) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", app.describe())[:40].strip("_")
    tag = f"-{config.log_tag}" if config.log_tag else ""
    return config.log_dir / f"{server}-{slug}{tag}-{next(_counter)}.log"


def start_server(
    launcher: Launcher,
    app: ResolvedApp,
    options: ServerOptions,
    config: StartConfig,
    *,
    protocol: str = "http",
) -> ServerHandle:
    """Start ``app`` under ``launcher`` and return once it answers HTTP (``protocol``
    "uwsgi": once it answers in uWSGI's protocol, for a server behind nginx).

    A ``SERVER+nginx`` launcher starts the server and then nginx in front of it; the
    handle's ``url`` is nginx's. Raises :class:`ServerStartupError` with the full report
    (command, exit code and its meaning, diagnosis, log tail) when it does not.
    """
    if launcher.behind is not None:
        from pytest_flaskserve.proxy.proxied import start_proxied

        return start_proxied(launcher, app, options, config)
    last_error: ServerStartupError | None = None
    for attempt in range(config.port_retries + 1):
        port = free_port(config.host)
        log_path = _log_path(config, launcher.name, app)
        plan = launcher.plan(LaunchRequest(app=app, host=config.host, port=port,
                                           options=options, python=sys.executable,
                                           scratch_dir=log_path.with_suffix(".d"),
                                           protocol=protocol))
        env = server_env(dict(os.environ), app, options, dict(plan.env), config.load_dotenv)
        proc = (config.process_factory or ManagedProcess)(plan.argv, env=env, cwd=app.cwd,
                                                          log_path=log_path)
        t0 = time.monotonic()
        try:
            proc.start()
        except OSError as exc:
            raise ServerStartupError(
                f"{launcher.name} could not be executed: {exc}\n  command: {shlex.join(plan.argv)}",
                server=launcher.name, command=shlex.join(plan.argv), exit_code=None,
                log_tail="", diagnosis=[str(exc)],
            ) from None
        fail_fast = _log_watch(proc, launcher, port)
        try:
            ready = wait_until_serving(
                config.host, port, config.ready_path,
                poll_exit=proc.poll,
                timeout=config.startup_timeout,
                owns_port=functools.partial(_owns, proc, port),
                fail_fast=fail_fast,
                protocol=protocol,
            )
            if ready.status >= 500:
                # a server that keeps running when the app did not load answers 500
                failed = launcher.load_failure(_read(log_path))
                if failed:
                    raise NotReady(failed, exited=False, exit_code=None, seconds=ready.seconds)
        except NotReady as nr:
            # A failed start gets no grace period: nothing it serves is worth waiting for.
            stop = proc.stop(signal.SIGKILL, 1.0)
            log = _read(log_path)
            code = nr.exit_code if nr.exited else None
            last_error = _startup_error(launcher, app, plan.argv, log_path, log, nr, code,
                                        config, time.monotonic() - t0, stop)
            # Retry on a new port only when it was *our* port that was lost to a race (not
            # a port the app hard-codes, which a new port would not help).
            retry = (diagnose.port_taken(log) and not app.runs_at_import
                     and diagnose.other_port(log, port) is None) \
                or "another process already answers" in nr.reason
            if retry and attempt < config.port_retries:
                continue
            raise last_error from None
        url_host = f"[{config.host}]" if ":" in config.host else config.host
        return ServerHandle(
            server=launcher.name,
            url=f"http://{url_host}:{port}",
            host=config.host,
            port=port,
            pid=proc.pid,
            argv=plan.argv,
            log_path=log_path,
            app=app,
            options=options,
            ready_seconds=ready.seconds,
            ready_status=ready.status,
            notes=plan.notes,
            _process=proc,
            _launcher=launcher,
            _stop_timeout=config.stop_timeout,
            attempts=attempt + 1,
        )
    assert last_error is not None
    raise last_error


def _owns(proc: ManagedProcess, port: int) -> bool:
    """Whether our process tree holds the listening socket on ``port``.

    Asked once per start, right after the first HTTP answer, so it is on the start path.
    On Linux the kernel names the listening sockets on the port and ``/proc`` tells whose
    they are, leader first (the dev server, Waitress, Cheroot, the reloader parent and
    the Gunicorn and uWSGI masters hold it), then its descendants (Granian's worker):
    well under a millisecond. psutil over the whole tree (7-17 ms here, more on a busy
    machine: it scans every process and reads /proc/net/tcp, which walks every socket on
    the host) confirms any "no" and is the path on other systems.
    """
    return _tree_listens(proc.pid, port) or listening_in(proc.tree_pids(), port)


def _tree_listens(pid: int, port: int) -> bool:
    """Linux fast path: a listening TCP socket on ``port`` is an open file of ``pid`` or of
    one of its descendants (found through ``/proc/PID/task/TID/children``). False whenever
    that cannot be told (not Linux, netlink refused), so the caller falls back to psutil.
    """
    try:
        inodes = _listening_inodes(port)
        if not inodes:
            return False
        wanted = {f"socket:[{inode}]" for inode in inodes}
        pending, seen = [pid], set()
        while pending:
            current = pending.pop(0)
            if current in seen:
                continue
            seen.add(current)
            fd_dir = f"/proc/{current}/fd"
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink(f"{fd_dir}/{fd}") in wanted:
                        return True
                except OSError:
                    continue
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children", encoding="ascii") as f:
                    pending.extend(int(child) for child in f.read().split())
    except (OSError, ValueError, struct.error):
        pass
    return False


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10


def _listening_inodes(port: int) -> set[int]:
    """Inodes of the host's listening TCP sockets (IPv4 and IPv6) bound to ``port``.

    One ``inet_diag_req_v2`` dump per family, asking only for the LISTEN state; each reply
    is an ``inet_diag_msg`` (source port at offset 4, big-endian; inode at offset 68).
    """
    found: set[int] = set()
    netlink = getattr(socket, "AF_NETLINK", None)
    if netlink is None:
        return found
    with socket.socket(netlink, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), 1):
            request = (struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN)
                       + bytes(48))
            nl.send(struct.pack("=LHHLL", 16 + len(request), _SOCK_DIAG_BY_FAMILY,
                                _NLM_F_REQUEST_DUMP, seq, 0) + request)
            done = False
            while not done:
                data = nl.recv(65536)
                if not data:
                    break
                offset = 0
                while offset + 16 <= len(data):
                    length, kind = struct.unpack_from("=LH", data, offset)
                    if kind == _NLMSG_ERROR:
                        raise OSError("sock_diag request refused")
                    if kind == _NLMSG_DONE or length < 16:
                        done = True
                        break
                    if kind == _SOCK_DIAG_BY_FAMILY and length >= 16 + 72:
                        body = offset + 16
                        if struct.unpack_from(">H", data, body + 4)[0] == port:
                            found.add(struct.unpack_from("=I", data, body + 68)[0])
                    offset += (length + 3) & ~3
    return found


#: a log bigger than this is read as its head and its tail (where servers announce
#: themselves and where a failure ends); the middle is an app's own chatter
_LOG_HEAD = 64 * 1024
_LOG_TAIL = 448 * 1024


def _read(path: Path) -> str:
    """A server log for the checks and the diagnosis, bounded in memory: an app that
    prints 100 MB at import must not cost 100 MB every 50 ms while we wait."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(0)
            if size <= _LOG_HEAD + _LOG_TAIL:
                data = f.read()
            else:
                head = f.read(_LOG_HEAD)
                f.seek(size - _LOG_TAIL)
                skipped = size - _LOG_HEAD - _LOG_TAIL
                data = head + f"\n[... {skipped} bytes of the log left out ...]\n".encode() + f.read()
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", errors="replace")


def _log_watch(proc: ManagedProcess, launcher: Launcher, port: int) -> Callable[[], str | None]:
    """Fail-fast checks on the log while waiting: evidence that waiting cannot succeed.

    A production server whose log shows the development server's banner runs
    ``app.run()`` at import; any server that announces a different port than ours serves
    somewhere else (a script calling another server with its own address).
    """
    started = time.monotonic()
    state = {"next": 0.0, "next_sockets": started + 0.5}
    last_wrong: set[int] = set()  # the other ports the previous socket check saw

    def check() -> str | None:
        now = time.monotonic()
        if now < state["next"]:
            return None
        state["next"] = now + 0.05
        log = _read(proc.log_path)
        if launcher.production and diagnose.DEV_SERVER_BANNER.search(log):
            return f"the development server started inside {launcher.name} (app.run() at import)"
        other = diagnose.other_port(log, port)
        if other is not None:
            return f"it announced port {other}, not the port {port} it was given"
        if now >= state["next_sockets"]:
            # Not every server says where it listens; its sockets do.
            state["next_sockets"] = now + 0.25
            ports = listening_ports([proc.pid, *proc.descendants()])
            wrong = ports if ports and port not in ports else set()
            # Twice in a row: a pid listed as the tree's can exit and be reused by another
            # program between the listing and the socket read (pids wrap fast under load).
            confirmed = wrong & last_wrong
            last_wrong.clear()
            last_wrong.update(wrong)
            if confirmed:
                return (f"it listens on port {', '.join(map(str, sorted(wrong)))}, not the port "
                        f"{port} it was given")
        return None

    return check


def _startup_error(
    launcher: Launcher, app: ResolvedApp, argv: list[str], log_path: Path, log: str,
    nr: NotReady, code: int | None, config: StartConfig, seconds: float, stop: StopResult,
) -> ServerStartupError:
    failure = diagnose.Failure(
        server=launcher.name, production=launcher.production, exit_code=code, reason=nr.reason,
        log=log, app_module=app.module, app_attr=app.attr, timeout=config.startup_timeout,
        script_entry=launcher.name == "app-run", runs_at_import=app.runs_at_import,
        detached=len(stop.detached),
    )
    causes = diagnose.diagnose(failure)
    if code is not None:
        meaning = launcher.explain_exit(code)
        status = f"exited with {describe_exit(code)}" + (f" ({meaning})" if meaning else "")
    else:
        status = nr.reason
    command = shlex.join(argv)
    log_tail = diagnose.tail(log)
    lines = [
        f"{launcher.name} failed to start {app.spec.raw!r}: {status} after {seconds:.2f} s",
        f"  command: {command}",
        f"  cwd: {app.cwd}",
        *(f"  cause: {c}" for c in causes),
        f"  log ({log_path}), last lines:",
        *("    " + ln for ln in (log_tail.splitlines() or ["(empty)"])),
    ]
    return ServerStartupError(
        "\n".join(lines), server=launcher.name, command=command, exit_code=code,
        log_tail=log_tail, diagnosis=causes,
    )

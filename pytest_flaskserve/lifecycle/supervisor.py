"""The start loop: render the command, start it, wait until it serves, hand out a handle.

Fixtures, the reloader helpers and the benchmarks all start servers through
:func:`start_server`, so every path gets the same environment hygiene, readiness rule,
port retry, diagnosis and teardown.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import shlex
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.errors import (
    FlaskServeWarning,
    ServerStartupError,
    UsageError,
    hide_own_errors,
)
from pytest_flaskserve.lifecycle import diagnose, logs, sockets
from pytest_flaskserve.lifecycle.environment import SCRUBBED_ENV, server_env
from pytest_flaskserve.lifecycle.handle import ServerHandle
from pytest_flaskserve.lifecycle.ports import free_port
from pytest_flaskserve.lifecycle.process import ManagedProcess, StopResult, describe_exit
from pytest_flaskserve.lifecycle.readiness import NotReady, NotReadyKind, wait_until_serving
from pytest_flaskserve.lifecycle.registry import registry
from pytest_flaskserve.servers import Launcher, LaunchPlan, LaunchRequest, ServerOptions
from pytest_flaskserve.tls import TLSFiles, client_context, client_host

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

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
    #: builds the process object (``ManagedProcess``'s signature plus ``launcher=`` and
    #: ``app=``); warm mode passes its launcher's factory here, which falls back to a
    #: cold ``ManagedProcess`` by itself
    process_factory: Callable[..., ManagedProcess] | None = None
    #: a user's nginx site file for servers behind nginx (None: the generated one)
    nginx_conf: Path | None = None
    #: the session's CA and certificate, for servers started with ``options.tls``
    tls: TLSFiles | None = None


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
    tls = _tls_files(launcher, options, config)
    if launcher.behind is not None:
        from pytest_flaskserve.proxy.proxied import start_proxied

        return start_proxied(launcher, app, options, config)
    tls_context = client_context(tls.ca_path) if tls is not None else None
    # a wildcard bind is reached on loopback, the name the certificate holds
    client = client_host(config.host) if tls is not None else config.host
    last_error: ServerStartupError | None = None
    for attempt in range(config.port_retries + 1):
        port = free_port(config.host)
        log_path = _log_path(config, launcher.name, app)
        plan = launcher.plan(LaunchRequest(app=app, host=config.host, port=port,
                                           options=options, python=sys.executable,
                                           scratch_dir=log_path.with_suffix(".d"),
                                           protocol=protocol, tls=tls))
        for path in plan.temp_dirs:  # removed by the watchdog if pytest dies first
            registry.add_temp_dir(path)
        env = server_env(dict(os.environ), app, options, dict(plan.env), config.load_dotenv)
        if config.process_factory is not None:
            proc = config.process_factory(plan.argv, env=env, cwd=app.cwd, log_path=log_path,
                                          launcher=launcher, app=app)
        else:
            proc = ManagedProcess(plan.argv, env=env, cwd=app.cwd, log_path=log_path)
        t0 = time.monotonic()
        try:
            proc.start()
        except OSError as exc:
            _remove_temp_dirs(plan)
            raise ServerStartupError(
                f"{launcher.name} could not be executed: {exc}\n  command: {shlex.join(plan.argv)}",
                server=launcher.name, command=shlex.join(plan.argv), exit_code=None,
                log_tail="", diagnosis=[str(exc)],
            ) from None
        fail_fast = _log_watch(proc, launcher, port, tls=tls is not None)
        try:
            ready = wait_until_serving(
                client, port, config.ready_path,
                poll_exit=proc.poll,
                timeout=config.startup_timeout,
                owns_port=functools.partial(sockets.owns, proc, port),
                fail_fast=fail_fast,
                protocol=protocol,
                tls=tls_context,
            )
            if ready.status >= 500:
                # a server that keeps running when the app did not load answers 500
                failed = launcher.load_failure(logs.read_bounded(log_path))
                if failed:
                    raise NotReady(NotReadyKind.APP_NOT_LOADED, failed, seconds=ready.seconds)
        except NotReady as nr:
            # A failed start gets no grace period: nothing it serves is worth waiting for.
            stop = proc.stop(signal.SIGKILL, 1.0)
            _remove_temp_dirs(plan)
            log = logs.read_bounded(log_path)
            code = nr.exit_code if nr.exited else None
            last_error = _startup_error(launcher, app, plan.argv, log_path, log, nr, code,
                                        config, time.monotonic() - t0, stop,
                                        tls=tls is not None)
            if retry_on_new_port(nr, log, port, runs_at_import=app.runs_at_import) \
                    and attempt < config.port_retries:
                continue
            raise last_error from None
        notes = plan.notes + _exposure(proc, launcher, config.host, port)
        url_host = f"[{client}]" if ":" in client else client
        handle = ServerHandle(
            server=launcher.name,
            url=f"{'https' if tls is not None else 'http'}://{url_host}:{port}",
            host=config.host,
            port=port,
            pid=proc.pid,
            argv=plan.argv,
            log_path=log_path,
            app=app,
            options=options,
            ready_seconds=ready.seconds,
            ready_status=ready.status,
            notes=notes,
            _process=proc,
            _launcher=launcher,
            _stop_timeout=config.stop_timeout,
            attempts=attempt + 1,
            ca_path=str(tls.ca_path) if tls is not None else None,
        )
        if plan.temp_dirs:
            handle.on_stop(functools.partial(_remove_after_stop, plan))
        return handle
    assert last_error is not None
    raise last_error


def _exposure(proc: ManagedProcess, launcher: Launcher, host: str,
              port: int) -> tuple[str, ...]:
    """A note, and a warning, when a server asked to bind loopback listens on every
    interface anyway (a command run as written that binds 0.0.0.0 itself): the tests
    cannot move such a bind, and the machine's network can reach the app meanwhile."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        return ()  # the user asked for another address
    exposed = sockets.wildcard_binds(proc, port)
    if not exposed:
        return ()
    text = (f"{launcher.name} listens on {', '.join(exposed)}, every interface of this "
            f"machine, although the tests asked for {host}: the command binds that "
            "itself and the plugin cannot move it; bind to an address from the environment "
            "(HOST, or gunicorn/uwsgi/waitress options the plugin rewrites) for tests")
    warnings.warn(FlaskServeWarning(text), stacklevel=3)
    return (text,)


def _remove_after_stop(plan: LaunchPlan, handle: ServerHandle) -> None:
    _remove_temp_dirs(plan)


def _remove_temp_dirs(plan: LaunchPlan) -> None:
    for path in plan.temp_dirs:
        shutil.rmtree(path, ignore_errors=True)
        registry.discard_temp_dir(path)


def _tls_files(launcher: Launcher, options: ServerOptions, config: StartConfig) -> TLSFiles | None:
    """The certificate a start with ``options.tls`` serves, or None for plain HTTP; a
    :class:`UsageError` when the server cannot serve HTTPS or no certificate was given."""
    if not options.tls:
        return None
    why = launcher.tls_unsupported()
    if why:
        raise UsageError(f"{why}; start it without tls=True")
    if config.tls is None:
        raise UsageError("tls=True needs the certificate: pass "
                         "StartConfig(tls=pytest_flaskserve.tls.make_tls_files(directory))")
    return config.tls


def retry_on_new_port(nr: NotReady, log: str, port: int, *, runs_at_import: bool) -> bool:
    """Whether a failed start is worth another try on a new port: only when it was *our*
    port that was lost to a race (a stranger took it between our choice and the server's
    bind), not a port the app hard-codes, which a new port would not help."""
    if nr.kind is NotReadyKind.FOREIGN_PORT:
        return True
    return (diagnose.port_taken(log) and not runs_at_import
            and diagnose.other_port(log, port) is None)


def _log_watch(proc: ManagedProcess, launcher: Launcher, port: int, *,
               tls: bool) -> Callable[[], tuple[NotReadyKind, str] | None]:
    """Fail-fast checks on the log while waiting: evidence that waiting cannot succeed.

    A production server whose log shows the development server's banner runs
    ``app.run()`` at import; any server that announces a different port than ours serves
    somewhere else (a script calling another server with its own address).
    """
    started = time.monotonic()
    state = {"next": 0.0, "next_sockets": started + 0.5}
    last_wrong: set[int] = set()  # the other ports the previous socket check saw

    def check() -> tuple[NotReadyKind, str] | None:
        now = time.monotonic()
        if now < state["next"]:
            return None
        state["next"] = now + 0.05
        log = logs.read_bounded(proc.log_path)
        if launcher.production and diagnose.DEV_SERVER_BANNER.search(log):
            return (NotReadyKind.DEV_SERVER_INSIDE,
                    f"the development server started inside {launcher.name} (app.run() at import)")
        hopeless = launcher.start_cannot_succeed(log, tls=tls)
        if hopeless is not None:
            return NotReadyKind.CANNOT_SUCCEED, hopeless[0]
        other = diagnose.other_port(log, port)
        if other is not None:
            return NotReadyKind.WRONG_PORT, f"it announced port {other}, not the port {port} it was given"
        if now >= state["next_sockets"]:
            # Not every server says where it listens; its sockets do.
            state["next_sockets"] = now + 0.25
            ports = sockets.listening_ports([proc.pid, *proc.descendants()])
            wrong = ports if ports and port not in ports else set()
            # Twice in a row: a pid listed as the tree's can exit and be reused by another
            # program between the listing and the socket read (pids wrap fast under load).
            confirmed = wrong & last_wrong
            last_wrong.clear()
            last_wrong.update(wrong)
            if confirmed:
                return (NotReadyKind.WRONG_PORT,
                        f"it listens on port {', '.join(map(str, sorted(wrong)))}, not the port "
                        f"{port} it was given")
        return None

    return check


def _startup_error(
    launcher: Launcher, app: ResolvedApp, argv: list[str], log_path: Path, log: str,
    nr: NotReady, code: int | None, config: StartConfig, seconds: float, stop: StopResult,
    *, tls: bool,
) -> ServerStartupError:
    failure = diagnose.Failure(
        server=launcher.name, production=launcher.production, exit_code=code, kind=nr.kind,
        reason=nr.reason,
        log=log, app_module=app.module, app_attr=app.attr, timeout=config.startup_timeout,
        script_entry=launcher.runs_script, wrong_port_hint=launcher.wrong_port_hint,
        runs_at_import=app.runs_at_import,
        detached=len(stop.detached),
        launcher_cause=(launcher.start_cannot_succeed(log, tls=tls) or ("", ""))[1] or None
        if nr.kind is NotReadyKind.CANNOT_SUCCEED else None,
    )
    causes = diagnose.diagnose(failure)
    if code is not None:
        meaning = launcher.explain_exit(code)
        status = f"exited with {describe_exit(code)}" + (f" ({meaning})" if meaning else "")
    else:
        status = nr.reason
    command = shlex.join(argv)
    log_tail = logs.tail(log)
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


__all__ = ["SCRUBBED_ENV", "ManagedProcess", "ServerHandle", "StartConfig", "retry_on_new_port",
           "server_env", "start_server"]

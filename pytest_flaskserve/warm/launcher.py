"""Warm starts: servers forked from a pre-warmed launcher process.

A cold start pays for a new interpreter and for importing Flask, Werkzeug, Click and the
server (~120 of its ~150 ms); the app itself is usually a few milliseconds. The warm
launcher (a *zygote*) is a fresh interpreter, started once per session by
:class:`WarmLauncher`, that imports Flask (every app imports it) and never the user's app.
For each server it forks a *forker* that imports that server's modules, and the forker
forks a child per start, which becomes ``python ARGV...`` in place: own session and
process group, stdin from /dev/null, stdout and stderr appended to the log file, the
working directory and exactly the environment the supervisor computed, ``sys.path``,
``sys.argv``, ``sys.orig_argv`` and ``__main__`` as the interpreter sets them,
``sys.modules`` holding only what a cold start of that server has, ``/proc/PID/cmdline``,
``environ`` and the process name of the command, a ``sitecustomize`` found on the new path
run as ``site`` would, then the server's own command-line entry point (``runpy`` for
``-m``, the script for ``python script.py``). The child exits like that interpreter would:
``SystemExit``, an uncaught exception's traceback and exit 1, KeyboardInterrupt's SIGINT,
atexit handlers and thread joins.

The pytest process itself is never forked: the zygote is started with ``subprocess``
(fork+exec, or posix_spawn/vfork), so the ``multiprocessing`` start method, threads in
pytest and ``forkserver`` being Python 3.14's default do not matter.

The protocol is newline-delimited JSON over a socketpair (the zygote's end inherited):
``spawn`` (with the server's forker group) -> ``spawned {pid}`` or ``error`` (with
``cold`` when the start must be cold); the forker reaps its children and reports ``exit
{pid, code}`` (a Popen-style code: the only way to learn the exit code of a process we
did not start), relayed by the zygote, which a reader thread collects, per pid until it
is reused.

:class:`WarmProcess` is a ``ManagedProcess`` the zygote forked; :meth:`WarmLauncher.process`
takes ``ManagedProcess``'s arguments and the launcher, and returns a cold one whenever a
start cannot be exact (a launcher that says so, not this interpreter, interpreter flags,
a startup-only variable such as ``PYTHONHASHSEED`` or ``COVERAGE_PROCESS_*`` that differs
from the zygote's, a directory on the new path that shadows a preloaded module, threads
after the preload, the zygote not ready or gone). What still differs: servers forked in
one session share the zygote's (random) hash seed, and their parent is their forker.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.lifecycle.process import ManagedProcess, StopResult
from pytest_flaskserve.lifecycle.registry import OWNER_ENV, SESSION_TOKEN, registry
from pytest_flaskserve.servers import Launcher
from pytest_flaskserve.warm import inherited
from pytest_flaskserve.warm.command import (
    STARTUP_PREFIXES,
    STARTUP_VARIABLES,
    parse_command,
    zygote_program,
)
from pytest_flaskserve.warm.process import WarmProcess, WarmUnavailable


def warm_group(launcher: Launcher) -> dict[str, Any]:
    """What a forker for ``launcher`` imports and runs (see :mod:`.forker`)."""
    return {"name": launcher.name, "preload": list(launcher.warm_preload),
            "entry_points": list(launcher.warm_entry_point_groups),
            "refresh": launcher.warm_refresh}


_SPAWN_TIMEOUT = 10.0
#: how long a start waits for a zygote still preloading (~0.1 s) rather than start cold:
#: a cold start then would cost as long, and compete with the preload for the CPU
_READY_TIMEOUT = 10.0


class WarmLauncher:
    """One zygote and the servers forked from it.

    ``start()`` it once (at session start; ``wait=False`` lets it preload in the
    background; a start that comes meanwhile waits for it), pass :meth:`process` where
    the supervisor builds its process object, ``close()`` it at the end. Thread-safe.
    """

    def __init__(self, *, log_dir: Path | None = None, python: str | None = None,
                 base_env: Mapping[str, str] | None = None) -> None:
        self.python = python or sys.executable
        self.log_dir = log_dir
        source = dict(os.environ if base_env is None else base_env)
        # The session's environment without what configures one server (Flask's and
        # Werkzeug's variables, PYTHONPATH, ours) and without coverage's start-up
        # variables, whose tracer, started in the zygote, every child would inherit.
        self.env = {k: v for k, v in source.items()
                    if not k.startswith(("FLASK_", "WERKZEUG_", *STARTUP_PREFIXES))
                    and k not in ("PYTHONPATH", "FLASKSERVE_APP_RUN", "FLASKSERVE_ENTRY")}
        self.owner = f"{SESSION_TOKEN}:warm-{uuid.uuid4().hex[:8]}"
        self.env[OWNER_ENV] = self.owner
        self.fallbacks: list[tuple[str, str]] = []
        self._zygote: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._exits: dict[int, int] = {}
        self._live: dict[int, WarmProcess] = {}
        self._ids = iter(range(1, 1 << 62))
        self._ready: dict[str, Any] | None = None
        self._dead: str | None = None
        self._closed = False
        self._log: IO[bytes] | None = None
        self._inherited: dict[str, Any] = {}

    # -- life ------------------------------------------------------------------------
    def start(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Start the zygote (idempotent). With ``wait``, return once it has preloaded."""
        with self._cond:
            if self._zygote is None and not self._closed:
                self._spawn_zygote()
        if wait:
            deadline = time.monotonic() + timeout
            with self._cond:
                while self._ready is None and self._dead is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise WarmUnavailable(f"warm launcher not ready within {timeout:g} s")
                    self._cond.wait(left)
                if self._dead is not None:
                    raise WarmUnavailable(self._dead)

    def _spawn_zygote(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        code = zygote_program(child.fileno())
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_dir / f"warm-launcher-{os.getpid()}.log", "ab")
        registry.watch()  # before the spawn, so a pytest dying right after it is covered
        self._inherited = inherited.current()  # what the zygote inherits from us
        try:
            self._zygote = subprocess.Popen(
                [self.python, "-c", code], env=self.env, cwd=os.path.abspath(os.sep),
                stdin=subprocess.DEVNULL, stdout=self._log or subprocess.DEVNULL,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                pass_fds=(child.fileno(),))
        finally:
            child.close()
            if self._log is not None:
                self._log.close()  # the zygote has its own copy
        self._sock = parent
        registry.add(self._as_registered())
        self._reader = threading.Thread(target=self._read, name="flaskserve-warm-reader",
                                        daemon=True)
        self._reader.start()

    def _as_registered(self) -> _ZygoteEntry:
        assert self._zygote is not None
        return _ZygoteEntry(self._zygote.pid, self)

    @property
    def ready(self) -> bool:
        """The zygote has preloaded and answers; warm starts are possible."""
        return self._ready is not None and self._dead is None and not self._closed

    @property
    def pid(self) -> int | None:
        return None if self._zygote is None else self._zygote.pid

    def close(self, grace: float = 5.0) -> None:
        """Stop the servers still running from the zygote, then the zygote."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            live = list(self._live.values())
        for proc in live:
            proc.stop(signal.SIGTERM, grace)
        self._send({"op": "bye"})
        sock, zygote = self._sock, self._zygote
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        if zygote is not None:
            try:
                zygote.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(zygote.pid, signal.SIGKILL)
                zygote.wait()
            registry.discard(self._as_registered())
        if self._reader is not None:
            self._reader.join(grace)
        if sock is not None:
            sock.close()

    # -- the factory -------------------------------------------------------------------
    def process(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str,
                log_path: Path, launcher: Launcher,
                app: ResolvedApp | None = None) -> ManagedProcess:
        """``ManagedProcess``'s signature, the server's launcher and the app it serves: a
        warm process when the start can be exact (it still starts cold if its forker
        says it cannot)."""
        reason = self.why_cold(argv, env, cwd, launcher, app)
        if reason is not None:
            self.note_cold(launcher.name, reason)
            cold = ManagedProcess(argv, env=env, cwd=cwd, log_path=log_path)
            cold.cold_reason = reason
            return cold
        return WarmProcess(self, argv, env=env, cwd=cwd, log_path=log_path,
                           group=warm_group(launcher))

    def note_cold(self, server: str, reason: str) -> None:
        """Record a cold start and why (the terminal summary lists them with ``-v``)."""
        with self._cond:
            self.fallbacks.append((server, reason))

    def why_cold(self, argv: Sequence[str], env: Mapping[str, str], cwd: str,
                 launcher: Launcher, app: ResolvedApp | None = None) -> str | None:
        """Why this command must start cold, or None when it can start warm (its forker
        checks the rest: threads at import, a project module shadowing a preloaded one)."""
        refusal = launcher.warm_refusal()
        if refusal is not None:
            return refusal
        if app is not None and app.patches_at_import:
            # here Flask and the server's modules are imported before it patches; in a
            # cold start not always (python app.py, Waitress), and patching after is not
            # patching before
            return (f"the app monkey-patches the standard library with "
                    f"{app.patches_at_import} as it is imported")
        if not self.ready and self._dead is None and not self._closed:
            try:
                self.start(wait=True, timeout=_READY_TIMEOUT)
            except WarmUnavailable as exc:
                with self._cond:
                    self._dead = self._dead or str(exc)  # later starts go cold at once
        if not self.ready:
            return self._dead or "warm launcher closed"
        command = parse_command(argv, self.python)
        if isinstance(command, str):
            return command
        for key in STARTUP_VARIABLES:
            if env.get(key) != self.env.get(key):
                return f"{key} differs from the warm launcher's"
        for key in env:
            if key.startswith(STARTUP_PREFIXES):
                return f"{key} is read at interpreter start"
        changed = inherited.first_difference(self._inherited, inherited.current())
        if changed is not None:
            return f"pytest's {changed} changed since the warm launcher started"
        return None

    # -- protocol ----------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> bool:
        sock = self._sock
        if sock is None:
            return False
        data = json.dumps(message).encode() + b"\n"
        with self._send_lock:
            try:
                sock.sendall(data)
                return True
            except OSError:
                return False

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        buffer = b""
        reason = "warm launcher exited"
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._dispatch(json.loads(line))
        except (OSError, ValueError) as exc:
            reason = f"warm launcher connection lost: {exc}"
        self._lost(reason)

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        with self._cond:
            if op == "ready":
                if int(message.get("threads", 1)) > 1:
                    self._dead = (f"the warm launcher runs {message['threads']} threads "
                                  "after preloading; forking it would be unsafe")
                self._ready = message
            elif op == "exit":
                self._exits[int(message["pid"])] = int(message["code"])
            elif op in ("spawned", "error"):
                if op == "spawned":  # a reused pid: its earlier holder's exit is not its own
                    self._exits.pop(int(message["pid"]), None)
                self._replies[int(message["id"])] = message
            self._cond.notify_all()

    def _lost(self, reason: str) -> None:
        """The zygote is gone: nobody can reap or report its children any more."""
        with self._cond:
            if self._dead is None:
                self._dead = reason
            orphans = [p for p in self._live.values() if p.pid not in self._exits]
            self._cond.notify_all()
        if self._closed:
            return
        # Their exit codes are lost with the zygote; do not leave them running unowned.
        for proc in orphans:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        with self._cond:
            for proc in orphans:
                self._exits.setdefault(proc.pid, -signal.SIGKILL)
            self._cond.notify_all()

    # -- what a WarmProcess asks of the zygote that forked it ----------------------------
    def fork_server(self, proc: WarmProcess) -> int:
        """Fork ``proc``'s command from the zygote; its pid (or WarmUnavailable, OSError)."""
        request_id = next(self._ids)
        message = {"op": "spawn", "id": request_id, "argv": proc.argv, "env": proc.env,
                   "cwd": proc.cwd, "log": str(proc.log_path), "group": proc.group}
        if not self._send(message):
            raise WarmUnavailable(self._dead or "warm launcher not reachable")
        deadline = time.monotonic() + _SPAWN_TIMEOUT
        with self._cond:
            while request_id not in self._replies:
                left = deadline - time.monotonic()
                if self._dead is not None or left <= 0:
                    raise WarmUnavailable(self._dead or "warm launcher did not answer")
                self._cond.wait(left)
            reply = self._replies.pop(request_id)
            if reply["op"] == "error" and reply.get("cold"):
                raise WarmUnavailable(reply["error"])
            if reply["op"] == "error":
                code = reply.get("errno") or errno.EIO
                raise OSError(code, reply["error"])
            pid = int(reply["pid"])
            self._live[pid] = proc
            return pid

    def exit_code(self, pid: int) -> int | None:
        """The exit code the zygote reported for ``pid``, or None while it runs."""
        with self._cond:
            return self._exits.get(pid)

    def wait_exit(self, pid: int, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for ``pid``'s exit code; None if still running."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while pid not in self._exits:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._exits[pid]

    def forget(self, pid: int) -> None:
        """``pid`` is stopped and its exit code read: no longer ours to track."""
        with self._cond:
            self._live.pop(pid, None)  # its exit code stays readable (poll after stop)


@dataclass(frozen=True)
class _ZygoteEntry:
    """The zygote as the process registry sees it: a group for the watchdog, and a stop
    for ``stop_all`` (which stops the servers first, then the zygote)."""

    pid: int
    launcher: WarmLauncher

    @property
    def owner(self) -> str:
        return self.launcher.owner

    def stop(self, sig: int = signal.SIGTERM, grace: float = 5.0) -> StopResult:
        t0 = time.perf_counter()
        self.launcher.close(grace)
        zygote = self.launcher._zygote
        code = None if zygote is None else zygote.returncode
        return StopResult(returncode=code, forced=False, seconds=time.perf_counter() - t0,
                          already_exited=False)

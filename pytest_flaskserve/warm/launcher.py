"""Warm starts: servers forked from a pre-warmed launcher process (issue #6).

A cold start pays for a new interpreter and for importing Flask, Werkzeug, Click and the
server (~120 of its ~150 ms); the app itself is usually a few milliseconds. The warm
launcher (a *zygote*) is a fresh interpreter, started once per session by
:class:`WarmLauncher`, that imports those packages and never the user's app. For each
server it forks a child, and the child becomes ``python ARGV...`` in place: own session
and process group, stdin from /dev/null, stdout and stderr appended to the log file, the
working directory and exactly the environment the supervisor computed, ``sys.path``,
``sys.argv``, ``sys.orig_argv`` and ``__main__`` as the interpreter sets them, a
``sitecustomize`` found on the new path run as ``site`` would, then the server's own
command-line entry point (``runpy`` for ``-m``, the script for ``python script.py``). The
child exits like that interpreter would: ``SystemExit``, an uncaught exception's
traceback and exit 1, KeyboardInterrupt's SIGINT, atexit handlers and thread joins.

The pytest process itself is never forked: the zygote is started with ``subprocess``
(fork+exec, or posix_spawn/vfork), so the ``multiprocessing`` start method, threads in
pytest and ``forkserver`` being Python 3.14's default do not matter.

The protocol is newline-delimited JSON over a socketpair (the zygote gets its end as an
inherited fd): ``spawn`` -> ``spawned {pid}`` or ``error``; the zygote reaps its children
and reports ``exit {pid, code}`` (a Popen-style return code), which is the only way to
learn the exit code of a process we did not start. A client reader thread collects them.

:class:`WarmProcess` offers what :class:`~pytest_flaskserve.process.ManagedProcess` does
(``start``, ``pid``, ``poll``, ``stop(sig, grace) -> StopResult``, ``descendants``,
``tree_pids``, ``log_path``, ``argv``, ``env``), registers with the same watchdog, and
:meth:`WarmLauncher.process` has ``ManagedProcess``'s constructor signature, returning a
cold ``ManagedProcess`` whenever a command cannot be started warm (not this interpreter,
interpreter flags, a startup-only variable such as ``PYTHONHASHSEED`` or coverage's
``COVERAGE_PROCESS_*`` that differs from the zygote's, a directory on the new path that
shadows a preloaded module, the zygote not ready or gone). Known differences from a cold
start: children share the zygote's hash seed, and modules imported by the zygote are
already imported (their import-time side effects happened once, in the zygote).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import gc
import importlib
import importlib.machinery
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_flaskserve import servers
from pytest_flaskserve.lifecycle.process import ManagedProcess, StopResult
from pytest_flaskserve.lifecycle.reach import become_subreaper, kill_descendants
from pytest_flaskserve.lifecycle.registry import OWNER_ENV, SESSION_TOKEN, registry
from pytest_flaskserve.servers import Launcher


def preload_modules() -> tuple[str, ...]:
    """What the zygote imports (those installed): every launcher's ``warm_preload``, what
    its command imports before the app. None of these may start a thread (checked: the
    zygote refuses to fork with more than one); the environment and working directory
    they read at import are refreshed in the child."""
    return tuple(dict.fromkeys(m for launcher in _launchers() for m in launcher.warm_preload))


def entry_point_groups() -> tuple[str, ...]:
    """Entry-point groups the servers scan at start; scanning them once in the zygote
    leaves importlib.metadata's directory cache warm."""
    return tuple(dict.fromkeys(g for launcher in _launchers()
                               for g in launcher.warm_entry_point_groups))


def warm_servers() -> frozenset[str]:
    """Servers whose launchers say their command can start warm."""
    return frozenset(launcher.name for launcher in _launchers() if launcher.starts_warm)


def _launchers() -> list[Launcher]:
    return [servers.get(name) for name in servers.names()]

#: Environment read only while an interpreter starts: a child whose value differs from the
#: zygote's must start cold. PYTHONPATH, PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE are
#: applied in the child instead.
STARTUP_VARIABLES: tuple[str, ...] = (
    "PYTHONHOME", "PYTHONSAFEPATH", "PYTHONPLATLIBDIR", "PYTHONOPTIMIZE", "PYTHONDEBUG",
    "PYTHONINSPECT", "PYTHONVERBOSE", "PYTHONPYCACHEPREFIX", "PYTHONHASHSEED",
    "PYTHONINTMAXSTRDIGITS", "PYTHONIOENCODING", "PYTHONNOUSERSITE", "PYTHONUSERBASE",
    "PYTHONEXECUTABLE", "PYTHONWARNINGS", "PYTHONFAULTHANDLER", "PYTHONTRACEMALLOC",
    "PYTHONPROFILEIMPORTTIME", "PYTHONMALLOC", "PYTHONMALLOCSTATS", "PYTHONCOERCECLOCALE",
    "PYTHONDEVMODE", "PYTHONUTF8", "PYTHONWARNDEFAULTENCODING", "PYTHONNODEBUGRANGES",
    "PYTHONPERFSUPPORT", "PYTHONSTARTUP", "LC_ALL", "LC_CTYPE", "LANG",
)
#: Prefixes of variables with the same property (coverage's ``.pth`` startup hook).
STARTUP_PREFIXES: tuple[str, ...] = ("COVERAGE_PROCESS_",)

_SPAWN_TIMEOUT = 10.0
#: how long a stop waits for the zygote to report a SIGKILLed child
_KILLED_WAIT = 10.0


class WarmUnavailable(RuntimeError):
    """The warm launcher could not be started or is gone; start servers cold."""


@dataclass(frozen=True)
class _Command:
    """``python -m MODULE ARGS`` or ``python SCRIPT ARGS``."""

    module: str | None
    script: str | None
    args: tuple[str, ...]


def parse_command(argv: Sequence[str], python: str) -> _Command | str:
    """The command ``argv`` runs, or why it cannot run warm."""
    if not argv or not _same_file(argv[0], python):
        return "not this interpreter"
    if len(argv) >= 3 and argv[1] == "-m":
        return _Command(module=argv[2], script=None, args=tuple(argv[3:]))
    if len(argv) >= 2 and not argv[1].startswith("-"):
        return _Command(module=None, script=argv[1], args=tuple(argv[2:]))
    return "interpreter options"


def _same_file(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# =========================================================================================
# client side (the pytest process)
# =========================================================================================
class WarmLauncher:
    """One zygote and the servers forked from it.

    ``start()`` it once (at session start; ``wait=False`` lets it warm up in the
    background while the first servers start cold), pass :meth:`process` where the
    supervisor builds its process object, ``close()`` it at the end. Thread-safe.
    """

    def __init__(self, *, log_dir: Path | None = None, python: str | None = None,
                 preload: Sequence[str] | None = None,
                 base_env: Mapping[str, str] | None = None) -> None:
        self.python = python or sys.executable
        self.preload = preload_modules() if preload is None else tuple(preload)
        self.entry_point_groups = entry_point_groups()
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
        package_root = str(Path(__file__).resolve().parents[2])
        code = (f"import sys; sys.path.insert(0, {package_root!r})\n"
                "import pytest_flaskserve.warm.launcher as _w\n"
                "del sys.path[0]\n"
                f"_w._zygote_main({child.fileno()}, {list(self.preload)!r}, "
                f"{list(self.entry_point_groups)!r})\n")
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_dir / f"warm-launcher-{os.getpid()}.log", "ab")
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
                log_path: Path) -> ManagedProcess:
        """``ManagedProcess``'s signature: a warm process when the command allows it."""
        reason = self.why_cold(argv, env, cwd)
        if reason is not None:
            self.fallbacks.append((" ".join(argv[:3]), reason))
            return ManagedProcess(argv, env=env, cwd=cwd, log_path=log_path)
        return WarmProcess(self, argv, env=env, cwd=cwd, log_path=log_path)

    def why_cold(self, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> str | None:
        """Why this command must start cold, or None when it can start warm."""
        if not self.ready:
            return self._dead or "warm launcher not ready"
        command = parse_command(argv, self.python)
        if isinstance(command, str):
            return command
        for key in STARTUP_VARIABLES:
            if env.get(key) != self.env.get(key):
                return f"{key} differs from the warm launcher's"
        for key in env:
            if key.startswith(STARTUP_PREFIXES):
                return f"{key} is read at interpreter start"
        return self._shadowed(command, env, cwd)

    def _shadowed(self, command: _Command, env: Mapping[str, str], cwd: str) -> str | None:
        """A directory the child puts before site-packages holds another copy of a module
        the zygote imported (a project ``flask.py``, a vendored package): it would be
        imported cold, so start cold."""
        assert self._ready is not None
        loaded: dict[str, str] = self._ready["modules"]
        for entry in _prefix_entries(command, env, cwd):
            try:
                names = set(os.listdir(entry))
            except OSError:
                continue
            for name, origin in loaded.items():
                for candidate in _candidates(entry, name, names):
                    if os.path.realpath(candidate) != origin:
                        return f"{candidate} shadows the preloaded {name!r}"
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

    def _spawn(self, proc: WarmProcess) -> int:
        request_id = next(self._ids)
        message = {"op": "spawn", "id": request_id, "argv": proc.argv, "env": proc.env,
                   "cwd": proc.cwd, "log": str(proc.log_path)}
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
            if reply["op"] == "error":
                code = reply.get("errno") or errno.EIO
                raise OSError(code, reply["error"])
            pid = int(reply["pid"])
            self._live[pid] = proc
            return pid

    def _exit_code(self, pid: int) -> int | None:
        with self._cond:
            return self._exits.get(pid)

    def _wait(self, pid: int, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while pid not in self._exits:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._exits[pid]

    def _forget(self, pid: int) -> None:
        with self._cond:
            self._live.pop(pid, None)


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


def _prefix_entries(command: _Command, env: Mapping[str, str], cwd: str) -> list[str]:
    """What a fresh interpreter puts before the standard path: the script's directory (or
    the working directory for ``-m``), then PYTHONPATH made absolute."""
    if command.module is not None:
        first = cwd
    else:
        assert command.script is not None
        first = os.path.dirname(os.path.realpath(os.path.join(cwd, command.script)))
    entries = [first]
    for item in env.get("PYTHONPATH", "").split(os.pathsep):
        if item:
            entries.append(os.path.normpath(os.path.join(cwd, item)))
    return entries


def _candidates(entry: str, name: str, listing: set[str]) -> list[str]:
    """Files in ``entry`` that ``import name`` would pick up, if any."""
    found: list[str] = []
    if name in listing:
        init = os.path.join(entry, name, "__init__.py")
        if os.path.isfile(init):
            found.append(init)
    for suffix in (".py", ".pyc", *importlib.machinery.EXTENSION_SUFFIXES):
        if name + suffix in listing:
            found.append(os.path.join(entry, name + suffix))
    return found


class WarmProcess(ManagedProcess):
    """A server forked by the zygote: a ``ManagedProcess`` whose process we did not Popen.

    A subclass so that everything typed for ``ManagedProcess`` (the supervisor, its
    handles, the registry, ``stop_all``) takes it unchanged; it overrides what depends on
    ``Popen``. The exit code comes from the zygote, its parent; the pid, process group and
    session are its own, so signals, the watchdog and the sweep work as for a cold one.
    """

    def __init__(self, launcher: WarmLauncher, argv: Sequence[str], *, env: Mapping[str, str],
                 cwd: str, log_path: Path) -> None:
        super().__init__(argv, env=env, cwd=cwd, log_path=log_path)
        self.launcher = launcher

    def _spawn(self) -> int:
        """Fork the server from the zygote; its pid. OSError if it cannot be started."""
        return self.launcher._spawn(self)

    def _poll(self) -> int | None:
        """The exit code once the zygote has reported it, else None."""
        return self.launcher._exit_code(self.pid)

    def _wait(self, timeout: float | None) -> int | None:
        # a SIGKILLed child is reaped by the zygote at once; the bound only matters if the
        # zygote is gone, and then its children are marked killed (WarmLauncher._lost)
        return self.launcher._wait(self.pid, _KILLED_WAIT if timeout is None else timeout)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the exit code; None if still running."""
        return self._wait(timeout)

    def _forget(self) -> None:
        self.launcher._forget(self.pid)


# =========================================================================================
# zygote side (a fresh interpreter: ``python -c "... _zygote_main(fd, preload)"``)
# =========================================================================================
@dataclass
class _Child:
    """What a forked child becomes, handed from the zygote loop up to ``_zygote_main``."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    command: _Command


def _zygote_main(fd: int, preload: list[str], groups: list[str]) -> None:
    """The zygote's main: preload, serve; in a forked child, become the server.

    The child returns here out of the loop (its frames, sockets and pipes gone) and runs
    the server from the interpreter's top level, so the exit path is the interpreter's.
    """
    child = _Zygote(fd, preload, groups).serve()
    if child is None:
        return
    try:
        _become(child)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - printed as the interpreter would, then exit 1
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        # the hook prints the exception's own __traceback__ when it has one
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        raise SystemExit(1) from None


class _Zygote:
    def __init__(self, fd: int, preload: list[str], groups: list[str]) -> None:
        t0 = time.perf_counter()
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

    def serve(self) -> _Child | None:
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

    def spawn(self, message: dict[str, Any]) -> _Child | None:
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
            return _Child(argv=message["argv"], env=message["env"], cwd=cwd, command=command)
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


def _become(child: _Child) -> None:
    """Turn this forked child into ``python ARGV`` (see the module docstring)."""
    env = child.env
    os.environ.clear()
    os.environ.update(env)
    command = child.command
    prefix = _prefix_entries(command, env, child.cwd)
    base = [p for p in sys.path if p]
    sys.path[:] = prefix + [p for p in base if p not in prefix]
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    _reset_stdio(unbuffered=bool(env.get("PYTHONUNBUFFERED")))
    # In place: a default argument such as waitress.runner.run(argv=sys.argv) captured
    # the list object when the zygote imported it.
    sys.orig_argv[:] = child.argv
    importlib.invalidate_caches()
    _refresh_import_time_values()
    _run_sitecustomize()
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    if command.module is not None:
        import runpy

        sys.argv[:] = ["-m", *command.args]
        runpy._run_module_as_main(command.module, alter_argv=True)  # type: ignore[attr-defined]
        return
    assert command.script is not None
    sys.argv[:] = [command.script, *command.args]
    if not os.path.isfile(command.script):
        # a directory or zip file with __main__.py (or missing: runpy says so)
        import runpy

        runpy.run_path(command.script, run_name="__main__")
        return
    # Since 3.9 the interpreter makes the script's path absolute for __file__ and the
    # code object (tracebacks); sys.argv[0] stays as given.
    path = os.path.abspath(command.script)
    with open(path, "rb") as f:
        source = f.read()
    code = compile(source, path, "exec", dont_inherit=True)
    main.__dict__.update(
        __name__="__main__", __file__=path, __cached__=None, __doc__=None, __package__=None,
        __spec__=None, __loader__=importlib.machinery.SourceFileLoader("__main__", path))
    exec(code, main.__dict__)


def _refresh_import_time_values() -> None:
    """Recompute what preloaded modules computed from the zygote's cwd and environment.

    Found by reading the preloaded packages for module- and class-level reads of
    ``os.environ``/``getcwd`` (the warm tests compare a warm server's cwd, ``sys.path``
    and environment with a cold one's): Gunicorn's settings take their defaults when
    gunicorn.config is imported: ``Workers.default`` (``WEB_CONCURRENCY``),
    ``Chdir.default`` (``util.getcwd()``: the worker would chdir to the zygote's
    directory and put it first on ``sys.path``) and ``ForwardedAllowIPS.default``
    (``FORWARDED_ALLOW_IPS``). Each ``Config`` instantiates its settings from these class
    attributes, so setting them again before Gunicorn parses its command line is enough.
    """
    config = sys.modules.get("gunicorn.config")
    if config is None:
        return
    util: Any = getattr(config, "util", None)
    with contextlib.suppress(AttributeError, ValueError):
        config.Workers.default = int(os.environ.get("WEB_CONCURRENCY", 1))
    with contextlib.suppress(AttributeError, OSError):
        config.Chdir.default = util.getcwd()
    with contextlib.suppress(AttributeError):
        config.ForwardedAllowIPS.default = os.environ.get("FORWARDED_ALLOW_IPS",
                                                          "127.0.0.1,::1")


def _reset_stdio(unbuffered: bool) -> None:
    """New ``sys.std*`` on fds 0-2, built the way the interpreter builds them at start."""
    like_out, like_err = sys.__stdout__, sys.__stderr__
    encoding = getattr(like_out, "encoding", None) or "utf-8"
    errors = getattr(like_out, "errors", None) or "strict"

    def writer(fd: int, errors: str) -> io.TextIOWrapper:
        # CPython's create_stdio: line buffering for a tty or stderr, unless unbuffered
        # (-u, PYTHONUNBUFFERED), which writes through an unbuffered binary layer.
        raw = open(fd, "wb", buffering=0 if unbuffered else -1, closefd=False)
        line = not unbuffered and (fd == 2 or os.isatty(fd))
        return io.TextIOWrapper(raw, encoding=encoding, errors=errors, newline="\n",
                                line_buffering=line, write_through=unbuffered)

    stdin = io.TextIOWrapper(open(0, "rb", closefd=False), encoding=encoding,
                             errors=errors)
    stdout = writer(1, errors)
    stderr = writer(2, getattr(like_err, "errors", None) or "backslashreplace")
    for name, stream in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _run_sitecustomize() -> None:
    """Import the ``sitecustomize`` a fresh interpreter would, as ``site`` does, unless it
    is the one the zygote already ran (same file)."""
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.origin is None:
        return
    loaded = sys.modules.get("sitecustomize")
    origin = os.path.realpath(spec.origin)
    if loaded is not None and os.path.realpath(getattr(loaded, "__file__", "") or "") == origin:
        return
    sys.modules.pop("sitecustomize", None)
    try:
        try:
            importlib.import_module("sitecustomize")
        except ImportError as exc:
            if exc.name != "sitecustomize":
                raise
    except Exception as err:  # noqa: BLE001 - site.execsitecustomize's message
        sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                         f"{err.__class__.__name__}: {err}\n")

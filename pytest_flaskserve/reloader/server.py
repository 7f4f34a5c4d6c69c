"""Reloader resilience: edit a copy of the app under a reloading server, tell what happened.

``flask run --reload`` survives a broken edit (it serves the error, then recovers once the
file is fixed); the reloader behind ``app.run(debug=True)`` exits and stays dead. This
module makes that difference testable on every reload-capable server:

* :func:`copy_project` copies the app's import root to a scratch directory, so edits
  never touch the user's files;
* :class:`ReloadingServer` edits files of the copy (``edit``, ``replace``,
  ``break_syntax``, ``break_import``, ``raise_at_import``, ``restore``), bumps their
  mtimes explicitly (the stat reloaders compare ``mtime > last``, and file systems and
  uWSGI count whole seconds), watches the log for the server's own "change detected"
  line instead of sleeping, and classifies the result as an :class:`Outcome`;
* each launcher's :class:`ReloadProfile` (``Launcher.reload_profile``) holds what differs
  per server: the log lines that say "noticed a change" and "the old code no longer
  serves", and which reloader options it accepts.

It knows nothing of pytest: the ``flask_reloader`` fixture (``reloader_plugin.py``) is a
thin factory over it, and scripts can use it with :func:`default_starter`.
"""

from __future__ import annotations

import ast
import enum
import http.client
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import ResolvedApp, parse_spec, script_entry
from pytest_flaskserve.errors import FlaskServeError, UsageError, hide_own_errors
from pytest_flaskserve.lifecycle import logs
from pytest_flaskserve.lifecycle.process import describe_exit
from pytest_flaskserve.lifecycle.supervisor import ServerHandle, StartConfig, start_server
from pytest_flaskserve.servers import ServerOptions
from pytest_flaskserve.servers.reloading import ReloadProfile

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

#: Werkzeug's reloader polls this often under the fixture (its default is 1 s).
FAST_INTERVAL = 0.1

#: Left out of the copy: version control, virtualenvs, caches and build output.
DEFAULT_IGNORE = (
    ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "*.pyc", "node_modules",
    ".tox", ".nox", ".pytest_cache", ".mypy_cache", ".ruff_cache", "build", "dist",
    "*.egg-info", "htmlcov", ".idea", ".vscode",
)

#: A copy bigger than this is almost certainly data, not an app: refuse and say so.
MAX_COPY_FILES = 5000


class Outcome(enum.Enum):
    """What a server did after an edit."""

    #: it reloaded and serves without errors (no error was being served before)
    SERVING = "serving"
    #: it reloaded, is alive, and answers 5xx: the app failed to load
    SERVING_ERRORS = "serving errors"
    #: it was serving errors and serves without errors again
    RECOVERED = "recovered"
    #: the server exited (see :attr:`ReloadResult.exit_code`); it will not come back
    DEAD = "dead"


@dataclass(frozen=True)
class ReloadResult:
    """The outcome of one edit (or of several edits made before one wait)."""

    outcome: Outcome
    #: HTTP status of the probe after the reload; None when DEAD
    status: int | None
    #: the server's exit code when DEAD (Popen's: negative for a signal), else None
    exit_code: int | None
    #: restarts the server has logged since it started, this one included
    restarts: int
    #: from the first edit to the outcome
    seconds: float
    #: the file the server named when it noticed the change (None if it died first)
    detected: str | None

    @property
    def survived(self) -> bool:
        return self.outcome is not Outcome.DEAD

    def __str__(self) -> str:
        if self.outcome is Outcome.DEAD:
            what = f"DEAD ({describe_exit(self.exit_code)})"
        else:
            what = f"{self.outcome.name} (HTTP {self.status})"
        return f"{what} {self.seconds:.2f} s after the edit, restart #{self.restarts}"


class ReloaderUnavailable(FlaskServeError):
    """This server, or this reloader type, cannot reload in this environment (a skip)."""


class ReloadError(FlaskServeError):
    """The server did not come back after an edit: it died, or nothing happened in time.

    ``result`` is the DEAD result when it died; ``log_tail`` the end of its log.
    """

    def __init__(self, message: str, *, server: str, exit_code: int | None, log_tail: str,
                 result: ReloadResult | None = None) -> None:
        super().__init__(message)
        self.server = server
        self.exit_code = exit_code
        self.log_tail = log_tail
        self.result = result


# -- what differs per server --------------------------------------------------------

def profiles() -> dict[str, ReloadProfile]:
    """Every registered server's reload profile, by server name (each launcher names its
    own; a variant inherits its base server's)."""
    found = {}
    for name in servers.names():
        profile = servers.get(name).reload_profile
        if profile is not None:
            found[name] = replace(profile, server=name)
    return found


def profile_for(server: str) -> ReloadProfile:
    """The reload profile of ``server``; :class:`ReloaderUnavailable` if it has none."""
    launcher = servers.get(server)  # an unknown name is a UsageError
    capable = [n for n in servers.names() if servers.get(n).supports_reload]
    if not launcher.supports_reload:
        raise ReloaderUnavailable(
            f"{server} has no reloader to test; use one of: {', '.join(capable)}")
    if launcher.reload_profile is None:
        raise ReloaderUnavailable(
            f"{server} says it can reload, but its launcher names no reload profile (its "
            f"log lines); use one of: {', '.join(profiles())}")
    return replace(launcher.reload_profile, server=server)


@dataclass(frozen=True)
class ReloaderConfig:
    """Reloader options a test can set; each server accepts the ones it has."""

    #: poll interval in seconds (Werkzeug only); None keeps the server's own default
    interval: float | None = FAST_INTERVAL
    #: reloader type: Werkzeug ``stat``/``watchdog``/``auto``, Gunicorn ``poll``/``inotify``
    reloader_type: str | None = None
    #: more files whose change triggers a reload (relative to the copy, or absolute)
    extra_files: tuple[str, ...] = ()
    #: fnmatch patterns of absolute paths whose change is ignored (Werkzeug only)
    exclude_patterns: tuple[str, ...] = ()


def _reloader_env() -> str:
    """The boot hook's variable, imported only once the registry has loaded (importing a
    launcher module first would register it alone, ahead of the others)."""
    servers.names()
    from pytest_flaskserve.servers.app_run import RELOADER_ENV

    return RELOADER_ENV


def _within(path: str, directory: str) -> bool:
    return (path + os.sep).startswith(directory + os.sep)


def _outermost_outside(root: Path, dirs: Iterable[str]) -> list[str]:
    """The directories of ``dirs`` that do not hold the copy at ``root`` (excluding those
    would silence every edit), minus those inside another one."""
    copy = os.path.realpath(root)
    kept: list[str] = []
    for directory in sorted({os.path.realpath(d) for d in dirs}, key=len):
        if not _within(copy, directory) and not any(_within(directory, k) for k in kept):
            kept.append(directory)
    return kept


def render_reloader(profile: ReloadProfile, config: ReloaderConfig, root: Path,
                    protect: Sequence[str] = (), *, explicit: Iterable[str] = ()
                    ) -> tuple[list[str], dict[str, str]]:
    """Extra arguments and environment that give ``profile``'s server ``config``.

    ``protect``: directories outside the copy whose files must not trigger a reload
    (the original project, this plugin); Werkzeug watches every ``.py`` file under
    ``sys.path``, which includes an editable install's source tree. ``explicit`` names
    the options the caller set on purpose: those raise :class:`UsageError` on a server
    that lacks them, the others are dropped there. Raises :class:`ReloaderUnavailable`
    for a reloader type whose package is not installed.
    """
    explicit = set(explicit)
    name = profile.server
    extra_files = [str((root / f).resolve()) if not os.path.isabs(f) else f
                   for f in config.extra_files]
    if config.reloader_type is not None:
        kinds = dict(profile.types)
        if config.reloader_type not in kinds:
            if not kinds:
                raise UsageError(f"{name}'s reloader has only one type; drop reloader_type")
            raise UsageError(f"{name} has no reloader type {config.reloader_type!r}; "
                             f"choose from: {', '.join(kinds)}")
        needs = kinds[config.reloader_type]
        if needs and importlib.util.find_spec(needs) is None:
            raise ReloaderUnavailable(
                f"the {config.reloader_type} reloader of {name} needs the {needs} package, "
                f"which is not installed (pip install {needs})")
    if profile.werkzeug:
        excludes = [*config.exclude_patterns,
                    *(os.path.join(d, "*") for d in _outermost_outside(root, protect))]
        conf: dict[str, object] = {}
        if config.interval is not None:
            conf["interval"] = config.interval
        if config.reloader_type is not None:
            conf["type"] = config.reloader_type
        args: list[str] = []
        if profile.werkzeug_cli:
            # what users type: Flask's CLI has these two flags
            if extra_files:
                args += ["--extra-files", os.pathsep.join(extra_files)]
            if excludes:
                args += ["--exclude-patterns", os.pathsep.join(excludes)]
        else:
            conf.update({k: v for k, v in (("extra_files", extra_files),
                                            ("exclude_patterns", excludes)) if v})
        return args, ({_reloader_env(): json.dumps(conf)} if conf else {})
    for option, value in (("interval", config.interval),
                          ("exclude_patterns", config.exclude_patterns)):
        if value and option in explicit:
            raise UsageError(f"{name}'s reloader has no {option} option; drop it "
                             "(it is a Werkzeug option: flask-run and app-run)")
    args = []
    if extra_files:
        if profile.extra_file_flag is None:
            raise UsageError(f"{name}'s reloader watches only imported modules; drop "
                             "extra_files or pass the server's own flag in args=[...]")
        for f in extra_files:
            args += [profile.extra_file_flag, f]
    if config.reloader_type is not None and profile.type_flag is not None:
        args += [profile.type_flag, config.reloader_type]
    return args, {}


# -- the copy -----------------------------------------------------------------------

def _ignore(patterns: Sequence[str], dest: str) -> Callable[[str, list[str]], set[str]]:
    by_name = shutil.ignore_patterns(*patterns)
    dest = os.path.realpath(dest) + os.sep

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(by_name(directory, names))
        for name in names:
            path = os.path.join(directory, name)
            # any virtualenv, whatever its name
            if os.path.isfile(os.path.join(path, "pyvenv.cfg")):
                skipped.add(name)
            # the copy itself, when the temporary directory is inside the project
            # (pytest --basetemp in the project, pytester): never copy into itself
            elif dest.startswith(os.path.realpath(path) + os.sep):
                skipped.add(name)
        return skipped

    return ignore


def copy_project(source: str | os.PathLike[str], dest: str | os.PathLike[str],
                 ignore: Sequence[str] = ()) -> Path:
    """Copy ``source`` (the app's import root) into the new directory ``dest``.

    Symlinks are copied as the files they point to, so an edit of the copy can never
    write through a link into the user's tree. Raises :class:`UsageError` when the tree
    is too large to be an app (a data directory left in it).
    """
    src, dst = Path(source), Path(dest)
    patterns = (*DEFAULT_IGNORE, *ignore)
    count = 0
    skip = _ignore(patterns, os.fspath(dst))
    for directory, dirs, files in os.walk(src):
        ignored = skip(directory, dirs + files)
        dirs[:] = [d for d in dirs if d not in ignored]
        count += sum(1 for f in files if f not in ignored)
        if count > MAX_COPY_FILES:
            raise UsageError(
                f"{src} holds more than {MAX_COPY_FILES} files (besides version control, "
                "virtualenvs and caches); flask_reloader copies the app's import root: pass "
                "ignore=['data', ...] to leave out what the app does not import")
    shutil.copytree(src, dst, ignore=skip, symlinks=True, ignore_dangling_symlinks=True)
    return dst


def relocate(app: ResolvedApp, source_root: str | os.PathLike[str],
             root: str | os.PathLike[str]) -> ResolvedApp:
    """``app`` as found in the copy at ``root`` of ``source_root`` (no import needed)."""
    src, dst = os.path.realpath(source_root), Path(root)
    module_file = app.module_file
    if module_file is None or not os.path.realpath(module_file).startswith(src + os.sep):
        raise UsageError(
            f"the app {app.describe()} is loaded from {module_file or 'no file'}, not from "
            f"{src}: flask_reloader edits a copy of the import root, so run pytest from the "
            "project directory rather than against an installed copy")
    new_file = dst / os.path.relpath(os.path.realpath(module_file), src)
    spec = parse_spec(app.describe(), dst, source="flask_reloader")
    script, reason = script_entry(app.module, str(new_file), app.is_package, str(dst))
    return replace(app, spec=spec, module_file=str(new_file), script=script,
                   script_reason=reason)


# -- edits ----------------------------------------------------------------------------

def bump_mtime(before: float) -> float:
    """The mtime to give a file edited when it had ``before``: later by a whole second.

    Reloaders compare ``mtime > last`` (uWSGI in whole seconds) and coarse file systems
    round, so an edit within the same tick as the previous one would go unnoticed.
    """
    return max(time.time(), before + 1.0)


def write_bumped(path: Path, data: bytes) -> str:
    """Replace ``path`` atomically with ``data`` and an mtime reloaders cannot miss.

    The new content goes to a temporary file in the same directory (not ``*.py``, so no
    reloader sees it), gets its mtime, and is renamed over the target: a reloader never
    reads a half-written file, and the content and mtime change in one step. Returns the
    temporary file's name: Werkzeug's watchdog reloader names the rename's source in its
    "Detected change" line.
    """
    try:
        before = path.stat().st_mtime
    except FileNotFoundError:
        before = 0.0
    mtime = bump_mtime(before)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".flaskserve-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if path.exists():
            shutil.copymode(path, tmp)
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return os.path.basename(tmp)


def insertion_line(source: str) -> int:
    """The 0-based line where a statement can go first without changing what the module
    means: after the docstring and ``from __future__`` imports (a statement before those
    would itself be a syntax error)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return 0
    line = 0
    for i, node in enumerate(tree.body):
        docstring = (i == 0 and isinstance(node, ast.Expr)
                     and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
        future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if not (docstring or future):
            break
        line = node.end_lineno or node.lineno
    return line


def insert_statement(source: str, statement: str) -> str:
    """``source`` with ``statement`` as the first statement that runs at import."""
    lines = source.splitlines(keepends=True)
    at = insertion_line(source)
    if at and at <= len(lines) and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    return "".join(lines[:at] + [statement.rstrip("\n") + "\n"] + lines[at:])


SYNTAX_ERROR = "flaskserve_broken = (  # syntax error written by flask_reloader\n"
MISSING_MODULE = "flaskserve_module_that_does_not_exist"


# -- the handle -----------------------------------------------------------------------

Starter = Callable[[ResolvedApp, ServerOptions], ServerHandle]


def default_starter(server: str, config: StartConfig) -> Starter:
    """Start through the supervisor directly (scripts and benchmarks; the fixture passes
    its own starter so servers are recorded and reported with the test)."""
    launcher = servers.get(server)

    def start(app: ResolvedApp, options: ServerOptions) -> ServerHandle:
        return start_server(launcher, app, options, config)

    return start


def fetch(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int | None, str]:
    """One GET on a fresh connection: (status, body), or (None, "") if nothing answered."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close",
                                           "User-Agent": "pytest-flaskserve-reloader"})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    except (TimeoutError, OSError, http.client.HTTPException):
        return None, ""
    finally:
        conn.close()


@dataclass
class _Pending:
    """Edits made since the last outcome: when they started and where the log was."""

    started: float
    mark: int
    files: dict[Path, None] = field(default_factory=dict)
    #: temporary file name -> the file it replaced (see :func:`write_bumped`)
    temps: dict[str, Path] = field(default_factory=dict)


class ReloadingServer:
    """A reload-capable server running the copy of an app at :attr:`root`.

    Edit files of the copy, then :meth:`wait_for_reload` (returns once the server noticed
    and serves again; raises :class:`ReloadError` with the log tail if it died) or
    :meth:`wait_for_outcome` (returns a DEAD result instead of raising). ``str()`` is
    the base URL; ``server + "/path"`` a URL.
    """

    def __init__(self, *, server: str, app: ResolvedApp, options: ServerOptions, root: Path,
                 starter: Starter, path: str = "/", profile: ReloadProfile | None = None,
                 poll_interval: float | None = None) -> None:
        self.server_name = server
        self.profile = profile or profile_for(server)
        self.app = app
        self.options = options
        self.root = root
        self.path = path
        self._starter = starter
        self._handle: ServerHandle | None = None
        self._originals: dict[Path, bytes | None] = {}
        self._pending: _Pending | None = None
        self._broken = False
        self.results: list[ReloadResult] = []
        interval = poll_interval if poll_interval is not None else self.profile.poll_interval
        #: re-bump pending files this often while no change is noticed: uWSGI takes its
        #: first snapshot of mtimes one interval after a worker starts, Gunicorn in a
        #: thread racing the first requests, so an edit right after startup can be missed.
        #: Harmless otherwise: bumps stop once the change is logged, and the restarted
        #: process snapshots the mtimes after the last bump.
        self.nudge_every = max(interval / 2, 0.2)

    # -- life -----------------------------------------------------------------------
    def start(self, arm_timeout: float = 5.0) -> ReloadingServer:
        """Start the server on the copy and check that its reloader runs.

        Raises :class:`~pytest_flaskserve.errors.ServerStartupError` when the copy does
        not start (as with a syntax error present at first start), and
        :class:`UsageError` when the server runs without its reloader.
        """
        if self._handle is not None:
            raise UsageError(f"{self.server_name} was already started on {self.root}")
        self._handle = handle = self._starter(self.app, self.options)
        # Gunicorn under --reload serves a SyntaxError present at the first start as 500
        self._broken = handle.ready_status >= 500
        try:
            # a reloader that is on has said so by now, or will within moments
            handle.wait_for_log(self.profile.armed, timeout=0.5 if self.profile.armed_before_ready
                                else arm_timeout)
        except TimeoutError:
            handle.stop()
            raise UsageError(f"{self.server_name} serves {self.app.describe()} without a "
                             f"reloader: {self.profile.enable_hint}") from None
        return self

    @property
    def handle(self) -> ServerHandle:
        """The underlying server handle (pid, command, log, stop)."""
        if self._handle is None:
            raise UsageError(f"{self.server_name} is not started yet; call start() first")
        return self._handle

    @property
    def started(self) -> bool:
        return self._handle is not None

    @property
    def url(self) -> str:
        return self.handle.url

    def __str__(self) -> str:
        return self.url

    def __add__(self, path: str) -> str:
        return self.url + path

    def __repr__(self) -> str:
        state = self.handle.url if self._handle is not None else "not started"
        return f"<ReloadingServer {self.server_name} {self.app.describe()} in {self.root}: {state}>"

    @property
    def app_file(self) -> Path:
        """The app's module file in the copy (what the break helpers edit by default)."""
        assert self.app.module_file is not None
        return Path(self.app.module_file)

    @property
    def exit_code(self) -> int | None:
        return self.handle.exit_code

    def is_running(self) -> bool:
        return self.handle.is_running()

    def read_log(self) -> str:
        return self.handle.read_log()

    def log_tail(self, lines: int = 40) -> str:
        return self.handle.log_tail(lines)

    @property
    def restarts(self) -> int:
        """How many times the server has noticed a change and restarted so far."""
        if self._handle is None:
            return 0
        return count_restarts(self.profile, self.read_log())

    @property
    def last(self) -> ReloadResult | None:
        return self.results[-1] if self.results else None

    def get(self, path: str | None = None, timeout: float = 5.0) -> tuple[int | None, str]:
        """GET ``path`` (default: the probe path): (status, body), (None, "") if no answer."""
        handle = self.handle
        return fetch(handle.host, handle.port, path or self.path, timeout)

    def stop(self) -> int | None:
        """Stop the whole tree (reloader parent and child, master and workers)."""
        return self._handle.stop() if self._handle is not None else None

    # -- edits ------------------------------------------------------------------------
    def file(self, path: str | os.PathLike[str] | None = None) -> Path:
        """``path`` inside the copy (relative to :attr:`root`); the app file for None."""
        if path is None:
            return self.app_file
        target = Path(path)
        if not target.is_absolute():
            target = self.root / target
        target = Path(os.path.realpath(target))
        root = os.path.realpath(self.root)
        if not str(target).startswith(root + os.sep):
            raise UsageError(f"{path} is outside the copy of the app at {root}; pass a path "
                             "relative to it (the user's own files are never edited)")
        return target

    def _pending_edit(self) -> _Pending:
        if self._pending is None:
            mark = len(self.read_log()) if self._handle is not None else 0
            self._pending = _Pending(started=time.monotonic(), mark=mark)
        return self._pending

    def _write(self, target: Path, data: bytes) -> None:
        if target not in self._originals:
            self._originals[target] = target.read_bytes() if target.exists() else None
        pending = self._pending_edit()
        target.parent.mkdir(parents=True, exist_ok=True)
        pending.temps[write_bumped(target, data)] = target
        pending.files[target] = None

    def edit(self, path: str | os.PathLike[str] | None, text: str | bytes) -> Path:
        """Write ``text`` (or bytes) to ``path`` in the copy (created if missing);
        returns its path."""
        target = self.file(path)
        if target.is_dir():
            raise UsageError(f"{target} is a directory in the copy; edit a file in it, e.g. "
                             f"server.edit({os.path.join(str(path), 'x.py')!r}, ...)")
        if not isinstance(text, (str, bytes)):
            raise UsageError(f"edit() writes text or bytes, not {type(text).__name__}")
        self._write(target, text.encode("utf-8") if isinstance(text, str) else text)
        return target

    def read(self, path: str | os.PathLike[str] | None = None) -> str:
        """The text of ``path`` in the copy; a clear error if it is missing or binary."""
        target = self.file(path)
        if not target.is_file():
            raise UsageError(f"{target} is not a file of the copy at {self.root}; check the "
                             "path (relative to the copy), or create it with edit()")
        try:
            return target.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{target} is not UTF-8 text; change it with edit(path, "
                             "bytes)") from None

    def replace(self, path: str | os.PathLike[str] | None, old: str, new: str,
                count: int = 1) -> Path:
        """Replace ``old`` by ``new`` (the first ``count`` times; -1 for all) in ``path``."""
        target = self.file(path)
        text = self.read(target)
        if old not in text:
            raise UsageError(f"{old!r} does not occur in {target}; check the text to replace "
                             f"(read it with server.read({str(path)!r}))")
        return self.edit(target, text.replace(old, new, count))

    def break_syntax(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Append an unclosed parenthesis: a SyntaxError wherever the file is compiled."""
        target = self.file(path)
        text = self.read(target)
        if text and not text.endswith("\n"):
            text += "\n"
        return self.edit(target, text + SYNTAX_ERROR)

    def break_import(self, path: str | os.PathLike[str] | None = None,
                     module: str = MISSING_MODULE) -> Path:
        """Make the file import a module that does not exist (ModuleNotFoundError)."""
        target = self.file(path)
        statement = f"import {module}  # missing module written by flask_reloader"
        return self.edit(target, insert_statement(self.read(target), statement))

    def raise_at_import(self, path: str | os.PathLike[str] | None = None,
                        exception: str = "RuntimeError('raised at import by flask_reloader')"
                        ) -> Path:
        """Make the file raise ``exception`` (a Python expression) when it is imported."""
        target = self.file(path)
        statement = f"raise {exception}"
        return self.edit(target, insert_statement(self.read(target), statement))

    def restore(self, path: str | os.PathLike[str] | None = None) -> list[Path]:
        """Put back the original content of ``path``, or of every edited file.

        A file the edits created is removed (a stat reloader does not reload on a
        removal; the next edit of a watched file will). Returns the files restored.
        """
        targets = list(self._originals) if path is None else [self.file(path)]
        done = []
        for target in targets:
            if target not in self._originals:
                raise UsageError(f"{target} was not edited; nothing to restore")
            original = self._originals[target]
            if original is None:
                target.unlink(missing_ok=True)
            else:
                self._write(target, original)
            del self._originals[target]
            done.append(target)
        return done

    # -- waiting --------------------------------------------------------------------------
    def wait_for_reload(self, timeout: float = 20.0) -> ReloadResult:
        """Wait until the server noticed the edits and serves again (with or without
        errors); raises :class:`ReloadError` with the log tail if it died or nothing
        happened within ``timeout`` seconds."""
        result = self.wait_for_outcome(timeout)
        if result.outcome is Outcome.DEAD:
            assert self._handle is not None
            raise ReloadError(
                f"{self.server_name} did not survive the edit: it exited "
                f"({describe_exit(result.exit_code)}) {result.seconds:.2f} s later; "
                f"use wait_for_outcome() to assert that it dies\n"
                f"{self._log_section()}",
                server=self.server_name, exit_code=result.exit_code,
                log_tail=self.log_tail(), result=result)
        return result

    def wait_for_outcome(self, timeout: float = 20.0) -> ReloadResult:
        """Wait until the edits made since the last outcome have one, and return it.

        Watches the log for the server's own "change detected" line, then for the line
        that says the old code is gone, then probes HTTP: an answer below 500 is SERVING
        (RECOVERED after SERVING_ERRORS), 500 and above SERVING_ERRORS; an exit is DEAD,
        and the handle then stops what is left of the tree (a reloader child can outlive
        its parent). Raises :class:`ReloadError` if no outcome comes within ``timeout``.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise UsageError(f"wait_for_reload/wait_for_outcome(timeout={timeout!r}): use a "
                             "positive number of seconds")
        pending = self._pending
        if pending is None:
            raise UsageError("nothing was edited since the last outcome; edit the copy "
                             "first (edit(), replace(), break_syntax(), or restore() of an "
                             "edited file; restoring a file the edits created removes it, "
                             "which is not waited for: a stat reloader never notices it)")
        handle = self.handle
        deadline = time.monotonic() + timeout
        detected: re.Match[str] | None = None
        next_nudge = pending.started + self.nudge_every
        pause = 0.01
        offset = pending.mark
        stage = "notice the change"
        while True:
            log = self.read_log()
            if detected is None:
                detected = self.profile.detected.search(log, offset)
                if detected is not None:
                    offset = detected.end()
                    stage = "restart"
            if detected is not None and stage == "restart":
                if self.profile.restarted.search(log, offset) is not None:
                    stage = "serve again"
            code = handle.exit_code
            if code is not None:
                return self._settle(Outcome.DEAD, None, detected, pending)
            if stage == "serve again":
                status, _ = fetch(handle.host, handle.port, self.path,
                                  timeout=max(0.2, min(5.0, deadline - time.monotonic())))
                code = handle.exit_code
                if code is not None:
                    return self._settle(Outcome.DEAD, None, detected, pending)
                if status is not None:
                    if status >= 500:
                        return self._settle(Outcome.SERVING_ERRORS, status, detected, pending)
                    outcome = Outcome.RECOVERED if self._broken else Outcome.SERVING
                    return self._settle(outcome, status, detected, pending)
            now = time.monotonic()
            if now >= deadline:
                hint = watchdog_hint(self.read_log()) if detected is None else None
                raise ReloadError(
                    f"{self.server_name} did not {stage} within {timeout:g} s of the edit of "
                    f"{', '.join(str(p.relative_to(self.root)) for p in pending.files)}; "
                    f"it is still running (pid {handle.pid}): "
                    + (hint or ("check that the file is one the server watches, or raise "
                                "the timeout" if detected is None else
                                "it noticed the change but the new code never answered: "
                                "it may block at import, or need a longer timeout"))
                    + f"\n{self._log_section()}",
                    server=self.server_name, exit_code=None, log_tail=self.log_tail())
            if detected is None and now >= next_nudge:
                for target in pending.files:
                    if target.exists():
                        mtime = bump_mtime(target.stat().st_mtime)
                        os.utime(target, (mtime, mtime))
                next_nudge = now + self.nudge_every
            time.sleep(pause)
            pause = min(pause * 1.5, 0.05)

    def expect_no_reload(self, within: float = 1.0) -> None:
        """Check that the edits made since the last outcome do *not* make the server
        reload within ``within`` seconds (an excluded or unwatched file). Raises
        :class:`ReloadError` naming the line if it does; the edits are then settled."""
        pending = self._pending
        if pending is None:
            raise UsageError("nothing was edited since the last outcome; edit a file first")
        handle = self.handle
        deadline = time.monotonic() + within
        self._pending = None
        while True:
            found = self.profile.detected.search(self.read_log(), pending.mark)
            if found is not None:
                line = found.group(0)
                path = found.group("path")
                raise ReloadError(
                    f"{self.server_name} reloaded on an edit of "
                    f"{_edited_path(path, pending)} it should ignore: {line!r}",
                    server=self.server_name, exit_code=handle.exit_code,
                    log_tail=self.log_tail())
            if handle.exit_code is not None:
                raise ReloadError(
                    f"{self.server_name} exited ({describe_exit(handle.exit_code)}) after an "
                    f"edit it should ignore\n{self._log_section()}",
                    server=self.server_name, exit_code=handle.exit_code,
                    log_tail=self.log_tail())
            if time.monotonic() >= deadline:
                return
            time.sleep(0.02)

    def _settle(self, outcome: Outcome, status: int | None, detected: re.Match[str] | None,
                pending: _Pending) -> ReloadResult:
        exit_code = None
        if outcome is Outcome.DEAD:
            # a DEAD server is final: reap it and kill what is left of its tree now
            exit_code = self.handle.stop()
        result = ReloadResult(
            outcome=outcome, status=status, exit_code=exit_code, restarts=self.restarts,
            seconds=time.monotonic() - pending.started,
            detected=_edited_path(detected.group("path"), pending) if detected else None,
        )
        self._broken = outcome is Outcome.SERVING_ERRORS
        self._pending = None
        self.results.append(result)
        return result

    def _log_section(self) -> str:
        handle = self.handle
        tail = logs.tail(handle.read_log(), 30)
        return f"command: {handle.command}\nlog ({handle.log_path}), last lines:\n{tail}"


def _edited_path(logged: str, pending: _Pending) -> str:
    """The path a reloader named, with a rename's temporary source mapped to its target."""
    target = pending.temps.get(os.path.basename(logged))
    return str(target) if target is not None else logged


def count_restarts(profile: ReloadProfile, log: str) -> int:
    """Changes noticed that were followed by a restart. Werkzeug's watchdog reloader logs
    one "Detected change" per file event (two edited files, or an edit and a touch, give
    two lines for one restart), so a detection counts only when the restart line follows
    it before the next detection."""
    found = list(profile.detected.finditer(log))
    count = 0
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(log)
        if profile.restarted.search(log, match.end(), end) is not None:
            count += 1
    return count


def watchdog_hint(log: str) -> str | None:
    """Why Werkzeug's watchdog reloader can never see an edit, when that is the case.

    Werkzeug (3.1.9 measured) gives watchdog the patterns ``*.py``, ``*.pyc`` and
    ``*.zip`` and expects them to match absolute paths, as ``PurePath.match`` did up to
    watchdog 6. Watchdog 7 matches whole paths (``full_match``), where ``*`` does not
    cross ``/``: no event ever passes, and the server silently never reloads (measured:
    no "Detected change" in 20 s, with watchdog 6 the same edit reloads in ~0.2 s).
    Werkzeug picks watchdog whenever it is importable, so installing it breaks the
    default ``flask run --reload`` too. Checked in this interpreter: the server runs in
    the same environment.
    """
    if "Restarting with watchdog" not in log:
        return None
    try:
        from importlib.metadata import version

        from watchdog.utils.patterns import match_any_paths
    except ImportError:
        return None
    if match_any_paths([os.path.join(os.sep, "project", "app.py")],
                       included_patterns=["*.py"], case_sensitive=True):
        return None
    return (f"the reloader is Werkzeug's watchdog reloader and the installed watchdog "
            f"{version('watchdog')} matches its '*.py' pattern against whole paths only, so "
            "it never sees an edit; install 'watchdog<7' or pass reloader_type='stat'")


def reloader_options(profile: ReloadProfile, *, debug: bool | None, args: Sequence[str],
                     env: dict[str, str], reload_args: Sequence[str],
                     reload_env: dict[str, str]) -> ServerOptions:
    """The ServerOptions that start ``profile``'s server with its reloader on."""
    merged = {**env, **reload_env}
    return ServerOptions(debug=debug, reload=profile.reload_option,
                         extra_args=(*reload_args, *args),
                         env=tuple(sorted(merged.items())))


__all__ = [
    "FAST_INTERVAL", "Outcome", "ReloadResult", "ReloadError", "ReloaderUnavailable",
    "ReloadProfile", "profiles", "profile_for", "ReloaderConfig", "render_reloader",
    "copy_project", "relocate", "write_bumped", "insert_statement", "ReloadingServer",
    "default_starter", "fetch", "reloader_options",
]

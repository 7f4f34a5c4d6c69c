"""A reload-capable server on a copy of the app: edit files, wait, classify the outcome."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.lifecycle import logs
from pytest_flaskserve.lifecycle.process import describe_exit
from pytest_flaskserve.lifecycle.supervisor import ServerHandle
from pytest_flaskserve.reloader.config import profile_for
from pytest_flaskserve.reloader.edits import (
    MISSING_MODULE,
    SYNTAX_ERROR,
    PendingEdits,
    bump_mtime,
    edited_path,
    insert_statement,
)
from pytest_flaskserve.reloader.outcome import (
    Outcome,
    ReloadError,
    ReloadResult,
    count_restarts,
    watchdog_hint,
)
from pytest_flaskserve.reloader.starting import Starter, fetch
from pytest_flaskserve.servers import ServerOptions
from pytest_flaskserve.servers.reloading import ReloadProfile

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


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
        self._pending: PendingEdits | None = None
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
        return fetch(handle.host, handle.port, path or self.path, timeout, ca_path=handle.ca_path)

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

    def _pending_edit(self) -> PendingEdits:
        if self._pending is None:
            mark = len(self.read_log()) if self._handle is not None else 0
            self._pending = PendingEdits(started=time.monotonic(), mark=mark)
        return self._pending

    def _write(self, target: Path, data: bytes) -> None:
        if target not in self._originals:
            self._originals[target] = target.read_bytes() if target.exists() else None
        self._pending_edit().write(target, data)

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
                                  timeout=max(0.2, min(5.0, deadline - time.monotonic())),
                                  ca_path=handle.ca_path)
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
                    f"{edited_path(path, pending)} it should ignore: {line!r}",
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
                pending: PendingEdits) -> ReloadResult:
        exit_code = None
        if outcome is Outcome.DEAD:
            # a DEAD server is final: reap it and kill what is left of its tree now
            exit_code = self.handle.stop()
        result = ReloadResult(
            outcome=outcome, status=status, exit_code=exit_code, restarts=self.restarts,
            seconds=time.monotonic() - pending.started,
            detected=edited_path(detected.group("path"), pending) if detected else None,
        )
        self._broken = outcome is Outcome.SERVING_ERRORS
        self._pending = None
        self.results.append(result)
        return result

    def _log_section(self) -> str:
        handle = self.handle
        tail = logs.tail(handle.read_log(), 30)
        return f"command: {handle.command}\nlog ({handle.log_path}), last lines:\n{tail}"

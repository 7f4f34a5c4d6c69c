"""What a server did after an edit: :class:`Outcome`, :class:`ReloadResult`, the errors,
and what its log says (restarts counted, why a watchdog reloader never notices)."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

from pytest_flaskserve.errors import FlaskServeError, hide_own_errors
from pytest_flaskserve.lifecycle.process import describe_exit
from pytest_flaskserve.servers.reloading import ReloadProfile

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


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

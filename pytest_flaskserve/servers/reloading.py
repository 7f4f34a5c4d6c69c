"""What a server's reloader looks like from outside: the profile a launcher names."""

from __future__ import annotations

import re
from dataclasses import dataclass

WERKZEUG_DETECTED = re.compile(r"Detected change in (?P<q>['\"])(?P<path>.+?)(?P=q), reloading")
WERKZEUG_RESTARTED = re.compile(r" \* Restarting with \S+")


@dataclass(frozen=True)
class ReloadProfile:
    """How one server reloads, as seen from its log and its command line."""

    server: str
    #: the line that says a change was noticed; group ``path`` is the file it names
    detected: re.Pattern[str]
    #: after ``detected``: the old code no longer serves (a new process is starting)
    restarted: re.Pattern[str]
    #: in the log once the reloader runs; its absence means there is nothing to test
    armed: re.Pattern[str]
    #: what to do when ``armed`` never shows
    enable_hint: str
    #: ``armed`` is logged before the server first answers HTTP (else it may lag a little)
    armed_before_ready: bool = True
    #: Werkzeug's run_simple reloader (interval, type, extra files, exclude patterns)
    werkzeug: bool = False
    #: extra files and exclude patterns go on the command line (Flask's CLI has the flags;
    #: the interval and the type never do), not through the boot hook
    werkzeug_cli: bool = False
    #: reloader types the server accepts, and the module each needs (None: built in)
    types: tuple[tuple[str, str | None], ...] = ()
    #: how often it polls when the interval cannot be changed (seconds)
    poll_interval: float = 1.0
    #: its command-line flag for one extra file, if it has one
    extra_file_flag: str | None = None
    #: its command-line flag for the reloader type (when it is not Werkzeug's)
    type_flag: str | None = None
    #: how ServerOptions asks for the reloader (app-run: the script's own arguments)
    reload_option: bool | None = True


#: the reloader types Werkzeug's run_simple accepts, and the module each needs
WERKZEUG_TYPES: tuple[tuple[str, str | None], ...] = (
    ("auto", None), ("stat", None), ("watchdog", "watchdog"))

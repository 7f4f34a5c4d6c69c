"""Runs inside each server process that coverage measures (listed as a coverage plugin in
the configuration :mod:`pytest_flaskserve.coverage_support` hands to servers).

A coverage plugin module is imported by coverage itself when it starts in a process, so
this code runs in exactly the processes that are measured, before the server imports
anything, with nothing on ``PYTHONPATH`` and no change to the user's app. It registers no
coverage feature; it fixes one way a server's data gets lost:

Werkzeug's reloader (``flask run --reload``, ``app.run(debug=True)``) is a parent that
runs the serving child with ``subprocess.call``. On SIGTERM the parent exits, and
``subprocess.call`` SIGKILLs the child on the way out, before the child (which got the
same SIGTERM from the process group) has saved its data. Under coverage the parent
ignores SIGTERM while it waits, so the child saves and exits first and the parent then
exits with the child's code.
"""

from __future__ import annotations

import signal
from types import ModuleType
from typing import Any

from pytest_flaskserve._child.after_import import after_import

RELOADER_MODULE = "werkzeug._reloader"


def _parent_waits_for_child(module: ModuleType) -> None:
    loop = getattr(module, "ReloaderLoop", None)
    original = getattr(loop, "restart_with_reloader", None)
    if loop is None or original is None:
        return  # another Werkzeug: leave it alone

    def restart_with_reloader(self: Any) -> int:
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        return original(self)  # type: ignore[no-any-return]

    loop.restart_with_reloader = restart_with_reloader


def coverage_init(reg: Any, options: Any) -> None:
    """coverage's plugin entry point: install the fix, register nothing."""
    after_import(RELOADER_MODULE, _parent_waits_for_child)

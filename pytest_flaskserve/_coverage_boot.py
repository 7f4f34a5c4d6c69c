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

import importlib.abc
import importlib.machinery
import importlib.util
import signal
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

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


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` once ``name`` has been imported (once, then steps aside)."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module
        then = self.then

        def exec_then_patch(module: ModuleType) -> None:
            exec_module(module)
            then(module)

        loader.exec_module = exec_then_patch  # type: ignore[method-assign]
        return spec


def coverage_init(reg: Any, options: Any) -> None:
    """coverage's plugin entry point: install the fix, register nothing."""
    if RELOADER_MODULE in sys.modules:
        _parent_waits_for_child(sys.modules[RELOADER_MODULE])
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(RELOADER_MODULE, _parent_waits_for_child))

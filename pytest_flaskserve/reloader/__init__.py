"""Reloader resilience: edit a copy of the app under a reloading server and classify what
happened (:class:`Outcome`). No pytest here: the ``flask_reloader`` fixture is a thin
factory over :class:`ReloadingServer`.

Modules: ``outcome`` (what happened, the errors), ``config`` (profiles and reloader
options), ``project_copy`` (the scratch copy), ``edits`` (file edits), ``starting``
(start and probe), ``server`` (:class:`ReloadingServer`)."""

from pytest_flaskserve.reloader.config import (
    FAST_INTERVAL,
    ReloaderConfig,
    profile_for,
    profiles,
    reloader_options,
    render_reloader,
)
from pytest_flaskserve.reloader.edits import insert_statement, write_bumped
from pytest_flaskserve.reloader.outcome import (
    Outcome,
    ReloadError,
    ReloaderUnavailable,
    ReloadResult,
)
from pytest_flaskserve.reloader.project_copy import copy_project, relocate
from pytest_flaskserve.reloader.server import ReloadingServer
from pytest_flaskserve.reloader.starting import default_starter, fetch
from pytest_flaskserve.servers.reloading import ReloadProfile

__all__ = [
    "FAST_INTERVAL", "Outcome", "ReloadResult", "ReloadError", "ReloaderUnavailable",
    "ReloadProfile", "PROFILES", "profiles", "profile_for", "ReloaderConfig", "render_reloader",
    "copy_project", "relocate", "write_bumped", "insert_statement", "ReloadingServer",
    "default_starter", "fetch", "reloader_options",
]


def __getattr__(name: str) -> object:
    # PROFILES was a table here; the launchers name their profiles now
    if name == "PROFILES":
        return profiles()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

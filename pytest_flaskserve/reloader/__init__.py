"""Reloader resilience: edit a copy of the app under a reloading server and classify what
happened (:class:`Outcome`). No pytest here: the ``flask_reloader`` fixture is a thin
factory over :class:`ReloadingServer`."""

from pytest_flaskserve.reloader.server import (
    FAST_INTERVAL,
    Outcome,
    ReloaderConfig,
    ReloadError,
    ReloaderUnavailable,
    ReloadingServer,
    ReloadProfile,
    ReloadResult,
    copy_project,
    default_starter,
    fetch,
    insert_statement,
    profile_for,
    profiles,
    reloader_options,
    relocate,
    render_reloader,
    write_bumped,
)

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

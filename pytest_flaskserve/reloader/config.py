"""Which reloader a server has and how to switch it on: its profile, the options a test
sets (:class:`ReloaderConfig`) and the arguments and environment that give them."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pytest_flaskserve import servers
from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.reloader.outcome import ReloaderUnavailable
from pytest_flaskserve.servers import ServerOptions
from pytest_flaskserve.servers.reloading import ReloadProfile

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

#: Werkzeug's reloader polls this often under the fixture (its default is 1 s).
FAST_INTERVAL = 0.1


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


def reloader_options(profile: ReloadProfile, *, debug: bool | None, args: Sequence[str],
                     env: dict[str, str], reload_args: Sequence[str],
                     reload_env: dict[str, str]) -> ServerOptions:
    """The ServerOptions that start ``profile``'s server with its reloader on."""
    merged = {**env, **reload_env}
    return ServerOptions(debug=debug, reload=profile.reload_option,
                         extra_args=(*reload_args, *args),
                         env=tuple(sorted(merged.items())))

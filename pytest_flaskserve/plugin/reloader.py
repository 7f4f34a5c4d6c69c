"""The ``flask_reloader`` fixture's factory: a reload-capable server on a copy of the app.

A thin factory over :mod:`pytest_flaskserve.reloader`: it copies the app's import root
under pytest's temporary directory, starts the server through the session runtime (so
it is recorded, its log is attached to a failure, and it is stopped with the test), and
turns "this server or reloader type cannot reload here" into a skip with the reason.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import ResolvedApp, parse_spec
from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.lifecycle.supervisor import ServerHandle
from pytest_flaskserve.plugin.fixtures import HANDLES_KEY
from pytest_flaskserve.plugin.session import Runtime
from pytest_flaskserve.reloader import (
    FAST_INTERVAL,
    ReloaderConfig,
    ReloaderUnavailable,
    ReloadingServer,
    copy_project,
    profile_for,
    reloader_options,
    relocate,
    render_reloader,
)
from pytest_flaskserve.servers import ServerOptions

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


#: below this a Werkzeug reloader polls so often that it takes a core to itself
MIN_INTERVAL = 0.01


def _check_reloader_arguments(interval: object, extra_files: object, exclude_patterns: object,
                              startup_timeout: object) -> None:
    """Bad values are usage errors here, not a server that crashes after a false SERVING
    (a negative interval) or a string split into one path per character."""
    if interval not in ("auto", None) and (
            isinstance(interval, bool) or not isinstance(interval, (int, float))
            or not math.isfinite(interval) or interval < MIN_INTERVAL):
        raise UsageError(f"flask_reloader(interval={interval!r}): use a number of seconds of "
                         f"at least {MIN_INTERVAL}, 'auto' (fast where the server allows it) "
                         "or None (the server's own)")
    for name, value in (("extra_files", extra_files), ("exclude_patterns", exclude_patterns)):
        if not isinstance(value, (list, tuple, set)) or not all(isinstance(v, str) for v in value):
            example = f", e.g. {name}=[{value!r}]" if isinstance(value, str) else ""
            raise UsageError(f"flask_reloader({name}={value!r}): give a list of strings{example}")
    if startup_timeout is not None and (
            isinstance(startup_timeout, bool) or not isinstance(startup_timeout, (int, float))
            or not math.isfinite(startup_timeout) or startup_timeout <= 0):
        raise UsageError(f"flask_reloader(startup_timeout={startup_timeout!r}): use a positive "
                         "number of seconds")


class ReloaderFactory:
    """``flask_reloader(server="flask-run", app=None, **options)`` -> :class:`ReloadingServer`."""

    def __init__(self, rt: Runtime, node: pytest.Item, tmp: pytest.TempPathFactory) -> None:
        self._rt = rt
        self._node = node
        self._tmp = tmp
        self.servers: list[ReloadingServer] = []

    def __call__(
        self,
        server: str = "flask-run",
        app: str | None = None,
        *,
        debug: bool | None = None,
        interval: float | Literal["auto"] | None = "auto",
        reloader_type: str | None = None,
        extra_files: Sequence[str] = (),
        exclude_patterns: Sequence[str] = (),
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        path: str = "/",
        ignore: Sequence[str] = (),
        start: bool = True,
        startup_timeout: float | None = None,
    ) -> ReloadingServer:
        """Copy the app (default: the test's app), start ``server`` on the copy with its
        reloader on, and return the handle once it serves.

        ``debug`` adds ``--debug`` (flask-run) or ``FLASK_DEBUG``; app-run keeps the
        script's own ``app.run(...)`` arguments. ``interval``: seconds between polls
        (Werkzeug: flask-run, app-run); ``"auto"`` polls every 0.1 s where the server
        allows it and keeps the server's own interval elsewhere, ``None`` keeps the
        server's own (1 s) everywhere.
        ``reloader_type``: ``stat``/``watchdog`` (Werkzeug), ``poll``/``inotify``
        (Gunicorn). ``extra_files`` are relative to the copy; ``exclude_patterns`` are
        Werkzeug's fnmatch patterns of absolute paths (``"*/helpers.py"``). ``path`` is
        what the outcome probe requests. ``start=False`` returns the handle unstarted, to
        break the copy before :meth:`ReloadingServer.start`. ``ignore``: more names left
        out of the copy.
        """
        rt = self._rt
        launcher = servers.get(server)
        why = launcher.unavailable()
        if why:
            pytest.skip(why)
        try:
            profile = profile_for(server)
        except ReloaderUnavailable as exc:
            pytest.skip(str(exc))
        _check_reloader_arguments(interval, extra_files, exclude_patterns, startup_timeout)
        spec = (rt.spec_for(self._node) if app is None
                else parse_spec(app, rt.rootdir, source="flask_reloader"))
        original = rt.resolve(spec)
        explicit = {name for name, given in (
            ("interval", interval != "auto"), ("exclude_patterns", bool(exclude_patterns)),
        ) if given}
        config = ReloaderConfig(
            interval=FAST_INTERVAL if interval == "auto" else interval,
            reloader_type=reloader_type, extra_files=tuple(extra_files),
            exclude_patterns=tuple(exclude_patterns),
        )
        scratch = self._tmp.mktemp(f"reloader-{server}", numbered=True)
        root = copy_project(spec.path_entry, scratch / "project", ignore)
        target = relocate(original, spec.path_entry, root)
        unsupported = launcher.unsupported(target)
        if unsupported:
            raise UsageError(f"{server} cannot run {original.describe()}: {unsupported}")
        try:
            reload_args, reload_env = render_reloader(
                profile, config, root, protect=(rt.rootdir, spec.path_entry, _PACKAGE_DIR),
                explicit=explicit)
        except ReloaderUnavailable as exc:
            pytest.skip(str(exc))
        options = reloader_options(profile, debug=debug, args=args, env=dict(env or {}),
                                   reload_args=reload_args, reload_env=reload_env)
        node = self._node
        # HTTPS as the test's other servers are (--flask-tls, flask_options(tls=True))
        options = dataclasses.replace(options, tls=rt.options_for(node, server).tls)
        start_config = rt.start_config(ready_path=path, startup_timeout=startup_timeout)

        def starter(resolved: ResolvedApp, opts: ServerOptions) -> ServerHandle:
            handle = rt.start(server, resolved, opts, start_config)
            node.stash.setdefault(HANDLES_KEY, []).append(handle)
            return handle

        poll = config.interval if profile.werkzeug else None
        handle = ReloadingServer(server=server, app=target, options=options, root=root,
                                 starter=starter, path=path, profile=profile,
                                 poll_interval=poll)
        self.servers.append(handle)
        if start:
            handle.start()
        return handle

    def close(self) -> None:
        for handle in reversed(self.servers):
            handle.stop()


__all__ = ["ReloaderFactory"]

"""The one loader of :data:`~pytest_flaskserve.plugin.options.OPTIONS`: command line >
environment > ini > default, each value checked (:mod:`.checks`) and its source remembered
(the header shows it). Imported when the run sets anything, else when a test first asks
for a server. The app spec follows Flask's own order instead: ``--flask-app``, the
``flask_app`` ini key, ``FLASK_APP``, then ``wsgi.py`` / ``app.py`` in the rootdir.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from pytest_flaskserve.appspec import default_spec
from pytest_flaskserve.errors import UsageError
from pytest_flaskserve.plugin import checks
from pytest_flaskserve.plugin.fixtures import SETTINGS_KEY, runtime
from pytest_flaskserve.plugin.options import (
    APP_ENV,
    APP_FLAG,
    APP_INI,
    OPTIONS,
    command_line_and_ini,
    lookup,
)


class Settings(NamedTuple):
    """The plugin's settings for one run; ``sources`` says where each one came from.

    (A named tuple for the reason :class:`~pytest_flaskserve.plugin.options.Option` is.)
    """

    app: str | None
    app_source: str
    app_base: str
    servers: tuple[str, ...] | None
    startup_timeout: float
    stop_timeout: float
    ready_path: str
    host: str
    scope: str
    workers: int | None
    threads: int | None
    worker_class: str | None
    debug: bool
    load_dotenv: bool
    #: servers start warm where exact (False with --flask-cold)
    warm: bool
    cold: bool
    tls: bool
    server_args: tuple[tuple[str, tuple[str, ...]], ...]
    proxy: str | None
    nginx_conf: Path | None
    smoke: bool
    smoke_workers: int | None
    smoke_exclude: tuple[str, ...]
    #: None: flask_parity's own default list
    parity_ignore_headers: tuple[str, ...] | None
    report: Path | None
    #: deployment files (absolute paths) whose web servers the tests run on
    deploy: tuple[str, ...]
    sources: Mapping[str, str]


def load_settings(
    cli: Mapping[str, Any],
    ini: Callable[[str], Any],
    env: Mapping[str, str],
    *,
    invocation_dir: str,
    ini_dir: str,
    rootdir: str,
    default_app: Callable[[str], str | None],
) -> Settings:
    """Combine command line, environment and ini into :class:`Settings` (or UsageError)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        raw, source = lookup(opt, cli, ini, env)
        sources[opt.dest] = source
        name = opt.flag if source == "default" else source
        if raw is None:
            raw = opt.default
        if raw is None and opt.action == "append":
            raw = []
        if raw is None:
            values[opt.dest] = None
            continue
        if opt.action == "append" and isinstance(raw, str):
            raw = raw.split(os.pathsep)  # an environment variable holds the whole list
        base = ini_dir if source.startswith("ini ") else invocation_dir
        if opt.is_path and isinstance(raw, list):
            raw = [os.path.join(base, item) for item in raw if item.strip()]
        elif opt.is_path and str(raw).strip():
            raw = os.path.join(base, raw)
        values[opt.dest] = getattr(checks, opt.check)(name, raw)

    app: str | None = cli.get("app")
    app_source, app_base = APP_FLAG, invocation_dir
    if not app:
        ini_app = ini(APP_INI)
        if ini_app:
            app, app_source, app_base = str(ini_app), f"ini {APP_INI}", ini_dir
        elif env.get(APP_ENV):
            app, app_source, app_base = env[APP_ENV], APP_ENV, invocation_dir
        elif values.get("load_dotenv") and (
                in_dotenv := _dotenv_app(invocation_dir, env)):
            app, app_source, app_base = in_dotenv, f"{APP_ENV} in .flaskenv/.env", invocation_dir
        else:
            app = default_app(rootdir)
            app_source, app_base = f"{app} in the rootdir (Flask's default)", rootdir
            sources["app"] = "default"
    sources.setdefault("app", app_source)
    if values["cold"]:
        if values["warm"] and sources["warm"] != "default":
            raise UsageError(f"{sources['warm']} and {sources['cold']} contradict each "
                             "other: keep one (warm starts are the default)")
        values["warm"] = False
    return Settings(app=app, app_source=app_source, app_base=app_base, sources=sources, **values)


def _dotenv_app(directory: str, env: Mapping[str, str]) -> str | None:
    from pytest_flaskserve.appspec.dotenv import dotenv_env

    return dotenv_env(directory, env).get(APP_ENV)


def from_config(config: pytest.Config) -> Settings:
    """:func:`load_settings` for this pytest run (raises UsageError)."""
    cli, ini = command_line_and_ini(config)
    rootdir = str(config.rootpath)
    return load_settings(
        cli, ini, os.environ, invocation_dir=str(config.invocation_params.dir),
        ini_dir=str(config.inipath.parent) if config.inipath else rootdir,
        rootdir=rootdir, default_app=default_spec,
    )


def configure(config: pytest.Config) -> Settings:
    """Load this run's settings into its stash, with the deployment files they name, and
    check every server they name (raises UsageError)."""
    settings = config.stash[SETTINGS_KEY] = from_config(config)
    if settings.deploy:
        # deployment files first: --flask-servers and --flask-server-args may name their ids
        from pytest_flaskserve.plugin import deploy

        deploy.load_settings(runtime(config))
    named = [*(settings.servers or ()), *(name for name, _ in settings.server_args)]
    if named:
        from pytest_flaskserve import servers

        for name in named:
            servers.get(name)
        source = settings.sources.get("server_args", "--flask-server-args")
        for name, args in settings.server_args:
            refused = servers.get(name).refuses_server_args()
            if refused:
                raise UsageError(f"{source}: {name}={shlex.join(args)}: {refused}")
    return settings

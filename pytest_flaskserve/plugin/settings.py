"""The one loader of :data:`~pytest_flaskserve.plugin.options.OPTIONS`: command line >
environment > ini > default, each value checked and its source remembered (the header
shows it). The app spec follows Flask's own order instead: ``--flask-app``, the
``flask_app`` ini key, ``FLASK_APP``, then ``wsgi.py`` / ``app.py`` in the rootdir.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from pytest_flaskserve.appspec import default_spec
from pytest_flaskserve.errors import UsageError
from pytest_flaskserve.plugin.options import OPTIONS, Option

APP_FLAG, APP_INI, APP_ENV = "--flask-app", "flask_app", "FLASK_APP"


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


def lookup(opt: Option, cli: Mapping[str, Any], ini: Callable[[str], Any],
           env: Mapping[str, str]) -> tuple[Any, str]:
    """One option's raw value and where it came from: command line > environment > ini.

    Returns ``(None, "default")`` when none of them sets it.
    """
    raw: Any = cli.get(opt.dest)
    if raw not in (None, False, []):
        return raw, opt.flag
    if opt.env and env.get(opt.env, "") != "":
        return env[opt.env], opt.env
    value = ini(opt.ini)
    if value not in (None, "", [], False):
        return value, f"ini {opt.ini}"
    return None, "default"


def add_options(parser: pytest.Parser) -> None:
    """Register every option's flag (in the ``flaskserve`` group) and its ini twin."""
    group = parser.getgroup("flaskserve", "pytest-flaskserve: run the app under real servers")
    group.addoption(APP_FLAG, dest="flaskserve_app", default=None, metavar="SPEC",
                    help="Flask app to serve, in flask --app syntax (module:app, "
                         "module:create_app('dev'), path/to/app.py, ...); "
                         f"ini {APP_INI}, env {APP_ENV}")
    parser.addini(APP_INI, "Flask app spec to serve (same syntax as flask --app)")
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {
            "dest": f"flaskserve_{opt.dest}",
            "help": f"{opt.help}; ini {opt.ini}" + (f", env {opt.env}" if opt.env else "")
                    + (f" (default {opt.default})" if opt.default and opt.action == "store"
                       else ""),
        }
        if opt.action == "store_true":
            kwargs.update(action="store_true", default=False)
        else:
            kwargs.update(action=opt.action, default=None, metavar=opt.metavar)
        group.addoption(opt.flag, **kwargs)
        parser.addini(opt.ini, opt.help, type=opt.ini_type,  # type: ignore[arg-type]
                      default=False if opt.ini_type == "bool" else None)


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
        values[opt.dest] = opt.convert(name, raw)

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
    cli = {opt.dest: getattr(config.option, f"flaskserve_{opt.dest}", None) for opt in OPTIONS}
    cli["app"] = config.option.flaskserve_app
    rootdir = str(config.rootpath)

    def ini(name: str) -> Any:
        try:
            return config.getini(name)
        except ValueError:
            return None

    return load_settings(
        cli, ini, os.environ, invocation_dir=str(config.invocation_params.dir),
        ini_dir=str(config.inipath.parent) if config.inipath else rootdir,
        rootdir=rootdir, default_app=default_spec,
    )

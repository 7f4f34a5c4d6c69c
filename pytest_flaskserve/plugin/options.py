"""Every option once: its flag, ini key, environment variable, type and default.

:func:`load_settings` builds one frozen :class:`Settings` with the precedence command
line > environment > ini > default, remembering where each value came from (the report
header shows it). The app spec follows Flask's own order instead: ``--flask-app``, the
``flask_app`` ini key, ``FLASK_APP``, then ``wsgi.py`` / ``app.py`` in the rootdir.
Nothing here imports Flask or a server.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_flaskserve.appspec.dotenv import dotenv_env
from pytest_flaskserve.errors import UsageError

SCOPES = ("session", "module", "function")
#: upper bound for worker and thread counts (each is a process or a thread on this machine)
MAX_COUNT = 1024


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number of seconds; use e.g. {name}=30") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{name}={raw!r} must be a positive number of seconds, e.g. {name}=30")
    return value


def _positive_int(name: str, raw: str) -> int | None:
    if raw in ("", None):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a whole number; use e.g. {name}=2") from None
    if value < 1:
        raise UsageError(f"{name}={raw!r} must be 1 or more")
    if value > MAX_COUNT:
        raise UsageError(f"{name}={raw!r} is more than a test server can use; use at most "
                         f"{MAX_COUNT}")
    return value


def _bool(name: str, raw: str | bool) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"{name}={raw!r} is not a boolean; use true or false")


def _scope(name: str, raw: str) -> str:
    if raw not in SCOPES:
        raise UsageError(f"{name}={raw!r} is not a scope; use one of {', '.join(SCOPES)}")
    return raw


def _servers(name: str, raw: str) -> tuple[str, ...]:
    items = tuple(s.strip() for s in raw.replace(" ", ",").split(",") if s.strip())
    if not items:
        raise UsageError(f"{name}={raw!r} names no server; use e.g. {name}=gunicorn,waitress")
    return tuple(dict.fromkeys(items))  # a name given twice runs once


def _path(name: str, raw: str) -> str:
    if not raw.startswith("/"):
        raise UsageError(f"{name}={raw!r} must be a URL path starting with '/', e.g. /health")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in raw):
        raise UsageError(f"{name}={raw!r} contains a space or a control character; "
                         "percent-encode it, e.g. /a%20b")
    return raw


def _host(name: str, raw: str) -> str:
    """An address every server can bind: an IP literal, or a name resolved to its first
    address here (Granian, for one, takes only IP literals)."""
    import ipaddress
    import socket

    host = raw.strip().strip("[]")
    if not host:
        raise UsageError(f"{name} is empty; use 127.0.0.1")
    not_here = UsageError(f"{name}={raw!r} is not an address of this machine; use 127.0.0.1 "
                          "(or ::1, or 0.0.0.0 to listen on every interface)")
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            infos = []
        if not infos:
            raise not_here from None
        address = str(infos[0][4][0])
    # one bind now says what every server would find out at each start
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except OSError:
        raise not_here from None
    return address


def _server_args(name: str, raw: str | list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    lines = raw if isinstance(raw, list) else [raw]
    out: list[tuple[str, tuple[str, ...]]] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        server, sep, args = line.partition("=")
        if not sep or not server.strip():
            raise UsageError(
                f"{name} {line!r} must look like SERVER=ARGS, e.g. 'gunicorn=--timeout 5'"
            )
        try:
            out.append((server.strip(), tuple(shlex.split(args))))
        except ValueError as exc:
            raise UsageError(f"{name} {line!r}: {exc}") from None
    return tuple(out)


def _text(name: str, raw: str) -> str:
    return raw


def _worker_class(name: str, raw: str) -> str:
    from pytest_flaskserve import servers

    servers.check_worker_class(f"{name}={raw!r}", raw)
    return raw


@dataclass(frozen=True)
class Option:
    """One setting: where it is read from and how it is checked."""

    dest: str
    flag: str
    ini: str
    env: str | None
    help: str
    convert: Callable[[str, Any], Any]
    default: str | None = None
    action: str = "store"
    ini_type: str = "string"
    metavar: str | None = None


OPTIONS: tuple[Option, ...] = (
    Option("servers", "--flask-servers", "flask_servers", "FLASKSERVE_SERVERS",
           "comma-separated servers to run tests on (default: every available one)",
           _servers, metavar="NAMES"),
    Option("startup_timeout", "--flask-startup-timeout", "flask_startup_timeout",
           "FLASKSERVE_STARTUP_TIMEOUT",
           "seconds a server may take to answer HTTP (also bounds the app's import)",
           _positive_float, default="30", metavar="SECONDS"),
    Option("stop_timeout", "--flask-stop-timeout", "flask_stop_timeout",
           "FLASKSERVE_STOP_TIMEOUT",
           "seconds a server gets after its stop signal before it is killed",
           _positive_float, default="5", metavar="SECONDS"),
    Option("ready_path", "--flask-ready-path", "flask_ready_path", "FLASKSERVE_READY_PATH",
           "URL path probed until the server answers HTTP", _path, default="/",
           metavar="PATH"),
    Option("host", "--flask-host", "flask_host", "FLASKSERVE_HOST",
           "address servers bind to", _host, default="127.0.0.1", metavar="ADDR"),
    Option("scope", "--flask-scope", "flask_scope", "FLASKSERVE_SCOPE",
           "how long a server lives: session (shared), module or function (fresh)",
           _scope, default="session", metavar="SCOPE"),
    Option("workers", "--flask-workers", "flask_workers", "FLASKSERVE_WORKERS",
           "worker processes for Gunicorn and uWSGI (default 1)", _positive_int,
           metavar="N"),
    Option("threads", "--flask-threads", "flask_threads", "FLASKSERVE_THREADS",
           "threads per worker (Gunicorn, Waitress, uWSGI)", _positive_int, metavar="N"),
    Option("worker_class", "--flask-worker-class", "flask_worker_class",
           "FLASKSERVE_WORKER_CLASS", "Gunicorn worker class (sync, gthread, gevent...)",
           _worker_class, metavar="CLASS"),
    Option("debug", "--flask-debug", "flask_debug", "FLASKSERVE_DEBUG",
           "run the app in debug mode (flask run --debug, FLASK_DEBUG=1)", _bool,
           default="false", action="store_true", ini_type="string"),
    Option("load_dotenv", "--flask-load-dotenv", "flask_load_dotenv", "FLASKSERVE_LOAD_DOTENV",
           "read .flaskenv/.env as flask run does (python-dotenv) and give the values to every "
           "server and FLASK_APP to the plugin (off: no server reads them)",
           _bool, default="false", action="store_true", ini_type="string"),
    Option("warm", "--flask-warm", "flask_warm", "FLASKSERVE_WARM",
           "start servers from a pre-warmed launcher process (Flask and the servers already "
           "imported, never your app): ~20-30 ms starts instead of ~130-170 ms",
           _bool, default="false", action="store_true", ini_type="string"),
    Option("server_args", "--flask-server-args", "flask_server_args", None,
           "extra arguments for one server, SERVER=ARGS (repeatable), e.g. 'gunicorn=--timeout 5'",
           _server_args, action="append", ini_type="linelist", metavar="SERVER=ARGS"),
)

APP_OPTION = ("--flask-app", "flask_app", "FLASK_APP")


@dataclass(frozen=True)
class Settings:
    """The plugin's settings for one run; ``sources`` says where each one came from."""

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
    warm: bool
    server_args: tuple[tuple[str, tuple[str, ...]], ...]
    sources: Mapping[str, str] = field(default_factory=dict)


def lookup(opt: Option, cli: Mapping[str, Any], ini: Callable[[str], Any],
           env: Mapping[str, str]) -> tuple[Any, str]:
    """One option's raw value and where it came from: command line > environment > ini.

    Returns ``(None, "default")`` when none of them sets it. Shared by every plugin module
    that declares options, so precedence is the same everywhere.
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


def add_options(parser: Any, options: tuple[Option, ...]) -> None:
    """Register each option's flag (in the ``flaskserve`` group) and its ini twin."""
    group = parser.getgroup("flaskserve")
    for opt in options:
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
        parser.addini(opt.ini, opt.help, type=opt.ini_type,
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
        if raw is None:
            raw = opt.default
        if opt.action == "append" and isinstance(raw, list) and source == opt.flag:
            raw = list(raw)
        if raw is None and opt.action == "append":
            raw = []
        values[opt.dest] = None if raw is None else opt.convert(source if source != "default" else opt.flag, raw)
        sources[opt.dest] = source

    app: str | None = cli.get("app")
    app_source, app_base = "--flask-app", invocation_dir
    if not app:
        ini_app = ini("flask_app")
        if ini_app:
            app, app_source, app_base = str(ini_app), "ini flask_app", ini_dir
        elif env.get("FLASK_APP"):
            app, app_source, app_base = env["FLASK_APP"], "FLASK_APP", invocation_dir
        elif values.get("load_dotenv") and (
                in_dotenv := dotenv_env(invocation_dir, env).get("FLASK_APP")):
            app, app_source, app_base = in_dotenv, "FLASK_APP in .flaskenv/.env", invocation_dir
        else:
            app = default_app(rootdir)
            app_source, app_base = f"{app} in the rootdir (Flask's default)", rootdir
            sources["app"] = "default"
    sources.setdefault("app", app_source)
    return Settings(app=app, app_source=app_source, app_base=app_base, sources=sources, **values)

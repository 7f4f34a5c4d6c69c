"""The plugin's tables: every option once (its flag, ini key, environment variable,
check and default; loaded by :mod:`settings`), and the markers. Imports no Flask or server.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from pytest_flaskserve.errors import UsageError

SCOPES = ("session", "module", "function")
#: upper bound for worker and thread counts (each is a process or a thread on this machine)
MAX_COUNT = 1024
#: worker processes the smoke suite gives multi-process servers unless told otherwise
SMOKE_WORKERS = 3


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


def _worker_class(name: str, raw: str) -> str:
    from pytest_flaskserve import servers

    servers.check_worker_class(f"{name}={raw!r}", raw)
    return raw


def _patterns(name: str, raw: str | list[str]) -> tuple[str, ...]:
    lines = raw if isinstance(raw, list) else [raw]
    out = tuple(p.strip() for line in lines for p in line.split(",") if p.strip())
    for p in out:
        if not p.startswith(("/", "*")):
            raise UsageError(f"{name} {p!r} must be a URL path or glob starting with '/', "
                             "e.g. /admin/*")
    return out


def _headers(name: str, raw: str) -> tuple[str, ...]:
    return tuple(h.strip() for h in raw.replace(" ", ",").split(",") if h.strip())


def _files(name: str, raw: list[str]) -> tuple[str, ...]:
    """Paths, each once (whether they exist is checked where they are read)."""
    return tuple(dict.fromkeys(p for p in raw if p.strip()))


def _writable_file(name: str, raw: str) -> Path:
    """A file to write at the end of the run, checked now (missing directories are made
    then): found out after every test ran, a bad path was easy to miss."""
    text = str(raw).strip()
    if not text or os.path.isdir(text) or text.endswith(("/", os.sep)):
        what = "is empty" if not text else f"={text!r} is a directory"
        raise UsageError(f"{name} {what}; give a file path, e.g. "
                         f"{os.path.join(text, 'flaskserve.json')}")
    path = Path(text)
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise UsageError(f"{name} {path}: {existing} is not a writable directory, so the "
                         "file cannot be written there; choose another path")
    return path


#: the plugin's markers: name -> signature and meaning (``pytest --markers``)
MARKERS = {
    "flask_servers": "flask_servers(*names): run this test only on these servers "
                     "(flask-run, app-run, gunicorn, waitress, uwsgi)",
    "flask_app": "flask_app(spec): serve this Flask app spec instead of --flask-app, "
                 "e.g. flask_app(\"pkg:create_app('test')\")",
    "flask_options": "flask_options(workers=None, threads=None, worker_class=None, debug=None, "
                     "reload=None, extra_args=None, env=None, config=None, instance_path=None, "
                     "tls=None): per-server options for this test (tls=True: serve HTTPS "
                     "with the session's certificate)",
    "flask_deploy": "flask_deploy(*paths): run this test on the web servers these deployment "
                    "files start (Procfile, Dockerfile, gunicorn.conf.py, uwsgi.ini), paths "
                    "relative to the rootdir",
    "flask_scope": "flask_scope(scope): 'session' (shared server), 'module' or 'function' "
                   "(a fresh server)",
}


def _proxy(name: str, raw: str) -> str:
    from pytest_flaskserve.servers.proxied import PROXIES

    if raw not in PROXIES:
        raise UsageError(f"{name}={raw!r} is not a proxy the plugin runs; use {name}=nginx")
    return raw


def nginx_conf(name: str, raw: str) -> Path:
    """An nginx site file, checked: readable, and rewritable (listen, upstream address)."""
    from pytest_flaskserve.proxy.site_file import user_server_block

    path = Path(raw).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"{name}={raw!r}: no such file; give the path of an nginx site file "
                         "(a server { ... } block)")
    user_server_block(path, "127.0.0.1:1", "127.0.0.1:2")
    return path


class Option(NamedTuple):
    """One setting: where it is read from and how it is checked.

    (A named tuple, not a dataclass: it is made when the plugin loads, on every pytest
    run, and a dataclass costs its generated methods' compilation each time.)
    """

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
    #: a file path: relative to the ini file's directory when it comes from the ini file,
    #: else to the directory pytest was invoked in
    is_path: bool = False


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
    Option("cold", "--flask-cold", "flask_cold", "FLASKSERVE_COLD",
           "start every server in a new interpreter; by default servers are forked from a "
           "pre-warmed launcher (Flask and the server imported, never your app) wherever "
           "that start is exact: ~20-40 ms instead of ~130-170 ms",
           _bool, default="false", action="store_true", ini_type="string"),
    Option("warm", "--flask-warm", "flask_warm", "FLASKSERVE_WARM",
           "warm starts, the default (kept for command lines that name it)",
           _bool, default="true", action="store_true", ini_type="string"),
    Option("proxy", "--flask-proxy", "flask_proxy", "FLASKSERVE_PROXY",
           "also run every selected production server behind this reverse proxy: nginx "
           "(adds SERVER+nginx after each server)", _proxy, metavar="PROXY"),
    Option("nginx_conf", "--flask-nginx-conf", "flask_nginx_conf", "FLASKSERVE_NGINX_CONF",
           "your nginx site file in place of the generated server block for SERVER+nginx "
           "(only listen and the upstream address are rewritten)", nginx_conf,
           metavar="PATH", is_path=True),
    Option("tls", "--flask-tls", "flask_tls", "FLASKSERVE_TLS",
           "serve HTTPS: every server terminates TLS with a certificate from a throwaway CA "
           "made for the session (trustme); servers that cannot are skipped",
           _bool, default="false", action="store_true", ini_type="string"),
    Option("server_args", "--flask-server-args", "flask_server_args", None,
           "extra arguments for one server, SERVER=ARGS (repeatable), e.g. 'gunicorn=--timeout 5'",
           _server_args, action="append", ini_type="linelist", metavar="SERVER=ARGS"),
    Option("smoke", "--flask-smoke", "flask_smoke", "FLASKSERVE_SMOKE",
           "run the built-in smoke suite on every selected server (no test files needed)",
           _bool, default="false", action="store_true", ini_type="string"),
    Option("smoke_workers", "--flask-smoke-workers", "flask_smoke_workers",
           "FLASKSERVE_SMOKE_WORKERS",
           "worker processes the smoke suite gives multi-process servers (Gunicorn, uWSGI), "
           f"so per-worker state shows (default: --flask-workers, else {SMOKE_WORKERS})",
           _positive_int, metavar="N"),
    Option("smoke_exclude", "--flask-smoke-exclude", "flask_smoke_exclude", None,
           "GET route the smoke suite must not request, a path or glob (repeatable), "
           "e.g. /admin/*", _patterns, action="append", ini_type="linelist",
           metavar="PATTERN"),
    Option("parity_ignore_headers", "--flask-parity-ignore-headers",
           "flask_parity_ignore_headers", "FLASKSERVE_PARITY_IGNORE_HEADERS",
           "comma-separated response headers flask_parity does not compare (replaces the "
           "default list: Date, Server and the framing headers)", _headers, metavar="NAMES"),
    Option("report", "--flask-report", "flask_report", "FLASKSERVE_REPORT",
           "write the test-by-server matrix and server timings as JSON to PATH",
           _writable_file, metavar="PATH", is_path=True),
    Option("deploy", "--flask-deploy", "flask_deploy", "FLASKSERVE_DEPLOY",
           "run the tests on the web servers a deployment file starts, its own command with "
           "only the listen address moved (a Procfile, a Dockerfile, a gunicorn.conf.py or a "
           f"uwsgi.ini; repeatable; the variable takes several, separated by {os.pathsep!r})",
           _files, action="append", ini_type="linelist", metavar="PATH", is_path=True),
)

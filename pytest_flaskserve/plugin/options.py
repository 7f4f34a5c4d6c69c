"""The plugin's tables, loaded on every pytest run: every option once (its flag, ini key,
environment variable, default and the name of its check in :mod:`.checks`), and the
markers; and the two things a run needs before any test asks for a server: registering
the options, and telling whether the run sets any of them (when none is, loading the
settings waits for the first test that asks for a server). Imports no Flask or server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import pytest

from pytest_flaskserve.appspec import default_spec

SCOPES = ("session", "module", "function")
#: upper bound for worker and thread counts (each is a process or a thread on this machine)
MAX_COUNT = 1024
#: worker processes the smoke suite gives multi-process servers unless told otherwise
SMOKE_WORKERS = 3
#: the app spec's own flag, ini key and variable (Flask's order, see :mod:`.settings`)
APP_FLAG, APP_INI, APP_ENV = "--flask-app", "flask_app", "FLASK_APP"


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
    #: the name of its check in :mod:`.checks` (imported only when settings are loaded)
    check: str
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
           "server_names", metavar="NAMES"),
    Option("startup_timeout", "--flask-startup-timeout", "flask_startup_timeout",
           "FLASKSERVE_STARTUP_TIMEOUT",
           "seconds a server may take to answer HTTP (also bounds the app's import)",
           "seconds", default="30", metavar="SECONDS"),
    Option("stop_timeout", "--flask-stop-timeout", "flask_stop_timeout",
           "FLASKSERVE_STOP_TIMEOUT",
           "seconds a server gets after its stop signal before it is killed",
           "seconds", default="5", metavar="SECONDS"),
    Option("ready_path", "--flask-ready-path", "flask_ready_path", "FLASKSERVE_READY_PATH",
           "URL path probed until the server answers HTTP", "url_path", default="/",
           metavar="PATH"),
    Option("host", "--flask-host", "flask_host", "FLASKSERVE_HOST",
           "address servers bind to", "host", default="127.0.0.1", metavar="ADDR"),
    Option("scope", "--flask-scope", "flask_scope", "FLASKSERVE_SCOPE",
           "how long a server lives: session (shared), module or function (fresh)",
           "scope", default="session", metavar="SCOPE"),
    Option("workers", "--flask-workers", "flask_workers", "FLASKSERVE_WORKERS",
           "worker processes for Gunicorn and uWSGI (default 1)", "count",
           metavar="N"),
    Option("threads", "--flask-threads", "flask_threads", "FLASKSERVE_THREADS",
           "threads per worker (Gunicorn, Waitress, uWSGI)", "count", metavar="N"),
    Option("worker_class", "--flask-worker-class", "flask_worker_class",
           "FLASKSERVE_WORKER_CLASS", "Gunicorn worker class (sync, gthread, gevent...)",
           "worker_class", metavar="CLASS"),
    Option("debug", "--flask-debug", "flask_debug", "FLASKSERVE_DEBUG",
           "run the app in debug mode (flask run --debug, FLASK_DEBUG=1)", "boolean",
           default="false", action="store_true", ini_type="string"),
    Option("load_dotenv", "--flask-load-dotenv", "flask_load_dotenv", "FLASKSERVE_LOAD_DOTENV",
           "read .flaskenv/.env as flask run does (python-dotenv) and give the values to every "
           "server and FLASK_APP to the plugin (off: no server reads them)",
           "boolean", default="false", action="store_true", ini_type="string"),
    Option("cold", "--flask-cold", "flask_cold", "FLASKSERVE_COLD",
           "start every server in a new interpreter; by default servers are forked from a "
           "pre-warmed launcher (Flask and the server imported, never your app) wherever "
           "that start is exact: ~20-40 ms instead of ~130-170 ms",
           "boolean", default="false", action="store_true", ini_type="string"),
    Option("warm", "--flask-warm", "flask_warm", "FLASKSERVE_WARM",
           "warm starts, the default (kept for command lines that name it)",
           "boolean", default="true", action="store_true", ini_type="string"),
    Option("proxy", "--flask-proxy", "flask_proxy", "FLASKSERVE_PROXY",
           "also run every selected production server behind this reverse proxy: nginx "
           "(adds SERVER+nginx after each server)", "proxy", metavar="PROXY"),
    Option("nginx_conf", "--flask-nginx-conf", "flask_nginx_conf", "FLASKSERVE_NGINX_CONF",
           "your nginx site file in place of the generated server block for SERVER+nginx "
           "(only listen and the upstream address are rewritten)", "nginx_conf",
           metavar="PATH", is_path=True),
    Option("tls", "--flask-tls", "flask_tls", "FLASKSERVE_TLS",
           "serve HTTPS: every server terminates TLS with a certificate from a throwaway CA "
           "made for the session (trustme); servers that cannot are skipped",
           "boolean", default="false", action="store_true", ini_type="string"),
    Option("server_args", "--flask-server-args", "flask_server_args", None,
           "extra arguments for one server, SERVER=ARGS (repeatable), e.g. 'gunicorn=--timeout 5'",
           "server_args", action="append", ini_type="linelist", metavar="SERVER=ARGS"),
    Option("smoke", "--flask-smoke", "flask_smoke", "FLASKSERVE_SMOKE",
           "run the built-in smoke suite on every selected server (no test files needed)",
           "boolean", default="false", action="store_true", ini_type="string"),
    Option("smoke_workers", "--flask-smoke-workers", "flask_smoke_workers",
           "FLASKSERVE_SMOKE_WORKERS",
           "worker processes the smoke suite gives multi-process servers (Gunicorn, uWSGI), "
           f"so per-worker state shows (default: --flask-workers, else {SMOKE_WORKERS})",
           "count", metavar="N"),
    Option("smoke_exclude", "--flask-smoke-exclude", "flask_smoke_exclude", None,
           "GET route the smoke suite must not request, a path or glob (repeatable), "
           "e.g. /admin/*", "patterns", action="append", ini_type="linelist",
           metavar="PATTERN"),
    Option("parity_ignore_headers", "--flask-parity-ignore-headers",
           "flask_parity_ignore_headers", "FLASKSERVE_PARITY_IGNORE_HEADERS",
           "comma-separated response headers flask_parity does not compare (replaces the "
           "default list: Date, Server and the framing headers)", "header_names", metavar="NAMES"),
    Option("report", "--flask-report", "flask_report", "FLASKSERVE_REPORT",
           "write the test-by-server matrix and server timings as JSON to PATH",
           "writable_file", metavar="PATH", is_path=True),
    Option("deploy", "--flask-deploy", "flask_deploy", "FLASKSERVE_DEPLOY",
           "run the tests on the web servers a deployment file starts, its own command with "
           "only the listen address moved (a Procfile, a Dockerfile, a gunicorn.conf.py or a "
           f"uwsgi.ini; repeatable; the variable takes several, separated by {os.pathsep!r})",
           "files", action="append", ini_type="linelist", metavar="PATH", is_path=True),
)


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


def command_line_and_ini(config: pytest.Config) -> tuple[dict[str, Any], Callable[[str], Any]]:
    """This run's command-line values (by ``dest``, the app as ``"app"``) and its ini reader."""
    cli = {opt.dest: getattr(config.option, f"flaskserve_{opt.dest}", None) for opt in OPTIONS}
    cli["app"] = getattr(config.option, "flaskserve_app", None)

    def ini(name: str) -> Any:
        try:
            return config.getini(name)
        except ValueError:
            return None

    return cli, ini


def sets_anything(config: pytest.Config) -> bool:
    """Whether this run names an app (or has Flask's default ``wsgi.py``/``app.py``) or sets
    any option anywhere. When it does not, every setting is its default, which cannot be
    wrong, so loading them can wait until a test asks for a server."""
    cli, ini = command_line_and_ini(config)
    if cli["app"] or ini(APP_INI) or os.environ.get(APP_ENV):
        return True
    if any(lookup(opt, cli, ini, os.environ)[1] != "default" for opt in OPTIONS):
        return True
    return default_spec(config.rootpath) is not None

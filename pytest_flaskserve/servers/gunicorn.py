"""Gunicorn: ``python -m gunicorn module:app`` (it calls ``module:factory(args)`` itself).

Stopping. On SIGTERM the arbiter's ``halt()`` calls ``stop()``
(gunicorn/arbiter.py): it sends SIGTERM to the workers it still counts, then loops
``reap_workers(); time.sleep(0.1)`` while any remain and ``graceful_timeout`` has not
passed, then SIGKILLs the rest. A worker exits in ~35 ms, but the loop always sleeps at
least once after reaping it, usually twice: ~270 ms a stop. ``--graceful-timeout 0``
alone skips the loop but SIGKILLs the workers ~2 ms after their SIGTERM, before their
``atexit`` handlers and ``worker_exit`` hook ran (2 of 8 ran, measured).

So Gunicorn is stopped children first (``StopStrategy.CHILDREN_FIRST``): the arbiter is
paused, the workers get SIGTERM and leave through their own path (``Worker exiting``,
hooks, atexit, exit 0), and then the arbiter gets SIGTERM with SIGCONT. It handles the
stop and the workers' SIGCHLD in one batch, finds them exited, reaps them with their real
status and, with ``--graceful-timeout 0``, exits 0 at once: ~70 ms, nothing killed. The
timeout also bounds a worker's own wait for in-flight requests (gthread, gevent); a test
server being stopped has none worth waiting for.
"""

from __future__ import annotations

import functools
import os
import re
from typing import TYPE_CHECKING, ClassVar

from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest, StopStrategy
from pytest_flaskserve.servers.reloading import ReloadProfile

if TYPE_CHECKING:
    from pytest_flaskserve.deploy.listen import Rewriter


@functools.cache
def no_control_socket() -> tuple[str, ...]:
    """``--no-control-socket`` where the installed Gunicorn has a control socket (25.1 and
    later, on by default): every instance would claim the same ``~/.gunicorn/gunicorn.ctl``,
    a file outside the test's directories that parallel runs take from each other.
    Earlier versions have no such socket and refuse the flag."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(part) for part in version("gunicorn").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return ()
    return ("--no-control-socket",) if (major, minor) >= (25, 1) else ()


#: the arbiter's words for a worker that ended, and how many before ready mean a loop
_WORKER_EXITED = re.compile(r"Worker \(pid:\d+\) exited with code (\d+)")
_CRASH_LOOP = 3
#: Flask's words when an ASGI server calls it with (scope, receive, send)
_ASGI_CALLS_WSGI = "__call__() missing 1 required positional argument: 'start_response'"
#: what Python's ssl module logs through Gunicorn when a plain HTTP request reaches TLS
_PLAIN_REQUEST_ON_TLS = "[SSL: HTTP_REQUEST]"


#: what ``python -m gunicorn`` imports whatever its worker class (the warm preload, with
#: the worker's own module)
ARBITER_MODULES = ("gunicorn.app.wsgiapp", "gunicorn.arbiter", "gunicorn.http.wsgi",
                   "gunicorn.glogging")


@register
class Gunicorn(Launcher):
    name = "gunicorn"
    description = "python -m gunicorn MODULE:APP (pre-fork, sync workers by default)"
    requires = "gunicorn"
    install_hint = "pip install 'pytest-flaskserve[gunicorn]'"
    supports_reload = True
    exit_codes = {
        1: "Gunicorn could not start (bad option or the address is in use)",
        3: "a worker failed to boot (Gunicorn's WORKER_BOOT_ERROR)",
        4: "the app failed to load (Gunicorn's APP_LOAD_ERROR)",
    }
    #: workers exit on the stop signal before the arbiter hears of it (module docstring)
    stop_strategy = StopStrategy.CHILDREN_FIRST
    reload_profile = ReloadProfile(
        "gunicorn", re.compile(r"Worker reloading: (?P<path>.+) modified"),
        re.compile(r"Booting worker with pid"), re.compile(r"Reloader is on"),
        "gunicorn was started without --reload",
        types=(("auto", None), ("poll", None), ("inotify", "inotify")),
        extra_file_flag="--reload-extra-file", type_flag="--reload-engine",
    )
    starts_warm = True
    warm_preload = (*ARBITER_MODULES, "gunicorn.workers.sync")
    warm_entry_point_groups = ("gunicorn.workers",)  # its worker classes
    warm_refresh = "pytest_flaskserve._child.gunicorn_defaults:refresh"
    listening_wordings = ("Listening at:",)
    daemon_hint = "Gunicorn's `daemon = True` in gunicorn.conf.py"
    failure_wordings = (
        # -k / worker_class naming a class that is not there (a typo, or a worker whose
        # package is not installed: egg:meinheld#gunicorn_worker without meinheld)
        (re.compile(r"Error: class uri '([^']+)' invalid or not found"),
         "Gunicorn's worker class '{0}' was not found: check -k/--worker-class (or "
         "worker_class in gunicorn.conf.py) for a typo, and install the package that "
         "provides it (gevent, eventlet, ...) in the environment the tests run in"),
        # --workers=$WEB_CONCURRENCY with the variable unset here: the shell left ''
        (re.compile(r"error: argument (?:-\w/)?(--[\w-]+): invalid \w+ value: ''"),
         "Gunicorn got an empty value for {0}: the command takes it from an environment "
         "variable that is not set here (WEB_CONCURRENCY, say); set it for the tests, e.g. "
         "flask_options(env={{...}}) or in the environment pytest runs in"),
        # gunicorn.conf.py raised: the traceback that follows is the config file's
        (re.compile(r"Failed to read config file: (\S+)"),
         "Gunicorn could not read its config file {0}: the traceback in the log is the "
         "config file's, not the app's; fix it (`gunicorn --check-config` shows it too)"),
    )

    terminates_tls = True
    commands = ("gunicorn",)

    def load_failure(self, log: str) -> str | None:
        # an ASGI worker class (uvicorn.workers.UvicornWorker) calls the app with
        # (scope, receive, send): a Flask app, WSGI, answers every request 500
        if _ASGI_CALLS_WSGI in log:
            return ("Gunicorn's worker class speaks ASGI (UvicornWorker, say) and calls the "
                    "app as an ASGI app, but a Flask app is WSGI: use a WSGI worker (sync, "
                    "gthread, gevent), or run it under uvicorn --interface wsgi")
        return None

    def start_cannot_succeed(self, log: str, *, tls: bool) -> tuple[str, str] | None:
        if not tls and _PLAIN_REQUEST_ON_TLS in log:  # our plain probe reached TLS
            return ("it serves TLS on its port, where plain HTTP was asked for",
                    "Gunicorn was given a certificate by its config (certfile/keyfile in a "
                    "gunicorn.conf.py it reads from the working directory, or in extra "
                    "arguments): remove it for plain-HTTP tests, or run them with --flask-tls")
        # The arbiter replaces a worker that exits while it boots (a code other than 3,
        # WORKER_BOOT_ERROR, which halts it), for ever: an app that ends its own import
        # with sys.exit() never serves, and waiting out the timeout tells nothing.
        exits = _WORKER_EXITED.findall(log)
        if len(exits) < _CRASH_LOOP:
            return None
        last_words = [line for line in log.splitlines()
                      if line.strip() and not line.startswith("[")]
        said = f" (its last words: {last_words[-1].strip()!r})" if last_words else ""
        return (f"every worker exits as it boots ({len(exits)} so far, the last with code "
                f"{exits[-1]})",
                "the app ends its own import in the Gunicorn worker (sys.exit() or "
                f"SystemExit, often for a setting missing in production){said}; the arbiter "
                "would boot new workers for ever")

    def deploy_rewriter(self) -> Rewriter:
        from pytest_flaskserve.deploy import gunicorn

        return gunicorn.rewrite

    #: the short names Gunicorn's own --worker-class table accepts (gunicorn/workers/__init__.py)
    worker_classes: ClassVar[tuple[str, ...]] = ("sync", "eventlet", "gevent", "tornado", "gthread")

    def worker_class_problem(self, worker_class: str) -> str | None:
        # a dotted path (mypkg.workers.Custom) or an egg URI (egg:gunicorn#sync) is the
        # user's own class: Gunicorn imports it and reports its own error
        if worker_class in self.worker_classes or "." in worker_class or "#" in worker_class:
            return None
        return (f"Gunicorn has no worker class {worker_class!r}; use one of "
                f"{', '.join(self.worker_classes)} or a dotted path such as mypkg.workers.MyWorker")

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        opts = request.options
        # Gunicorn imports with importlib: a file name such as my-app is fine
        ref, env, notes = self.target(request.app, call_syntax=True, call_arguments=True,
                                      any_module_name=True, why="")
        argv = [
            request.python, "-m", "gunicorn",
            "--bind", request.address,
            "--workers", str(opts.workers or 1),
            *no_control_socket(),
            # the workers have already exited when the arbiter stops (see the docstring);
            # with any other value it sleeps 100-200 ms before it notices
            "--graceful-timeout", "0",
        ]
        if opts.threads:
            argv += ["--threads", str(opts.threads)]
        if opts.worker_class:
            argv += ["--worker-class", opts.worker_class]
        if opts.reload:
            argv.append("--reload")
        if request.tls is not None:
            argv += ["--certfile", str(request.tls.cert_path),
                     "--keyfile", str(request.tls.key_path)]
        argv += list(opts.extra_args)
        argv.append(ref)
        config = os.path.join(request.app.cwd, "gunicorn.conf.py")
        if os.path.isfile(config) and not {"-c", "--config"} & set(opts.extra_args):
            notes += (f"Gunicorn also reads {config} (its default config file): its settings "
                      "apply, except the bind and the options above",)
        return LaunchPlan(argv=argv, env=env, notes=notes)

"""Fixtures: glue between pytest's scopes and the supervisor.

Servers are shared per (spec, server, options) for the session by default; a module or
function scope gives fresh ones. A server found dead is replaced, not reused; a failed
start is remembered so the tests after it fail at once with the same report.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.appspec import config as app_config
from pytest_flaskserve.appspec.dotenv import dotenv_env
from pytest_flaskserve.appspec.grammar import (
    AppSpec,
    ResolvedApp,
    locate_module_file,
    parse_spec,
    script_entry,
)
from pytest_flaskserve.appspec.resolve import resolve_app
from pytest_flaskserve.errors import (
    FlaskServeWarning,
    ServerStartupError,
    UsageError,
    hide_own_errors,
)
from pytest_flaskserve.lifecycle.supervisor import ServerHandle, StartConfig, start_server
from pytest_flaskserve.plugin import deploy, markers, selection
from pytest_flaskserve.plugin.settings import Settings
from pytest_flaskserve.servers import ServerOptions
from pytest_flaskserve.tls import SessionTLS

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

HANDLES_KEY = pytest.StashKey[list[ServerHandle]]()


@dataclass
class Record:
    """One server's life, for the terminal summary and reports."""

    server: str
    app: str
    command: str
    ready_seconds: float
    notes: tuple[str, ...]
    stop_seconds: float | None = None
    exit_code: int | None = None
    forced: bool = False
    failed: str | None = None


class Pool:
    """Servers shared by several tests, keyed by (spec, server, options).

    Each key has its own lock, so different servers start at the same time (the
    module prestart runs them in threads) while one key never starts twice.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], ServerHandle | ServerStartupError] = {}
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._lock = threading.Lock()
        self.replaced: list[str] = []

    def has(self, key: tuple[Any, ...]) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: tuple[Any, ...], start: Callable[[], ServerHandle]) -> ServerHandle:
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            entry = self._entries.get(key)
            if isinstance(entry, ServerStartupError):
                raise entry
            if entry is not None and entry.is_running():
                return entry
            if entry is not None:
                self.replaced.append(entry.server)
                entry.stop()
            try:
                handle = start()
            except ServerStartupError as exc:
                with self._lock:
                    self._entries[key] = exc
                raise
            with self._lock:
                self._entries[key] = handle
            return handle

    def close(self) -> None:
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        live = [e for e in entries if isinstance(e, ServerHandle)]
        if len(live) > 1:
            with ThreadPoolExecutor(max_workers=min(len(live), 8)) as pool:
                list(pool.map(lambda h: h.stop(), live))
        else:
            for handle in live:
                handle.stop()


@dataclass
class Runtime:
    """Everything the plugin keeps for one pytest session (lives in ``config.stash``)."""

    settings: Settings
    rootdir: str
    worker: str = ""
    app_spec: AppSpec | None = None
    log_dir: Path | None = None
    #: a temporary directory of this session for the app (see appspec.config)
    session_dir: Path | None = None
    session_pool: Pool = field(default_factory=Pool)
    records: list[Record] = field(default_factory=list)
    collection_errors: list[str] = field(default_factory=list)
    #: the named app failed in its own code at configure time, imported with pytest's
    #: environment; reported once collection shows no test gives its servers more env
    app_import_error: str | None = None
    prestarted: set[str] = field(default_factory=set)
    warm: Any = None  # a warm.WarmLauncher when --flask-warm is on
    warm_fallbacks: list[tuple[str, str]] = field(default_factory=list)
    verbose: int = 0
    #: the server ids of --flask-deploy's files, and every deployment file read so far
    deploy_ids: tuple[str, ...] = ()
    deploy_files: dict[str, list[str]] = field(default_factory=dict)
    tls: SessionTLS | None = None  # made with the log directory, on first use

    # -- what a test asks for -------------------------------------------------------
    def spec_for(self, node: pytest.Item | pytest.Function | Any) -> AppSpec:
        mark = node.get_closest_marker("flask_app")
        if mark is not None:
            raw = markers.app_arg(mark.args, mark.kwargs)
            return parse_spec(raw, self.rootdir, source="@pytest.mark.flask_app")
        if self.app_spec is not None:
            return self.app_spec
        if self.settings.app:
            self.app_spec = parse_spec(self.settings.app, self.settings.app_base,
                                       source=self.settings.app_source)
            return self.app_spec
        in_dotenv = dotenv_env(self.rootdir, {}).get("FLASK_APP")
        raise UsageError(
            "no Flask app to serve: pass --flask-app=module:app, set flask_app in the ini "
            "file, set FLASK_APP, or add @pytest.mark.flask_app('module:app')"
            + (f" (FLASK_APP={in_dotenv} is in .flaskenv/.env, which the plugin reads only "
               "with --flask-load-dotenv)" if in_dotenv else "")
        )

    def resolve(self, spec: AppSpec, env: Mapping[str, str] | None = None) -> ResolvedApp:
        if self.settings.load_dotenv:  # imported with what its servers will get
            env = {**dotenv_env(spec.base_dir), **(env or {})}
        return resolve_app(spec, timeout=self.settings.startup_timeout, env=env)

    def resolve_for(self, node: Any) -> ResolvedApp:
        """The app ``node`` runs, imported with the environment its servers get: the same
        answer for parametrized tests, parity and smoke, wherever ``env=`` was given."""
        return self.resolve(self.spec_for(node), dict(self.options_for(node, "").env))

    def servers_for(self, node: Any) -> tuple[list[str], set[str]]:
        """The servers ``node`` runs on, and which were chosen explicitly (see selection);
        a ``flask_deploy`` marker runs it on its files' servers alone."""
        ids = deploy.marked(self, node)
        if ids is not None:
            return ids, set(ids)
        mark = node.get_closest_marker("flask_servers")
        marked = markers.servers_arg(mark.args, mark.kwargs) if mark is not None else None
        return selection.choose(marked, deploy.chosen(self), self.settings.proxy)

    def app_for(self, node: Any, server: str, options: ServerOptions) -> ResolvedApp:
        """What ``server`` serves for ``node``: the command of a deployment file names its
        own app; every other server serves the test's (imported with its env=)."""
        own = servers.get(server).own_app()
        if own is not None:
            return own
        return self.resolve(self.spec_for(node), dict(options.env))

    def scope_for(self, node: Any) -> str:
        mark = node.get_closest_marker("flask_scope")
        return markers.scope_arg(mark.args, mark.kwargs) if mark else self.settings.scope

    def options_for(self, node: Any | None, server: str) -> ServerOptions:
        """What ``server`` is started with for ``node``: the command-line and ini settings,
        then its ``flask_options`` markers, nearest last. ``node=None`` gives the settings
        alone (what the header shows before any test is collected)."""
        s = self.settings
        merged: dict[str, Any] = {
            "workers": s.workers, "threads": s.threads, "worker_class": s.worker_class,
            "debug": True if s.debug else None, "reload": None, "tls": s.tls,
        }
        extra: list[str] = [a for name, args in s.server_args if name == server for a in args]
        env: dict[str, str] = {}
        config: dict[str, Any] = {}
        instance_path = ""
        marks = list(node.iter_markers("flask_options")) if node is not None else []
        for mark in reversed(marks):
            opts = markers.options_arg(mark.args, mark.kwargs)
            for k in ("workers", "threads", "worker_class", "debug", "reload", "tls"):
                if opts[k] is not None:
                    merged[k] = opts[k]
            more = opts["extra_args"]
            if isinstance(more, Mapping):
                extra += list(more.get(server, ()))
            elif more:
                extra += list(more)
            env.update(opts["env"] or {})
            config.update(opts["config"] or {})
            instance_path = opts["instance_path"] or instance_path
        return ServerOptions(extra_args=tuple(extra), env=tuple(sorted(env.items())),
                             config=app_config.encode(config), instance_path=instance_path,
                             **merged)

    # -- starting -------------------------------------------------------------------
    def start_config(self, *, ready_path: str | None = None,
                     startup_timeout: float | None = None,
                     nginx_conf: Path | None = None) -> StartConfig:
        assert self.log_dir is not None
        s = self.settings
        return StartConfig(
            log_dir=self.log_dir, host=s.host,
            ready_path=ready_path or s.ready_path,
            startup_timeout=startup_timeout or s.startup_timeout,
            stop_timeout=s.stop_timeout, load_dotenv=s.load_dotenv, log_tag=self.worker,
            process_factory=self.warm.process if self.warm is not None else None,
            nginx_conf=nginx_conf or s.nginx_conf,
        )

    def session_tls(self) -> SessionTLS:
        if self.tls is None:
            self.tls = SessionTLS(self._log_dir, self.settings.host)
        return self.tls

    def _log_dir(self) -> Path:
        assert self.log_dir is not None
        return self.log_dir

    def start_warm(self) -> None:
        """Start the warm launcher in the background: the first servers start cold while
        it preloads, later ones fork from it."""
        if self.settings.warm and self.warm is None:
            from pytest_flaskserve.warm.launcher import WarmLauncher

            self.warm = WarmLauncher(log_dir=self.log_dir)
            self.warm.start(wait=False)

    def close(self) -> None:
        """End of session: shared servers, the warm launcher, the TLS files."""
        self.session_pool.close()
        if self.tls is not None:
            self.tls.close()
        if self.warm is not None:
            self.warm_fallbacks = list(self.warm.fallbacks)
            self.warm.close()
            self.warm = None

    def start(self, server: str | servers.Launcher, app: ResolvedApp, options: ServerOptions,
              config: StartConfig | None = None) -> ServerHandle:
        launcher = server if isinstance(server, servers.Launcher) else servers.get(server)
        server = launcher.name
        why = launcher.unavailable() or (launcher.tls_unsupported() if options.tls else None)
        if why:
            pytest.skip(why)
        if options.config or options.instance_path:
            assert self.session_dir is not None
            app = app_config.with_settings(app, options.config, options.instance_path,
                                           self.session_dir)
        config = config or self.start_config()
        if options.tls:
            config = dataclasses.replace(config, tls=self.session_tls().files())
        try:
            handle = start_server(launcher, app, options, config)
        except ServerStartupError as exc:
            self.records.append(Record(server, app.spec.raw, exc.command, 0.0, (),
                                       failed=str(exc).splitlines()[0]))
            raise
        record = Record(server, app.spec.raw, handle.command, handle.ready_seconds, handle.notes)
        self.records.append(record)

        def record_stop(stopped: ServerHandle) -> None:
            result = stopped.stop_result
            if result is not None and record.stop_seconds is None:
                record.stop_seconds = result.seconds
                record.exit_code = result.returncode
                record.forced = result.forced

        handle.on_stop(record_stop)
        return handle


RUNTIME_KEY = pytest.StashKey[Runtime]()


def runtime(config: pytest.Config) -> Runtime:
    return config.stash[RUNTIME_KEY]


def _fail(message: str) -> Any:
    """Fail the test with our report only (no traceback of ours, no chained exception)."""
    __tracebackhide__ = True
    pytest.fail(message, pytrace=False)


def _warn_if_forced(handle: ServerHandle) -> None:
    result = handle.stop_result
    if result is not None and result.forced:
        import signal as _signal

        sig = _signal.Signals(handle._launcher.stop_signal).name
        import warnings

        warnings.warn(FlaskServeWarning(
            f"{handle.server} ignored {sig} for {handle._stop_timeout:g} s and was killed "
            f"(SIGKILL); log: {handle.log_path}"), stacklevel=2)


@pytest.fixture(scope="session")
def _flaskserve_runtime(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = runtime(request.config)
    if rt.log_dir is None:
        rt.log_dir = tmp_path_factory.mktemp("flaskserve", numbered=True)
        rt.session_dir = tmp_path_factory.mktemp("flaskserve-session", numbered=True)
    rt.start_warm()
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def _flaskserve_module_pool() -> Iterator[Pool]:
    pool = Pool()
    yield pool
    pool.close()


@pytest.fixture
def flask_server_name(request: pytest.FixtureRequest) -> str:
    """The server this test instance runs on (the id in ``test_x[gunicorn]``)."""
    return str(getattr(request, "param", "flask-run"))


@pytest.fixture
def flask_server(request: pytest.FixtureRequest, flask_server_name: str,
                 _flaskserve_runtime: Runtime) -> Iterator[ServerHandle]:
    """A running server for this test: ``.url``, ``.server``, ``.pid``, ``.command``,
    ``.log_path``, ``read_log()``, ``wait_for_log()``, ``stop()``; ``str()`` is the URL."""
    rt = _flaskserve_runtime
    node = request.node
    error: str | None = None
    try:
        options = rt.options_for(node, flask_server_name)
        app = rt.app_for(node, flask_server_name, options)
        scope = rt.scope_for(node)
    except UsageError as exc:
        error = str(exc)
    if error is not None:
        _fail(error)
    key = (app.spec.raw, app.spec.base_dir, flask_server_name, options.key())

    def start() -> ServerHandle:
        return rt.start(flask_server_name, app, options)

    if scope != "function":
        _prestart_module(request, rt)

    handle: ServerHandle | None = None
    try:
        if scope == "function":
            handle = start()
        elif scope == "module":
            pool: Pool = request.getfixturevalue("_flaskserve_module_pool")
            handle = pool.get(key, start)
        else:
            handle = rt.session_pool.get(key, start)
    except ServerStartupError as exc:
        error = str(exc)
    if handle is None:
        _fail(error or "server did not start")
    assert handle is not None
    node.stash.setdefault(HANDLES_KEY, []).append(handle)
    try:
        yield handle
    finally:
        if scope == "function":
            handle.stop()
            _warn_if_forced(handle)


def _prestart_module(request: pytest.FixtureRequest, rt: Runtime) -> None:
    """Start every shared server this module's tests will need, all at once.

    Runs once per module, at the first test that needs a server: the servers of the
    selected, non-skipped tests are started in threads, so a module that runs on five
    servers waits for the slowest start, not for the sum. A failed start is cached in
    its pool and reported by the test that needs it.
    """
    module = request.node.getparent(pytest.Module)
    if module is None or module.nodeid in rt.prestarted:
        return
    if rt.worker and request.config.getoption("dist", "no") not in ("loadscope", "loadfile",
                                                                     "loadgroup"):
        return  # xdist spreads a module's tests over workers: this one may run few of them
    rt.prestarted.add(module.nodeid)
    wanted: dict[tuple[Any, ...], tuple[Pool, Callable[[], ServerHandle]]] = {}
    for item in request.session.items:
        if item.getparent(pytest.Module) is not module:
            continue
        callspec = getattr(item, "callspec", None)
        server = callspec.params.get("flask_server_name") if callspec is not None else None
        if not isinstance(server, str) or item.get_closest_marker("skip") is not None:
            continue
        try:
            options = rt.options_for(item, server)
            app = rt.app_for(item, server, options)
            scope = rt.scope_for(item)
        except UsageError:
            continue
        launcher = servers.get(server)
        if scope == "function" or launcher.unavailable() or (
                options.tls and launcher.tls_unsupported()):
            continue
        pool = rt.session_pool if scope == "session" else request.getfixturevalue("_flaskserve_module_pool")
        key = (app.spec.raw, app.spec.base_dir, server, options.key())
        if key not in wanted and not pool.has(key):
            wanted[key] = (pool, functools.partial(rt.start, server, app, options))
    if len(wanted) < 2:
        return
    interrupted: BaseException | None = None
    with ThreadPoolExecutor(max_workers=min(len(wanted), 8)) as executor:
        futures = [executor.submit(pool.get, key, start) for key, (pool, start) in wanted.items()]
        for future in futures:
            try:
                future.result()
            except Exception:  # noqa: BLE001 - cached in the pool, reported per test
                pass
            except BaseException as exc:  # Ctrl-C: let the starts under way end (each is
                interrupted = exc  # bounded by the startup timeout) so that every server
                break  # they start is in a pool, and stopped, then stop the run
    if interrupted is not None:
        raise interrupted


@pytest.fixture
def flask_url(flask_server: ServerHandle) -> str:
    """The base URL of this test's server, e.g. ``http://127.0.0.1:38211``."""
    return flask_server.url


@pytest.fixture
def flask_http(flask_server: ServerHandle) -> Iterator[Any]:
    """A ``requests.Session`` bound to the server: ``flask_http.get("/")``; over TLS it
    trusts the session's CA (``verify=flask_server.ca_path``)."""
    from pytest_flaskserve.client import BaseUrlSession

    with BaseUrlSession(flask_server.url, ca_path=flask_server.ca_path) as session:
        yield session


class ServerFactory:
    """Start one-off servers in a test; all are stopped when the test ends."""

    def __init__(self, rt: Runtime, node: Any) -> None:
        self._rt = rt
        self._node = node
        self.handles: list[ServerHandle] = []

    def __call__(
        self,
        server: str = "flask-run",
        app: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        workers: int | None = None,
        threads: int | None = None,
        worker_class: str | None = None,
        debug: bool | None = None,
        reload: bool | None = None,
        ready_path: str | None = None,
        startup_timeout: float | None = None,
        nginx_conf: str | Path | None = None,
        tls: bool = False,
        resolve: bool = True,
        base_dir: str | Path | None = None,
        config: Mapping[str, Any] | None = None,
        instance_path: bool | str | None = None,
    ) -> ServerHandle:
        """Start ``app`` (default: the test's app) under ``server`` and wait until it serves.

        ``nginx_conf`` is an nginx site file for a ``SERVER+nginx`` server (as
        ``--flask-nginx-conf``). ``tls=True`` serves HTTPS with the session's certificate
        (``handle.ca_path`` is its CA). ``resolve=False`` skips importing the app first, so
        a broken app reaches the server and you can assert on its :class:`ServerStartupError`.
        ``config`` is applied to the app after it is created (JSON values);
        ``instance_path=True`` gives it the test run's instance folder when it is created.
        Raises :class:`UsageError` for a bad spec or server name.
        """
        servers.get(server)  # an unknown name is a UsageError before anything starts
        markers.check_arguments("flask_server_factory(args=...)", list(args)
                                if isinstance(args, (list, tuple)) else args)
        if env is not None:
            markers.check_env("flask_server_factory(env=...)", env)
        for key, value in (("workers", workers), ("threads", threads)):
            markers.check_count(f"flask_server_factory({key}={value!r})", value)
        if worker_class is not None:
            servers.check_worker_class(f"flask_server_factory(worker_class={worker_class!r})",
                                       worker_class)
        checked = (app_config.check_config("flask_server_factory(config=...)", config)
                   if config is not None else {})
        instance = app_config.check_instance_path("flask_server_factory", instance_path)
        if app is None:
            spec = self._rt.spec_for(self._node)
        else:
            spec = parse_spec(app, base_dir or self._rt.rootdir, source="flask_server_factory")
        target = self._rt.resolve(spec, env) if resolve else unresolved(spec)
        options = ServerOptions(workers=workers, threads=threads, worker_class=worker_class,
                                debug=debug, reload=reload, extra_args=tuple(args),
                                env=tuple(sorted((env or {}).items())),
                                config=app_config.encode(checked), instance_path=instance,
                                tls=bool(tls))
        handle = self._rt.start(server, target, options,
                                self._rt.start_config(ready_path=ready_path,
                                                      startup_timeout=startup_timeout,
                                                      nginx_conf=_site_file(nginx_conf)))
        self.handles.append(handle)
        self._node.stash.setdefault(HANDLES_KEY, []).append(handle)
        return handle

    def command(self, argv_or_string: str | Sequence[str], port_placeholder: str = "{port}",
                *, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
                ready_path: str | None = None,
                startup_timeout: float | None = None) -> ServerHandle:
        """Start any command line as a server on a free loopback port and wait until it
        serves: ``port_placeholder`` in it becomes the port (``$PORT`` is set as well); a
        string is run by ``/bin/sh -c``, a list directly; a command without the placeholder
        that starts a server the plugin knows (gunicorn, uwsgi, waitress-serve, flask run,
        granian) gets only its listen address moved. Runs in ``cwd`` (default: the rootdir).
        """
        handle = deploy.start_command(self._rt, argv_or_string, port_placeholder, env,
                                      cwd, ready_path, startup_timeout)
        self.handles.append(handle)
        self._node.stash.setdefault(HANDLES_KEY, []).append(handle)
        return handle

    def close(self) -> None:
        for handle in reversed(self.handles):
            handle.stop()
            _warn_if_forced(handle)


def _site_file(path: str | Path | None) -> Path | None:
    """A site file given to the factory, checked now: a file that cannot be rewritten is
    a usage error before anything starts."""
    if path is None:
        return None
    from pytest_flaskserve.plugin.options import nginx_conf

    return nginx_conf("flask_server_factory(nginx_conf=...)", str(path))


def unresolved(spec: AppSpec) -> ResolvedApp:
    """A target rendered from the spec as written, without importing the app."""
    module_file = spec.file or locate_module_file(spec.module, spec.path_entry)
    is_package = bool(module_file and module_file.endswith("__init__.py"))
    script, reason = script_entry(spec.module, module_file, is_package, spec.base_dir)
    return ResolvedApp(
        spec=spec, module=spec.module, attr=spec.attr or "app", is_factory=spec.is_call,
        args=spec.args, kwargs=spec.kwargs, module_file=module_file, is_package=is_package,
        script=script, script_reason=reason, runs_at_import=False,
    )


@pytest.fixture
def flask_server_factory(request: pytest.FixtureRequest,
                         _flaskserve_runtime: Runtime) -> Iterator[ServerFactory]:
    """Start one-off servers: ``flask_server_factory("gunicorn", "hello:app", workers=2)``."""
    factory = ServerFactory(_flaskserve_runtime, request.node)
    try:
        yield factory
    finally:
        factory.close()


__all__ = [
    "flask_server", "flask_server_name", "flask_url", "flask_http", "flask_server_factory",
    "_flaskserve_runtime", "_flaskserve_module_pool", "Runtime", "ServerFactory",
]

"""The servers a test gets: shared from a pool, started all at once for a module or a
parity test, or one-off from ``flask_server_factory``. The fixtures in :mod:`fixtures`
call these on first use; errors become our one-line test failures.
"""

from __future__ import annotations

import functools
import signal
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.appspec import config as app_config
from pytest_flaskserve.appspec.grammar import (
    AppSpec,
    ResolvedApp,
    locate_module_file,
    parse_spec,
    script_entry,
)
from pytest_flaskserve.errors import (
    FlaskServeWarning,
    ServerStartupError,
    UsageError,
    hide_own_errors,
)
from pytest_flaskserve.lifecycle.supervisor import ServerHandle
from pytest_flaskserve.parity.compare import Parity
from pytest_flaskserve.plugin import deploy, markers, selection
from pytest_flaskserve.plugin.fixtures import HANDLES_KEY
from pytest_flaskserve.plugin.session import Pool, Runtime
from pytest_flaskserve.servers import ServerOptions

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


def _fail(message: str) -> Any:
    """Fail the test with our report only (no traceback of ours, no chained exception)."""
    __tracebackhide__ = True
    pytest.fail(message, pytrace=False)


def warn_if_forced(handle: ServerHandle) -> None:
    result = handle.stop_result
    if result is not None and result.forced:
        sig = signal.Signals(handle._launcher.stop_signal).name
        warnings.warn(FlaskServeWarning(
            f"{handle.server} ignored {sig} for {handle._stop_timeout:g} s and was killed "
            f"(SIGKILL); log: {handle.log_path}"), stacklevel=2)


def _pool_for(request: pytest.FixtureRequest, rt: Runtime, scope: str) -> Pool | None:
    if scope == "module":
        pool: Pool = request.getfixturevalue("_flaskserve_module_pool")
        return pool
    return rt.session_pool if scope == "session" else None


def server_for_test(request: pytest.FixtureRequest, rt: Runtime, server: str) -> Iterator[ServerHandle]:
    """The ``flask_server`` fixture: this test's server, shared as its scope says."""
    node = request.node
    error: str | None = None
    try:
        options = rt.options_for(node, server)
        app = rt.app_for(node, server, options)
        scope = rt.scope_for(node)
    except UsageError as exc:
        error = str(exc)
    if error is not None:
        _fail(error)
    key = (app.spec.raw, app.spec.base_dir, server, options.key())

    def start() -> ServerHandle:
        return rt.start(server, app, options)

    if scope != "function":
        _prestart_module(request, rt)
    handle: ServerHandle | None = None
    try:
        pool = _pool_for(request, rt, scope)
        handle = pool.get(key, start) if pool is not None else start()
    except (ServerStartupError, UsageError) as exc:  # usage: a site file that cannot front it
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
            warn_if_forced(handle)


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
        pool = _pool_for(request, rt, scope)
        launcher = servers.get(server)
        if pool is None or launcher.unavailable() or (options.tls and launcher.tls_unsupported()):
            continue
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


def parity_for_test(request: pytest.FixtureRequest, rt: Runtime) -> Iterator[Parity]:
    """The ``flask_parity`` fixture: every server of this test, started side by side."""
    node = request.node
    try:
        spec = rt.spec_for(node)
        app = rt.resolve_for(node)
        scope = rt.scope_for(node)
        names, explicit = rt.servers_for(node)
    except UsageError as exc:
        _fail(str(exc))
    pool = _pool_for(request, rt, scope)
    left_out: list[str] = []
    wanted: list[tuple[str, Callable[[], ServerHandle]]] = []
    for name in names:
        why = selection.left_out_reason(name, app, explicit)
        if why:
            left_out.append(why)
            continue
        options = rt.options_for(node, name)
        key = (spec.raw, spec.base_dir, name, options.key())
        start = functools.partial(rt.start, name, app, options)
        wanted.append((name, functools.partial(pool.get, key, start) if pool else start))
    if len(wanted) < 2:
        pytest.skip("flask_parity compares servers, but fewer than two can run here"
                    + (f": {'; '.join(left_out)}" if left_out else ""))
    # start them side by side: a parity test waits for the slowest start, not the sum
    handles: dict[str, ServerHandle] = {}
    errors: list[ServerStartupError | UsageError] = []
    with ThreadPoolExecutor(max_workers=len(wanted)) as executor:
        futures = {name: executor.submit(get) for name, get in wanted}
    for name, future in futures.items():
        problem = future.exception()
        if isinstance(problem, (ServerStartupError, UsageError)):
            errors.append(problem)
        elif problem is not None:
            raise problem
        else:
            handles[name] = future.result()
            node.stash.setdefault(HANDLES_KEY, []).append(handles[name])
    try:
        if errors:
            _fail(str(errors[0]))
        ignored = rt.settings.parity_ignore_headers
        yield Parity(handles) if ignored is None else Parity(handles, ignore_headers=ignored)
    finally:
        if pool is None:
            for handle in handles.values():
                handle.stop()


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
            warn_if_forced(handle)


def _site_file(path: str | Path | None) -> Path | None:
    """A site file given to the factory, checked now: a file that cannot be rewritten is
    a usage error before anything starts."""
    if path is None:
        return None
    from pytest_flaskserve.plugin.checks import nginx_conf

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

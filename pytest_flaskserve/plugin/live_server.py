"""``live_server`` for tests written for pytest-flask, run on every server.

pytest-flask's ``live_server`` forks the test process and serves the ``app`` fixture's
object with ``app.run()``. This one has the same interface (``url(path)``, ``start()``,
``stop()``, ``host``, ``port``, ``app``; the ``live_server_scope`` ini key; the
``--live-server-*`` and ``--no-start-live-server`` options) but is parametrized over
servers like ``flask_url``: each server builds the app in its own process, from the
``app`` fixture's import name (or the configured app spec), with the ``app`` fixture's
config applied (see ``appspec.config``). What cannot cross the process boundary is a
usage error that names it.

Defined only when pytest-flask is not active (``-p no:flask``, or not installed), so
both plugins can be installed side by side: with pytest-flask active its own fixture and
options stay as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flaskserve.errors import ServerStartupError, UsageError, hide_own_errors
from pytest_flaskserve.plugin.fixtures import HANDLES_KEY

if TYPE_CHECKING:  # the rest is imported when a test asks for live_server
    from pytest_flaskserve.appspec.grammar import AppSpec
    from pytest_flaskserve.lifecycle.supervisor import ServerHandle
    from pytest_flaskserve.plugin.session import Pool, Runtime

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

#: pytest-flask's plugin name (its ``pytest11`` entry point)
PYTEST_FLASK = "flask"
#: pytest-flask's ``live_server_scope`` values, as this plugin's server scopes
_SCOPES = {"session": "session", "package": "session", "module": "module",
           "class": "module", "function": "function"}


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> Generator[None, None, None]:
    yield
    # Every plugin is registered by now and the command line is not parsed yet: the
    # first point where pytest-flask's options can be told apart from a free name.
    if early_config.pluginmanager.has_plugin(PYTEST_FLASK):
        return
    group = parser.getgroup("flaskserve-live-server",
                            "pytest-flaskserve: live_server, as in pytest-flask")
    group.addoption("--start-live-server", action="store_true", dest="start_live_server",
                    default=True, help="start the live_server fixture's server at once "
                                       "(the default)")
    group.addoption("--no-start-live-server", action="store_false", dest="start_live_server",
                    help="do not start live_server's server: the test calls .start()")
    group.addoption("--live-server-wait", type=float, dest="live_server_wait", default=None,
                    help="seconds live_server's server may take to serve "
                         "(default: --flask-startup-timeout)")
    group.addoption("--live-server-clean-stop", action="store_true",
                    dest="live_server_clean_stop", default=True,
                    help="stop live_server's server with its graceful signal (always)")
    group.addoption("--no-live-server-clean-stop", action="store_false",
                    dest="live_server_clean_stop",
                    help="not supported: use --flask-stop-timeout")
    group.addoption("--live-server-host", dest="live_server_host", default=None,
                    help="address live_server's server listens on (default: --flask-host)")
    group.addoption("--live-server-port", type=int, dest="live_server_port", default=0,
                    help="not supported but 0: every server gets its own free port")
    parser.addini("live_server_scope", "scope of live_server's servers: session (default), "
                  "module or function", default="session")


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin(PYTEST_FLASK):
        return
    if config.option.help or getattr(config.option, "version", False):
        return
    if not hasattr(config.option, "live_server_port"):
        return  # options were not added (the plugin was loaded late): nothing to check
    port = config.option.live_server_port
    if port:
        raise pytest.UsageError(
            f"pytest-flaskserve: --live-server-port={port}: every server gets its own free "
            "port (several run at once); read live_server.port or use live_server.url()")
    if not config.option.live_server_clean_stop:
        raise pytest.UsageError(
            "pytest-flaskserve: --no-live-server-clean-stop: every server stops with its "
            "graceful signal and is killed after --flask-stop-timeout seconds; set that "
            "instead")
    scope = config.getini("live_server_scope")
    if scope not in _SCOPES:
        raise pytest.UsageError(f"pytest-flaskserve: live_server_scope = {scope}: use one of "
                                f"{', '.join(_SCOPES)}")
    config.addinivalue_line("markers", "options(**config): app config for live_server "
                                       "(keys upper-cased), as in pytest-flask")
    config.pluginmanager.register(LiveServerFixture(), "flaskserve-live-server")


class LiveServer:
    """One server of this test, with pytest-flask's ``live_server`` interface.

    ``url("/path")`` is the full URL; ``start()`` starts the server if it is not running
    (with ``--no-start-live-server`` the test calls it); ``stop()`` stops it (a shared
    server is started again for the next test that needs it). ``server`` is the
    server's name, ``handle`` the :class:`ServerHandle` once started, ``app`` the ``app``
    fixture's object (in the test process; the servers build their own).
    """

    def __init__(self, *, server: str, host: str, app: Any,
                 acquire: Callable[[], ServerHandle]) -> None:
        self.server = server
        self.host = host
        self.app = app
        self.handle: ServerHandle | None = None
        self._acquire = acquire

    def start(self) -> None:
        if self.handle is None or not self.handle.is_running():
            self.handle = self._acquire()

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.stop()
            self.handle = None

    def _started(self) -> ServerHandle:
        if self.handle is None:
            raise RuntimeError(f"live_server ({self.server}) is not running: call "
                               "live_server.start() first")
        return self.handle

    @property
    def port(self) -> int:
        return self._started().port

    def url(self, url: str = "") -> str:
        """The server's base URL followed by ``url`` (``url("/login")``)."""
        return self._started().url + url

    def __repr__(self) -> str:
        where = self.handle.url if self.handle is not None else "(not started)"
        return f"<LiveServer {self.server} listening at {where}>"


def _app_fixture(request: pytest.FixtureRequest) -> Any:
    """The test's ``app`` fixture value, or None when there is no such fixture."""
    try:
        return request.getfixturevalue("app")
    except pytest.FixtureLookupError as exc:
        if exc.argname == "app":
            return None
        raise


def _spec(rt: Runtime, node: Any, app: Any) -> AppSpec:
    """The app the servers build: the configured one, else the ``app`` fixture's module."""
    from pytest_flaskserve.appspec.grammar import parse_spec

    if (app is None or node.get_closest_marker("flask_app") is not None
            or (rt.settings.app and rt.settings.sources.get("app") != "default")):
        return rt.spec_for(node)
    import_name = getattr(app, "import_name", "")
    where = f"live_server: the app fixture's app.import_name {import_name!r}"
    if not import_name or import_name == "__main__":
        raise UsageError(f"{where} is no module the servers can import; name the app "
                         "with --flask-app=module:create_app()")
    return parse_spec(import_name, rt.rootdir, source=where)


def _apply_options_marker(request: pytest.FixtureRequest, app: Any) -> None:
    """pytest-flask's ``@pytest.mark.options(key=value)``: ``app.config["KEY"]`` for this
    test (nearest marker last, undone after the test)."""
    marks = list(request.node.iter_markers("options"))
    if marks:
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        for mark in reversed(marks):
            for key, value in mark.kwargs.items():
                monkeypatch.setitem(app.config, key.upper(), value)


class LiveServerFixture:
    """Holds the fixtures; registered only when pytest-flask is not active."""

    @pytest.fixture(autouse=True)
    def _flaskserve_options_marker(self, request: pytest.FixtureRequest) -> None:
        if "app" in request.fixturenames:
            _apply_options_marker(request, request.getfixturevalue("app"))

    @pytest.fixture
    def live_server(self, request: pytest.FixtureRequest, flask_server_name: str,
                    _flaskserve_runtime: Runtime) -> Iterator[LiveServer]:
        """pytest-flask's ``live_server`` on this test's server: ``live_server.url("/")``."""
        from pytest_flaskserve.appspec import config as app_config

        rt, node, cfg = _flaskserve_runtime, request.node, request.config
        app = _app_fixture(request)
        error: str | None = None
        try:
            if app is not None and not hasattr(app, "config"):
                raise UsageError(f"live_server: the app fixture gave {app!r}, not a Flask app")
            spec = _spec(rt, node, app)
            options = rt.options_for(node, flask_server_name)
            resolved = rt.resolve(spec, dict(options.env))
            if app is not None:
                if app.config.get("LIVESERVER_PORT"):
                    raise UsageError("live_server: app.config['LIVESERVER_PORT']: every "
                                     "server gets its own free port; read live_server.port")
                _apply_options_marker(request, app)
                config = app_config.config_changes(app, "live_server",
                                                   dict(resolved.config_reprs))
                config.update(app_config.decode(options.config))
                options = dataclasses.replace(
                    options, config=app_config.encode(config),
                    instance_path=options.instance_path or str(app.instance_path))
            marked = node.get_closest_marker("flask_scope") is not None
            scope = rt.scope_for(node) if marked else _SCOPES[cfg.getini("live_server_scope")]
        except UsageError as exc:
            error = str(exc)
        if error is not None:
            pytest.fail(error, pytrace=False)
        host = cfg.option.live_server_host or rt.settings.host
        start_config = dataclasses.replace(
            rt.start_config(startup_timeout=cfg.option.live_server_wait), host=host)
        key = (spec.raw, spec.base_dir, flask_server_name, options.key(), host)
        pool: Pool | None = (rt.session_pool if scope == "session" else
                             request.getfixturevalue("_flaskserve_module_pool")
                             if scope == "module" else None)

        def start() -> ServerHandle:
            return rt.start(flask_server_name, resolved, options, start_config)

        def acquire() -> ServerHandle:
            try:
                handle = pool.get(key, start) if pool is not None else start()
            except ServerStartupError as exc:
                pytest.fail(str(exc), pytrace=False)
            node.stash.setdefault(HANDLES_KEY, []).append(handle)
            return handle

        server = LiveServer(server=flask_server_name, host=host, app=app, acquire=acquire)
        if cfg.option.start_live_server:
            server.start()
        try:
            yield server
        finally:
            if pool is None:
                server.stop()

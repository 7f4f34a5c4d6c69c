"""What ``live_server`` (:mod:`.live_server`) does when a test asks for it: the
:class:`LiveServer` on this test's server, built from the ``app`` fixture's import name and
config (or the configured app spec). Imported on first use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flaskserve.errors import ServerStartupError, UsageError, hide_own_errors
from pytest_flaskserve.plugin.fixtures import HANDLES_KEY
from pytest_flaskserve.plugin.live_server import SCOPES

if TYPE_CHECKING:
    from pytest_flaskserve.appspec.grammar import AppSpec
    from pytest_flaskserve.lifecycle.supervisor import ServerHandle
    from pytest_flaskserve.plugin.session import Pool, Runtime

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


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


def apply_options_marker(request: pytest.FixtureRequest, app: Any) -> None:
    """pytest-flask's ``@pytest.mark.options(key=value)``: ``app.config["KEY"]`` for this
    test (nearest marker last, undone after the test)."""
    marks = list(request.node.iter_markers("options"))
    if marks:
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        for mark in reversed(marks):
            for key, value in mark.kwargs.items():
                monkeypatch.setitem(app.config, key.upper(), value)


def live_server_for_test(request: pytest.FixtureRequest, flask_server_name: str,
                         rt: Runtime) -> Iterator[LiveServer]:
    """The ``live_server`` fixture's value for this test, stopped after it unless shared."""
    from pytest_flaskserve.appspec import config as app_config
    from pytest_flaskserve.plugin import selection

    node, cfg = request.node, request.config
    app = _app_fixture(request)
    error: str | None = None
    try:
        if app is not None and not hasattr(app, "config"):
            raise UsageError(f"live_server: the app fixture gave {app!r}, not a Flask app")
        spec = _spec(rt, node, app)
        options = rt.options_for(node, flask_server_name)
        resolved = rt.resolve(spec, dict(options.env))
        # the app is known only now (from the app fixture), so a server it has no entry
        # point for (app-run without a __main__) is left out here, as collection would
        left_out = selection.left_out_reason(flask_server_name, resolved,
                                             rt.servers_for(node)[1])
        if app is not None:
            if app.config.get("LIVESERVER_PORT"):
                raise UsageError("live_server: app.config['LIVESERVER_PORT']: every "
                                 "server gets its own free port; read live_server.port")
            apply_options_marker(request, app)
            config = app_config.config_changes(app, "live_server",
                                               dict(resolved.config_reprs))
            config.update(app_config.decode(options.config))
            options = dataclasses.replace(
                options, config=app_config.encode(config),
                instance_path=options.instance_path or str(app.instance_path))
        marked = node.get_closest_marker("flask_scope") is not None
        scope = rt.scope_for(node) if marked else SCOPES[cfg.getini("live_server_scope")]
    except UsageError as exc:
        error = str(exc)
    if error is not None:
        pytest.fail(error, pytrace=False)
    if left_out:
        pytest.skip(left_out)
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
        failure: str | None = None
        try:
            handle = pool.get(key, start) if pool is not None else start()
        except (ServerStartupError, UsageError) as exc:
            failure = str(exc)
        if failure is not None:  # outside the except: the report shows it once, unchained
            pytest.fail(failure, pytrace=False)
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

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

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_flaskserve.errors import hide_own_errors

if TYPE_CHECKING:  # the rest is imported when a test asks for live_server
    from pytest_flaskserve.plugin.live_server_build import LiveServer
    from pytest_flaskserve.plugin.session import Runtime

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

#: pytest-flask's plugin name (its ``pytest11`` entry point)
PYTEST_FLASK = "flask"
#: pytest-flask's ``live_server_scope`` values, as this plugin's server scopes
SCOPES = {"session": "session", "package": "session", "module": "module",
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
    if scope not in SCOPES:
        raise pytest.UsageError(f"pytest-flaskserve: live_server_scope = {scope}: use one of "
                                f"{', '.join(SCOPES)}")
    config.addinivalue_line("markers", "options(**config): app config for live_server "
                                       "(keys upper-cased), as in pytest-flask")
    config.pluginmanager.register(LiveServerFixture(), "flaskserve-live-server")


class LiveServerFixture:
    """Holds the fixtures; registered only when pytest-flask is not active."""

    @pytest.fixture(autouse=True)
    def _flaskserve_options_marker(self, request: pytest.FixtureRequest) -> None:
        if "app" in request.fixturenames:
            from pytest_flaskserve.plugin.live_server_build import apply_options_marker

            apply_options_marker(request, request.getfixturevalue("app"))

    @pytest.fixture
    def live_server(self, request: pytest.FixtureRequest, flask_server_name: str,
                    _flaskserve_runtime: Runtime) -> Iterator[LiveServer]:
        """pytest-flask's ``live_server`` on this test's server: ``live_server.url("/")``."""
        from pytest_flaskserve.plugin.live_server_build import live_server_for_test

        yield from live_server_for_test(request, flask_server_name, _flaskserve_runtime)

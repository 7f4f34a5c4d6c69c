"""pytest hooks only: options, markers, parametrization, report header and summary.

Loading this module imports only the option and marker tables; the settings are loaded
when the run sets anything, and what starts, waits for or stops a server is imported
when a test first asks for one.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flaskserve.errors import FlaskServeError, UsageError
from pytest_flaskserve.plugin import options
from pytest_flaskserve.plugin.fixtures import (
    HANDLES_KEY,
    RUNTIME_KEY,
    SETTINGS_KEY,
    runtime,
    settings,
)

if TYPE_CHECKING:
    from pytest_flaskserve.plugin.session import Runtime

SERVER_FIXTURE = "flask_server_name"
#: every fixture that serves depends on it
RUNTIME_FIXTURE = "_flaskserve_runtime"
#: where every process we start is registered (loaded by the first start)
PROCESS_REGISTRY = "pytest_flaskserve.lifecycle.registry"

#: The fixtures, and the hooks of the features beyond one server per test, registered
#: with this plugin (and disabled with it by ``-p no:flaskserve``; one alone by its name,
#: ``-p no:pytest_flaskserve.plugin.live_server``).
PARTS = ("pytest_flaskserve.plugin.fixtures", "pytest_flaskserve.plugin.features",
         "pytest_flaskserve.plugin.live_server")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the parts as this plugin is registered. Not through ``pytest_plugins``:
    pytest first looks each name of that list up among every installed distribution's
    entry points, ~2.5 ms a name with 100 distributions, on every run."""
    for name in PARTS:
        if not pluginmanager.is_blocked(name) and pluginmanager.get_plugin(name) is None:
            pluginmanager.register(importlib.import_module(name), name)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def _usage(exc: FlaskServeError) -> pytest.UsageError:
    return pytest.UsageError(f"pytest-flaskserve: {exc}")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    for text in options.MARKERS.values():
        config.addinivalue_line("markers", text)
    if config.option.help or getattr(config.option, "version", False):
        return
    if options.sets_anything(config):  # else every setting is its default: load on first use
        try:
            settings(config)
        except UsageError as exc:
            raise _usage(exc) from None
    _stop_on_sigterm()


def _stop_all(grace: float | None = None) -> None:
    """Stop every server process still running; nothing to do (and nothing imported)
    when no server was ever started, since each start imports the registry."""
    registry = sys.modules.get(PROCESS_REGISTRY)
    if registry is not None:
        if grace is None:
            registry.stop_all()
        else:
            registry.stop_all(grace=grace)


def _stop_on_sigterm() -> None:
    """pytest has no SIGTERM handling: stop our servers, then die of SIGTERM as before."""
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def handler(signum: int, frame: Any) -> None:
            _stop_all(grace=0.5)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if SERVER_FIXTURE in metafunc.fixturenames:
        from pytest_flaskserve.plugin import collection

        collection.parametrize(metafunc, runtime(metafunc.config), SERVER_FIXTURE)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    loaded = config.stash.get(SETTINGS_KEY, None)  # absent: every setting is its default
    serving = [item for item in items if RUNTIME_FIXTURE in getattr(item, "fixturenames", ())]
    if not serving and not (loaded is not None and loaded.smoke):
        return  # no test asks for a server: nothing to resolve or check
    from pytest_flaskserve.plugin import collection

    try:
        collection.check(runtime(config), items, [
            item for item in serving if SERVER_FIXTURE in getattr(item, "fixturenames", ())])
    except UsageError as exc:
        raise _usage(exc) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    loaded = config.stash.get(SETTINGS_KEY, None)
    if loaded is None:
        return []  # the run sets nothing and names no app: the plugin has nothing to say
    from pytest_flaskserve.plugin.report import header_lines

    return header_lines(loaded, config.get_verbosity(), lambda: runtime(config))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    handles = item.stash.get(HANDLES_KEY, [])
    if handles:
        from pytest_flaskserve.plugin.report import add_server_sections

        add_server_sections(report, call.when, handles)
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rt: Runtime | None = config.stash.get(RUNTIME_KEY, None)
    if rt is None or not rt.records:
        return
    from pytest_flaskserve.plugin.report import summary_lines

    lines = summary_lines(rt, config.get_verbosity())
    if lines:
        terminalreporter.write_sep("-", "flaskserve servers")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    rt = session.config.stash.get(RUNTIME_KEY, None)
    if rt is not None:
        rt.close()
    _stop_all()


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_all()

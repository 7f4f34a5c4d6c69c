"""Hooks of the features beyond one server per test: the smoke suite (``--flask-smoke``,
:mod:`smoke`), the test-by-server matrix at the end of the run, with
``--flask-report=PATH`` for the same as JSON (:mod:`pytest_flaskserve.matrix`), and
pytest-playwright's fixtures aimed at this test's server when that plugin is active
(:mod:`browser_fixtures`). Loaded
by the core plugin as it is registered (so ``-p no:flaskserve`` removes it too);
what they do is imported only when a run uses them.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flaskserve.errors import UsageError
from pytest_flaskserve.plugin.fixtures import RUNTIME_KEY, SETTINGS_KEY, runtime, settings

if TYPE_CHECKING:
    from pytest_flaskserve.matrix import Matrix

LISTENER_NAME = "flaskserve-matrix"
#: pytest-playwright's plugin name (its ``pytest11`` entry point)
PYTEST_PLAYWRIGHT = "playwright"
SERVER_PARAM = "flask_server_name"
DATA_KEY = pytest.StashKey[dict[str, Any]]()


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin(PYTEST_PLAYWRIGHT):
        # registered after pytest-playwright, so these fixtures wrap its own
        from pytest_flaskserve.plugin import browser_fixtures

        config.pluginmanager.register(browser_fixtures, "flaskserve-playwright")
    if config.option.help or getattr(config.option, "version", False):
        return
    config.pluginmanager.register(MatrixListener(), LISTENER_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    listener = config.pluginmanager.get_plugin(LISTENER_NAME)
    if listener is not None:
        config.pluginmanager.unregister(listener)


# -- smoke suite -------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Put the smoke items first, before -k/-m deselection sees the list."""
    loaded = config.stash.get(SETTINGS_KEY, None)  # absent: every setting is its default
    if loaded is None or not loaded.smoke:
        return
    from pytest_flaskserve.plugin import smoke

    try:
        items[:0] = smoke.collect_items(session, runtime(config))
    except UsageError as exc:
        raise pytest.UsageError(f"pytest-flaskserve: {exc}") from None


# -- matrix ------------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    callspec = getattr(item, "callspec", None)
    if getattr(item, "flaskserve_cell", None) is not None or (
            callspec is not None and SERVER_PARAM in callspec.params):
        from pytest_flaskserve.matrix import cell_of

        cell = cell_of(item, SERVER_PARAM)
        if cell is not None:
            # a plain attribute: pytest-xdist serializes it to the controller with the report
            report.flaskserve_cell = list(cell)
    return report


class MatrixListener:
    """Collects report outcomes; registered per session, in the process that reports
    (the only one under xdist that sees every test is the controller)."""

    def __init__(self) -> None:
        self.matrix: Matrix | None = None  # made at the first report of a server's test
        self.worker_runs: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "flaskserve_cell", None):
            if self.matrix is None:
                from pytest_flaskserve.matrix import Matrix

                self.matrix = Matrix()
            self.matrix.add(report)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: take each worker's server runs for the matrix."""
        output = getattr(node, "workeroutput", None) or {}
        runs = output.get("flaskserve_runs")
        if runs:
            self.worker_runs.extend(json.loads(runs))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    loaded = config.stash.get(SETTINGS_KEY, None)  # absent: every setting is its default
    listener = config.pluginmanager.get_plugin(LISTENER_NAME)
    if listener is None:
        return
    if loaded is not None and loaded.smoke:
        from pytest_flaskserve.plugin import smoke

        smoke.close(config)
    rt = config.stash.get(RUNTIME_KEY, None)
    if rt is None and listener.matrix is None and not listener.worker_runs \
            and (loaded is None or loaded.report is None):
        return  # no server was used: nothing to show, nothing to import
    from pytest_flaskserve.plugin.report import finish_matrix

    data = finish_matrix(config, rt, listener.matrix, listener.worker_runs, exitstatus)
    if data is not None:
        config.stash[DATA_KEY] = data


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    data = config.stash.get(DATA_KEY, None)
    if data is not None:
        from pytest_flaskserve.plugin.report import matrix_lines

        lines = matrix_lines(data, settings(config))
        if lines:
            terminalreporter.write_sep("-", "flaskserve matrix")
            for line in lines:
                terminalreporter.write_line(line)

"""Deployment parity: hooks and the ``flask_parity`` fixture.

Loaded by ``plugin.py`` through ``pytest_plugins`` (so ``-p no:flaskserve`` removes it
too). Three features, each in its own library module:

* ``--flask-smoke``: the built-in smoke suite, collected here as ``smoke::CHECK[SERVER]``
  items with no test file needed (:mod:`smoke`);
* ``flask_parity``: one request to every server, answers compared (:mod:`parity`);
* the test-by-server matrix at the end of the run, and ``--flask-report=PATH`` for
  the same as JSON (:mod:`matrix`).

Their options are rows of the one table in :mod:`options`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.errors import ServerStartupError, UsageError, hide_own_errors
from pytest_flaskserve.lifecycle.supervisor import ServerHandle
from pytest_flaskserve.matrix import Matrix, cell_of, has_content, render, run_dicts
from pytest_flaskserve.parity.compare import Parity
from pytest_flaskserve.plugin import selection
from pytest_flaskserve.plugin.fixtures import HANDLES_KEY, RUNTIME_KEY, Pool, Runtime
from pytest_flaskserve.plugin.options import SMOKE_WORKERS
from pytest_flaskserve.plugin.smoke import (
    SMOKE_KEY,
    SmokeState,
    collect_items,
    make_plan,
)

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


MATRIX_KEY = pytest.StashKey[Matrix]()
DATA_KEY = pytest.StashKey[dict[str, Any]]()
LISTENER_NAME = "flaskserve-matrix"


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or getattr(config.option, "version", False):
        return
    matrix = config.stash[MATRIX_KEY] = Matrix()
    config.pluginmanager.register(MatrixListener(matrix), LISTENER_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    listener = config.pluginmanager.get_plugin(LISTENER_NAME)
    if listener is not None:
        config.pluginmanager.unregister(listener)


# -- smoke suite -------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Put the smoke items first, before -k/-m deselection sees the list."""
    rt = config.stash.get(RUNTIME_KEY, None)
    if rt is None or not rt.settings.smoke:
        return
    try:
        plan = make_plan(rt, session)
    except UsageError as exc:
        raise pytest.UsageError(f"pytest-flaskserve: {exc}") from None
    settings = rt.settings
    workers = settings.smoke_workers or settings.workers or SMOKE_WORKERS
    state = SmokeState(config, rt, plan, workers=workers, exclude=settings.smoke_exclude)
    config.stash[SMOKE_KEY] = state
    items[:0] = collect_items(session, state)


# -- matrix ------------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    cell = cell_of(item)
    if cell is not None:
        # a plain attribute: pytest-xdist serializes it to the controller with the report
        report.flaskserve_cell = list(cell)
    return report


class MatrixListener:
    """Collects report outcomes; registered per session, in the process that reports
    (the only one under xdist that sees every test is the controller)."""

    def __init__(self, matrix: Matrix) -> None:
        self.matrix = matrix

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.matrix.add(report)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: take each worker's server runs for the matrix."""
        output = getattr(node, "workeroutput", None) or {}
        runs = output.get("flaskserve_runs")
        if runs:
            self.matrix.worker_runs.extend(json.loads(runs))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(SMOKE_KEY, None)
    if state is not None:
        state.close()
    rt = config.stash.get(RUNTIME_KEY, None)
    matrix = config.stash.get(MATRIX_KEY, None)
    if rt is None or matrix is None:
        return
    settings = rt.settings
    rt.session_pool.close()  # so every server's stop time is in its record
    runs = run_dicts(rt.records, rt.worker)
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput["flaskserve_runs"] = json.dumps(runs)
        return
    data = matrix.build(app=rt.settings.app, runs=runs + matrix.worker_runs,
                        exit_status=int(exitstatus), server_order=servers.names())
    config.stash[DATA_KEY] = data
    if settings.report is not None:
        try:
            settings.report.parent.mkdir(parents=True, exist_ok=True)
            settings.report.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise pytest.UsageError(f"pytest-flaskserve: cannot write --flask-report "
                                    f"{settings.report}: {exc}; choose a writable path") from None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    data = config.stash.get(DATA_KEY, None)
    rt = config.stash.get(RUNTIME_KEY, None)
    settings = rt.settings if rt is not None else None
    if data is None or not has_content(data):
        return
    terminalreporter.write_sep("-", "flaskserve matrix")
    for line in render(data):
        terminalreporter.write_line(line)
    if settings is not None and settings.report is not None:
        terminalreporter.write_line(f"flaskserve: matrix written to {settings.report}")


# -- flask_parity -------------------------------------------------------------------------
@pytest.fixture
def flask_parity(request: pytest.FixtureRequest, _flaskserve_runtime: Runtime) -> Iterator[Parity]:
    """Send one request to every server and compare status, headers and body.

    ``flask_parity.get("/")``, ``.post("/upload", body=iter([b"a", b"b"]))`` (chunked),
    ``.request("PUT", "/x", headers=..., json=...)``; a difference fails the test with a
    side-by-side table. Servers: the ``flask_servers`` marker, ``--flask-servers``, or
    every available one; shared with ``flask_server`` tests of the same options.
    """
    rt = _flaskserve_runtime
    node = request.node
    settings = rt.settings
    try:
        spec = rt.spec_for(node)
        app = rt.resolve_for(node)
        scope = rt.scope_for(node)
        names, explicit = rt.servers_for(node)
    except UsageError as exc:
        pytest.fail(str(exc), pytrace=False)
    pool: Pool | None = None
    if scope == "module":
        pool = request.getfixturevalue("_flaskserve_module_pool")
    elif scope == "session":
        pool = rt.session_pool
    handles: dict[str, ServerHandle] = {}
    left_out: list[str] = []
    wanted: list[tuple[str, Callable[[], ServerHandle]]] = []
    for name in names:
        why = selection.left_out_reason(name, app, explicit)
        if why:
            left_out.append(why)
            continue
        options = rt.options_for(node, name)
        key = (spec.raw, spec.base_dir, name, options.key())

        def start(name: str = name, options: Any = options) -> ServerHandle:
            return rt.start(name, app, options)

        def shared(key: tuple[Any, ...] = key, start: Callable[[], ServerHandle] = start
                   ) -> ServerHandle:
            return pool.get(key, start) if pool is not None else start()

        wanted.append((name, shared))
    if len(wanted) < 2:
        pytest.skip("flask_parity compares servers, but fewer than two can run here"
                    + (f": {'; '.join(left_out)}" if left_out else ""))
    # start them side by side: a parity test waits for the slowest start, not the sum
    errors: list[ServerStartupError] = []
    with ThreadPoolExecutor(max_workers=len(wanted)) as executor:
        futures = {name: executor.submit(get) for name, get in wanted}
    for name, future in futures.items():
        problem = future.exception()
        if isinstance(problem, ServerStartupError):
            errors.append(problem)
        elif problem is not None:
            raise problem
        else:
            handles[name] = future.result()
            node.stash.setdefault(HANDLES_KEY, []).append(handles[name])
    try:
        if errors:
            pytest.fail(str(errors[0]), pytrace=False)
        ignored = settings.parity_ignore_headers
        yield (Parity(handles) if ignored is None else Parity(handles, ignore_headers=ignored))
    finally:
        if pool is None:
            for handle in handles.values():
                handle.stop()

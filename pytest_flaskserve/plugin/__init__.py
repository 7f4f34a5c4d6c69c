"""pytest hooks only: options, markers, parametrization, report header and summary.

Everything that starts, waits for or stops a server lives in the library modules; this
file turns their results and errors into what pytest shows. Loading it imports neither
Flask nor any server.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Generator
from typing import Any

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import default_spec, parse_spec
from pytest_flaskserve.errors import AppImportError, FlaskServeError, UsageError
from pytest_flaskserve.lifecycle import process
from pytest_flaskserve.plugin import deploy, markers, selection
from pytest_flaskserve.plugin import settings as settings_loader
from pytest_flaskserve.plugin.fixtures import (  # noqa: F401  (fixtures are found in the plugin's namespace)
    HANDLES_KEY,
    RUNTIME_KEY,
    Runtime,
    _flaskserve_module_pool,
    _flaskserve_runtime,
    flask_http,
    flask_server,
    flask_server_factory,
    flask_server_name,
    flask_url,
    runtime,
)
from pytest_flaskserve.plugin.report import header_lines, summary_lines

SERVER_FIXTURE = "flask_server_name"

#: Feature plugins with their own fixtures and hooks, loaded with this one (and disabled
#: with it by ``-p no:flaskserve``).
pytest_plugins = ["pytest_flaskserve.plugin.reloader", "pytest_flaskserve.plugin.parity",
                  "pytest_flaskserve.plugin.app_state", "pytest_flaskserve.plugin.live_server",
                  "pytest_flaskserve.plugin.browser"]


def pytest_addoption(parser: pytest.Parser) -> None:
    settings_loader.add_options(parser)


def _usage(exc: FlaskServeError) -> pytest.UsageError:
    return pytest.UsageError(f"pytest-flaskserve: {exc}")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    for text in markers.MARKERS.values():
        config.addinivalue_line("markers", text)
    if config.option.help or getattr(config.option, "version", False):
        return
    rootdir = str(config.rootpath)
    try:
        settings = settings_loader.from_config(config, default_spec)
        rt = Runtime(settings=settings, rootdir=rootdir,
                     worker=os.environ.get("PYTEST_XDIST_WORKER", ""),
                     verbose=config.get_verbosity())
        # deployment files first: --flask-servers and --flask-server-args may name their ids
        deploy.load_settings(rt)
        for name in settings.servers or ():
            servers.get(name)
        for name, _ in settings.server_args:
            servers.get(name)
        # A spec the user named is checked now, so a typo is a usage error before any
        # test runs; the implicit wsgi.py/app.py default is resolved on first use.
        if settings.app and settings.sources["app"] != "default":
            rt.app_spec = parse_spec(settings.app, settings.app_base, source=settings.app_source)
            try:
                rt.resolve(rt.app_spec)
            except AppImportError as exc:
                rt.app_import_error = str(exc)  # unless a test's env= fixes it: see below
    except UsageError as exc:
        raise _usage(exc) from None
    config.stash[RUNTIME_KEY] = rt
    _stop_on_sigterm()


def _stop_on_sigterm() -> None:
    """pytest has no SIGTERM handling: stop our servers, then die of SIGTERM as before."""
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def handler(signum: int, frame: Any) -> None:
            process.stop_all(grace=0.5)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if SERVER_FIXTURE not in metafunc.fixturenames:
        return
    rt = metafunc.config.stash.get(RUNTIME_KEY, None)
    if rt is None:
        return
    try:
        names, explicit = rt.servers_for(metafunc.definition)
        app = None
        if any(name not in explicit and servers.get(name).needs_app_to_decide for name in names):
            try:  # with the test's env=, so the skip does not depend on where env came from
                app = rt.resolve_for(metafunc.definition)
            except UsageError:
                app = None  # reported by the fixture, with the test
    except UsageError as exc:
        # Collection must go on so the error can be reported as a usage error, once,
        # from pytest_collection_modifyitems (an exception here would be a traceback).
        rt.collection_errors.append(f"{metafunc.definition.nodeid}: {exc}")
        metafunc.parametrize(SERVER_FIXTURE, [pytest.param("invalid", id="invalid")],
                             indirect=True)
        return
    params = []
    for name in names:
        reason = selection.left_out_reason(name, app, explicit)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(name, id=name, marks=marks))
    if not params:
        params = [pytest.param("none", id="no-server", marks=[pytest.mark.skip(
            reason="no server left: the flask_servers marker and --flask-servers do not overlap")])]
    metafunc.parametrize(SERVER_FIXTURE, params, indirect=True)


_SINGLE_MARKERS = ("flask_app", "flask_scope", "flask_servers", "flask_deploy")


def _check_item_markers(item: pytest.Item, rt: Runtime) -> None:
    """Marker arguments are checked at collection, so a typo is a usage error up front."""
    for name in _SINGLE_MARKERS:
        per_node: dict[str, list[Any]] = {}
        for node, mark in item.iter_markers_with_node(name):
            per_node.setdefault(node.nodeid, []).append((mark.args, mark.kwargs))
        for nodeid, calls in per_node.items():
            if len({repr(c) for c in calls}) > 1:
                raise UsageError(f"conflicting @pytest.mark.{name} markers on {nodeid or 'the module'}: "
                                 f"{', '.join(repr(c[0]) for c in calls)}; keep one")
    app_mark = item.get_closest_marker("flask_app")
    if app_mark is not None:
        spec = parse_spec(markers.app_arg(app_mark.args, app_mark.kwargs), rt.rootdir,
                          source="@pytest.mark.flask_app")
        if SERVER_FIXTURE in getattr(item, "fixturenames", ()):
            # imported now (once per spec and env) like --flask-app's, with the variables
            # the test gives its servers: a wrong attribute is not found out at setup
            rt.resolve(spec, dict(rt.options_for(item, "").env))
    scope_mark = item.get_closest_marker("flask_scope")
    if scope_mark is not None:
        markers.scope_arg(scope_mark.args, scope_mark.kwargs)
    for mark in item.iter_markers("flask_options"):
        opts = markers.options_arg(mark.args, mark.kwargs)
        extra = opts["extra_args"]
        if isinstance(extra, dict):
            for server in extra:
                servers.get(server)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rt = config.stash.get(RUNTIME_KEY, None)
    if rt is None:
        return
    if rt.collection_errors:
        raise pytest.UsageError(f"pytest-flaskserve: {rt.collection_errors[0]}")
    if rt.app_import_error is not None and not any(
            mark.kwargs.get("env") for item in items
            for mark in item.iter_markers("flask_options")):
        # Nothing gives the servers other variables: the app fails the same way for every
        # test, so it stays a usage error before any test runs.
        raise pytest.UsageError(
            f"pytest-flaskserve: {rt.app_import_error} (imported with pytest's environment; "
            "a variable it needs can come from the shell, from .env with "
            "--flask-load-dotenv, or from @pytest.mark.flask_options(env={...}))")
    for item in items:
        if SERVER_FIXTURE not in getattr(item, "fixturenames", ()):
            continue
        try:
            _check_item_markers(item, rt)
        except UsageError as exc:
            raise pytest.UsageError(f"pytest-flaskserve: {item.nodeid}: {exc}") from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    rt = config.stash.get(RUNTIME_KEY, None)
    if rt is None:
        return []
    return header_lines(rt, config.get_verbosity())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    handles = item.stash.get(HANDLES_KEY, [])
    if not handles:
        return report
    if call.when == "call":
        for h in handles:
            if h.stop_result is None and not h.is_running():
                died = (f"{h.server} died during the test ({process.describe_exit(h.exit_code)}); "
                        f"command: {h.command}\nlast lines of {h.log_path}:\n{h.log_tail()}")
                if report.passed:
                    report.outcome = "failed"
                    report.longrepr = died
                else:
                    report.sections.append((f"flask server died: {h.server}", died))
    if report.failed:
        for h in handles:
            report.sections.append((f"flask server log: {h.server} ({h.log_path})", h.log_tail()))
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rt = config.stash.get(RUNTIME_KEY, None)
    if rt is None or not rt.records:
        return
    lines = summary_lines(rt, config.get_verbosity())
    if lines:
        terminalreporter.write_sep("-", "flaskserve servers")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    rt = session.config.stash.get(RUNTIME_KEY, None)
    if rt is not None:
        rt.close()
    process.stop_all()


def pytest_unconfigure(config: pytest.Config) -> None:
    process.stop_all()

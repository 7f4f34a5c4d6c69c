"""What collection does for tests that run on servers: one instance per server (with a
skip and its reason for a server that cannot run the app), and every marker and the
named app checked before any test runs, so a typo is a usage error up front. Imported
by the hooks only when a collected test asks for a server.
"""

from __future__ import annotations

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.plugin import markers, selection
from pytest_flaskserve.plugin.session import Runtime

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


def parametrize(metafunc: pytest.Metafunc, rt: Runtime, server_fixture: str) -> None:
    """One test instance per server the test runs on, each with the server's name as id."""
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
        metafunc.parametrize(server_fixture, [pytest.param("invalid", id="invalid")],
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
    metafunc.parametrize(server_fixture, params, indirect=True)


def check(rt: Runtime, items: list[pytest.Item], parametrized: list[pytest.Item]) -> None:
    """Usage errors found in the collected ``items`` (``parametrized``: those that run
    once per server), raised as :class:`UsageError` before any test runs."""
    rt.check_named_app()  # the app the user named: a typo is a usage error now
    if rt.collection_errors:
        raise UsageError(rt.collection_errors[0])
    if rt.app_import_error is not None and not any(
            mark.kwargs.get("env") for item in items
            for mark in item.iter_markers("flask_options")):
        # Nothing gives the servers other variables: the app fails the same way for every
        # test, so it stays a usage error before any test runs.
        raise UsageError(
            f"{rt.app_import_error} (imported with pytest's environment; "
            "a variable it needs can come from the shell, from .env with "
            "--flask-load-dotenv, or from @pytest.mark.flask_options(env={...}))")
    for item in parametrized:
        try:
            markers.check_item(item, rt)
        except UsageError as exc:
            raise UsageError(f"{item.nodeid}: {exc}") from None

"""live_server for tests written for pytest-flask: the same file runs under pytest-flask
and, with pytest-flask disabled, on every server; options that make no sense here are
usage errors naming the replacement."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from conftest import copy_example_tests

PYTEST_INI = "[pytest]\npythonpath = .\n"


@pytest.fixture
def project(pytester: pytest.Pytester, examples: Path) -> pytest.Pytester:
    """The examples, with pytest-flask's usual layout: the app importable from the root."""
    (pytester.path / "pytest.ini").write_text(PYTEST_INI)
    copy_example_tests("live_server_tests", pytester.path)
    return pytester


def test_pytest_flask_file_runs_unchanged_on_every_server(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("live_server_tests", "-v")
    # three live_server tests on the 7 default servers, the app-only test once, and the
    # README's native version of one of them on the 7 servers
    result.assert_outcomes(passed=29)
    result.stdout.fnmatch_lines(["*test_page_has_the_test_config?app-run? PASSED*",
                                 "*test_page_has_the_test_config?gunicorn? PASSED*"])


def test_pytest_flask_keeps_its_own_live_server(project: pytest.Pytester) -> None:
    if importlib.util.find_spec("pytest_flask") is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs pytest-flask (the test extra)")
        pytest.skip("pip install pytest-flask")
    result = project.runpytest_subprocess("live_server_tests", "-p", "flask", "-v",
                                          "--live-server-port=0")
    # one live server (pytest-flask's app.run() in a fork); the native file on 7 servers
    result.assert_outcomes(passed=11)
    result.stdout.fnmatch_lines(["*test_page_has_the_test_config PASSED*"])


def test_start_stop_scope_and_no_app_fixture(project: pytest.Pytester) -> None:
    (project.path / "pytest.ini").write_text(PYTEST_INI + "live_server_scope = function\n")
    project.makepyfile(test_inner="""
        import pytest, requests

        PIDS = {}

        def test_not_started(live_server):
            assert live_server.handle is None
            with pytest.raises(RuntimeError, match="call live_server.start"):
                live_server.url()
            live_server.start()
            assert requests.get(live_server.url("/"), timeout=10).text == "Hello, World!"
            first = live_server.handle.pid
            live_server.stop()
            assert live_server.handle is None
            live_server.start()
            assert live_server.handle.pid != first
            assert repr(live_server).startswith(f"<LiveServer {live_server.server} listening at http")
            PIDS.setdefault(live_server.server, []).append(live_server.handle.pid)

        def test_function_scope_is_a_fresh_server(live_server):
            live_server.start()
            assert live_server.app is None  # no app fixture: --flask-app is served
            assert live_server.handle.pid not in PIDS[live_server.server]
    """)
    result = project.runpytest_subprocess("test_inner.py", "--flask-app=hello:app",
                                          "--no-start-live-server",
                                          "--flask-servers=flask-run,gunicorn")
    result.assert_outcomes(passed=4)


def test_config_that_cannot_cross_is_named(project: pytest.Pytester) -> None:
    project.makepyfile(test_inner="""
        import datetime, pytest
        from notes import create_app

        @pytest.fixture
        def app():
            app = create_app({"TESTING": True})
            app.config["STARTS"] = datetime.date(2026, 1, 1)
            app.config["PERMANENT_SESSION_LIFETIME"] = datetime.timedelta(minutes=5)
            return app

        def test_x(live_server):
            pass
    """)
    result = project.runpytest_subprocess("test_inner.py", "--flask-servers=waitress")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*live_server: app.config?'STARTS'? (datetime.date(2026, 1, 1) is a datetime.date) "
        "cannot reach servers in other processes*"])
    # a timedelta Flask also reads as seconds crosses as seconds, so it is not named
    assert "PERMANENT_SESSION_LIFETIME" not in result.stdout.str()


@pytest.mark.parametrize("args, message", [
    (["--live-server-port=5000"], "--live-server-port=5000: every server gets its own free "
                                  "port (several run at once); read live_server.port"),
    (["--no-live-server-clean-stop"], "--no-live-server-clean-stop: every server stops with "
                                      "its graceful signal and is killed after "
                                      "--flask-stop-timeout"),
    (["-o", "live_server_scope=forever"], "live_server_scope = forever: use one of session"),
])
def test_options_without_a_meaning_here_are_usage_errors(project: pytest.Pytester,
                                                         args: list[str], message: str) -> None:
    project.makepyfile(test_inner="def test_x(live_server):\n    pass\n")
    result = project.runpytest_subprocess("test_inner.py", "--flask-app=hello:app", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: pytest-flaskserve: {message}" in result.stderr.str()


def test_values_the_servers_app_sets_itself_need_not_cross(project: pytest.Pytester) -> None:
    project.makepyfile(engine_app="""
        from flask import Flask, jsonify

        class NullPool:
            pass

        def create_app(test_config=None):
            app = Flask(__name__)
            app.config["ENGINE_OPTIONS"] = {"poolclass": NullPool}  # set by the app itself
            app.config.from_mapping(test_config or {})

            @app.get("/")
            def index():
                return jsonify(pool=app.config["ENGINE_OPTIONS"]["poolclass"].__name__,
                               title=app.config.get("TITLE"))

            return app
    """, test_inner="""
        import pytest, requests
        from engine_app import create_app

        @pytest.fixture(scope="session")
        def app():
            return create_app({"TITLE": "from the fixture"})

        def test_x(live_server):
            got = requests.get(live_server.url("/"), timeout=10).json()
            assert got == {"pool": "NullPool", "title": "from the fixture"}
    """)
    result = project.runpytest_subprocess("test_inner.py", "--flask-servers=waitress,uwsgi")
    result.assert_outcomes(passed=2)


def test_a_server_without_an_entry_point_for_the_fixture_s_app_is_left_out(
        project: pytest.Pytester) -> None:
    """The app comes from the ``app`` fixture (flaskr's layout: a package with a factory
    and no ``__main__``), so app-run is left out when the test runs, as collection leaves
    it out for a named app; named explicitly, its failure is reported once."""
    project.mkpydir("made_by_factory")
    (project.path / "made_by_factory" / "__init__.py").write_text(
        "from flask import Flask\n\ndef create_app():\n    app = Flask(__name__)\n"
        "    app.get('/')(lambda: 'made')\n    return app\n")
    project.makepyfile(test_inner="""
        import pytest, requests
        from made_by_factory import create_app

        @pytest.fixture
        def app():
            return create_app()

        def test_x(live_server):
            assert requests.get(live_server.url("/"), timeout=10).text == "made"
    """)
    result = project.runpytest_subprocess("test_inner.py", "-rs",
                                          "--flask-servers=app-run,waitress,gunicorn")
    result.assert_outcomes(errors=1, passed=2)  # named explicitly: app-run fails to start
    out = result.stdout.str()
    assert out.count("  command: ") == 1, out  # the report, once
    assert "During handling of the above exception" not in out, out
    result = project.runpytest_subprocess("test_inner.py", "-rs", "-p", "no:randomly")
    result.assert_outcomes(passed=6, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*app-run*__main__*"])

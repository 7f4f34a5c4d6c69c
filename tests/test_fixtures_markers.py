"""Fixtures, markers and options, through an inner pytest run with real servers."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_handle_api(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import re
        import requests

        def test_handle(flask_server, flask_url):
            h = flask_server
            assert h.url == flask_url == str(h)
            assert re.fullmatch(r"http://127\\.0\\.0\\.1:\\d+", h.url)
            assert h + "/ping" == h.url + "/ping"
            assert requests.get(h + "/ping", timeout=10).json() == {"pong": "ok"}
            assert h.server.split("-")[0] in h.command
            assert h.pid > 0 and h.is_running()
            assert h.log_path.exists()
            assert isinstance(h.read_log(), str)

        def test_factory_and_stop(flask_server_factory):
            h = flask_server_factory("waitress", "hello:app")
            assert requests.get(h.url, timeout=10).text == "Hello, World!"
            line = h.wait_for_log("Serving on", timeout=10)
            assert "127.0.0.1" in line
            code = h.stop()
            assert code is not None and not h.is_running()
            assert h.stop() == code  # idempotent, one source of truth

        def test_flask_http_session(flask_http):
            assert flask_http.get("/ping").json() == {"pong": "ok"}

        def test_any_client_works(flask_url):
            import httpx
            with httpx.Client(base_url=flask_url) as client:
                assert client.get("/ping").json() == {"pong": "ok"}
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app",
                                           "--flask-servers=flask-run,gunicorn,uwsgi")
    result.assert_outcomes(passed=10)


def test_servers_marker_cli_and_k(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.flask_servers("gunicorn", "waitress")
        def test_marked(flask_server):
            assert flask_server.server in ("gunicorn", "waitress")

        @pytest.mark.flask_servers("gunicorn", "waitress")
        class TestClass:
            def test_in_class(self, flask_url):
                pass

        def test_unmarked(flask_url):
            pass

        def test_no_server():
            pass
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "-v")
    result.assert_outcomes(passed=2 + 2 + 7 + 1)
    result.stdout.fnmatch_lines(["*test_marked?gunicorn? PASSED*", "*test_marked?waitress? PASSED*",
                                 "*TestClass::test_in_class?waitress? PASSED*",
                                 "*test_unmarked?uwsgi? PASSED*"])
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "-v", "-k", "gunicorn")
    result.assert_outcomes(passed=3)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-servers=waitress")
    result.assert_outcomes(passed=3 + 1)


def test_scopes_share_or_renew_servers(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import pytest
        PIDS = {}

        def test_a(flask_server):
            PIDS["a"] = flask_server.pid

        def test_b(flask_server):
            assert flask_server.pid == PIDS["a"]  # session scope: shared

        @pytest.mark.flask_scope("function")
        def test_c(flask_server):
            assert flask_server.pid != PIDS["a"]
            PIDS["c"] = flask_server.pid

        @pytest.mark.flask_scope("function")
        def test_d(flask_server):
            assert flask_server.pid != PIDS["c"]

        def test_e_replaced_after_death(flask_server):
            flask_server.stop()  # a deliberate stop, not a failure

        def test_f(flask_server):
            assert flask_server.is_running() and flask_server.pid != PIDS["a"]
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-servers=flask-run")
    result.assert_outcomes(passed=6)


def test_module_scope_option(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(
        test_one="""
            PIDS = []
            def test_a(flask_server):
                PIDS.append(flask_server.pid)
            def test_b(flask_server):
                assert flask_server.pid == PIDS[0]
                open("pid_one", "w").write(str(flask_server.pid))
        """,
        test_two="""
            def test_c(flask_server):
                assert str(flask_server.pid) != open("pid_one").read()
        """,
    )
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-servers=waitress",
                                           "--flask-scope=module", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_options_marker_workers_and_extra_args(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import psutil
        import pytest

        @pytest.mark.flask_servers("gunicorn", "uwsgi")
        @pytest.mark.flask_options(workers=3, extra_args={"gunicorn": ["--timeout", "7"]})
        def test_workers(flask_server):
            # ready means one worker answered; the others boot right after it
            import time
            deadline = time.monotonic() + 10
            while len(psutil.Process(flask_server.pid).children()) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(psutil.Process(flask_server.pid).children()) == 3
            if flask_server.server == "gunicorn":
                assert "--timeout 7" in flask_server.command

        @pytest.mark.flask_servers("waitress")
        @pytest.mark.flask_app("envapp:app")
        @pytest.mark.flask_options(threads=2, env={"GREETING_SOURCE": "marker"})
        def test_threads_and_env(flask_server):
            import requests
            assert "--threads=2" in flask_server.command
            env = requests.get(flask_server.url, timeout=10).json()  # what the app sees
            assert env["GREETING_SOURCE"] == "marker"
            assert env["FLASK_SKIP_DOTENV"] == "1"
            assert "FLASK_RUN_FROM_CLI" not in env
    """)
    pytester.makepyfile(envapp="""
        import os
        from flask import Flask
        app = Flask(__name__)
        @app.get("/")
        def env():
            return dict(os.environ)
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app")
    result.assert_outcomes(passed=3)


def test_cli_and_ini_options(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makeini("""
        [pytest]
        flask_app = hello:app
        flask_workers = 2
        flask_server_args =
            gunicorn=--timeout 9
    """)
    pytester.makepyfile(test_inner="""
        import time
        import psutil
        def test_x(flask_server):
            assert "--workers 2" in flask_server.command
            # ready means one worker answered; give the second a moment to boot
            deadline = time.monotonic() + 10
            while len(psutil.Process(flask_server.pid).children()) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(psutil.Process(flask_server.pid).children()) == 2
            assert "--timeout 9" in flask_server.command
    """)
    result = pytester.runpytest_subprocess("--flask-servers=gunicorn")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--flask-servers=gunicorn", "--flask-workers=1")
    result.assert_outcomes(failed=1)  # the flag beats the ini key


def test_header_names_app_source_and_commands(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-app=factory_pkg:create_app('test')", "-v",
                                           "--flask-servers=gunicorn,waitress,uwsgi")
    result.stdout.fnmatch_lines([
        "flaskserve: app factory_pkg:create_app('test') (from --flask-app)",
        "flaskserve: servers gunicorn, waitress, uwsgi (from --flask-servers)*",
        "*gunicorn: * -m gunicorn --bind 127.0.0.1:{port} *factory_pkg:create_app(*test*)*",
        "*waitress: * pytest_flaskserve._entry:app",
        "*generated entry module for factory_pkg:create_app('test'): Waitress's --call takes no arguments*",
        "*uwsgi: *--module pytest_flaskserve._entry:app",
        "*generated entry module*uWSGI cannot call a factory*",
    ])
    result.assert_outcomes(passed=3)


def test_failing_test_report_carries_the_server_log(pytester: pytest.Pytester,
                                                    examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import requests
        def test_fails(flask_url):
            requests.get(flask_url + "/missing-page", timeout=10)
            assert False, "deliberate"
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-servers=flask-run")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*flask server log: flask-run*", "*GET /missing-page*404*"])


def test_server_dying_mid_test_fails_it_and_next_test_gets_a_fresh_one(
        pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import os, signal
        PIDS = []

        def test_killed(flask_server):
            PIDS.append(flask_server.pid)
            os.kill(flask_server.pid, signal.SIGKILL)
            os.waitpid  # the supervisor reaps it
            import time
            deadline = time.monotonic() + 5
            while flask_server.is_running() and time.monotonic() < deadline:
                time.sleep(0.02)

        def test_next(flask_server):
            assert flask_server.pid != PIDS[0]
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-servers=gunicorn")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*gunicorn died during the test (killed by SIGKILL)*"])


def test_missing_server_is_skipped_with_reason(pytester: pytest.Pytester, examples: Path) -> None:
    # Make gunicorn unimportable in the inner run, as in an environment without it.
    pytester.makeconftest("""
        import sys

        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name == "gunicorn" or name.startswith("gunicorn."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Hide())
    """)
    pytester.makepyfile(test_inner="""
        import pytest
        @pytest.mark.flask_servers("gunicorn", "waitress")
        def test_x(flask_url):
            pass
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*gunicorn is not installed in this environment "
                                 "(pip install 'pytest-flaskserve?gunicorn?')*"])


def test_disabled_with_p_no(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:flaskserve")
    result.assert_outcomes(passed=1)
    assert "flaskserve" not in result.stdout.str()
    result = pytester.runpytest_subprocess("-p", "no:flaskserve", "--flask-app=hello:app")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the option does not exist then


def test_strict_markers_accepts_ours(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import pytest
        @pytest.mark.flask_servers("waitress")
        @pytest.mark.flask_options(threads=2)
        @pytest.mark.flask_scope("module")
        @pytest.mark.flask_app("hello:app")
        def test_x(flask_url):
            pass
    """)
    result = pytester.runpytest_subprocess("--strict-markers")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.flask_servers(*names)*",
                                 "@pytest.mark.flask_app(spec)*"])


DOTENV_APP = """
import os
from flask import Flask

app = Flask(__name__)
app.config.from_envvar("ENVAPP_SETTINGS")  # needs the variable at import


@app.get("/")
def env():
    return {k: os.environ.get(k) for k in ("GREETING", "FROM_FLASKENV", "SHARED")}


if __name__ == "__main__":
    app.run()
"""


def test_load_dotenv_gives_every_server_the_same_values(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """With --flask-load-dotenv the files are read as flask run reads them (.env beats
    .flaskenv, the shell beats both) and every server gets the result, FLASK_APP from
    .flaskenv included; the app is resolved with them too (it needs one at import)."""
    pytester.makepyfile(dotapp=DOTENV_APP)
    pytester.path.joinpath("settings.cfg").write_text("X = 1\n")
    pytester.path.joinpath(".flaskenv").write_text(
        "FLASK_APP=dotapp:app\nFROM_FLASKENV=yes\nSHARED=flaskenv\n"
        "ENVAPP_SETTINGS=settings.cfg\n")
    pytester.path.joinpath(".env").write_text("GREETING=from-dotenv\nSHARED=dotenv\n")
    pytester.makepyfile(test_inner="""
        def test_env(flask_http):
            assert flask_http.get("/").json() == {
                "GREETING": "from-shell", "FROM_FLASKENV": "yes", "SHARED": "dotenv"}
    """)
    monkeypatch.setenv("GREETING", "from-shell")
    monkeypatch.delenv("FLASK_APP", raising=False)
    servers_ = "flask-run,app-run,gunicorn,waitress,uwsgi"
    result = pytester.runpytest_subprocess("--flask-load-dotenv", f"--flask-servers={servers_}",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["flaskserve: app dotapp:app (from FLASK_APP in .flaskenv/.env)"])

    # off (the default): no server reads the files, and the missing app says where it is
    result = pytester.runpytest_subprocess("--flask-servers=waitress", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*FLASK_APP=dotapp:app is in .flaskenv/.env, which the plugin "
                                 "reads only with --flask-load-dotenv*"])


def test_marker_env_reaches_the_import_of_the_app(pytester: pytest.Pytester) -> None:
    """An app that needs a variable at import resolves with the env= its test gives the
    servers; with no test giving one it is a usage error that says where it can come from."""
    pytester.makepyfile(dotapp=DOTENV_APP)
    pytester.path.joinpath("settings.cfg").write_text("X = 1\n")
    pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.flask_options(env={"ENVAPP_SETTINGS": "settings.cfg", "GREETING": "m"})
        def test_env(flask_http):
            assert flask_http.get("/").json()["GREETING"] == "m"

        def test_factory(flask_server_factory):
            h = flask_server_factory("gunicorn", "dotapp:app",
                                     env={"ENVAPP_SETTINGS": "settings.cfg"})
            assert h.url
    """)
    result = pytester.runpytest_subprocess("--flask-app=dotapp:app",
                                           "--flask-servers=flask-run,gunicorn")
    result.assert_outcomes(passed=3)  # test_env on two servers, test_factory once

    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-app=dotapp:app", "--flask-servers=gunicorn")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*importing 'dotapp' raised RuntimeError: The environment "
                                 "variable 'ENVAPP_SETTINGS' is not set*imported with pytest's "
                                 "environment*flask_options(env=*"])


def test_our_errors_in_a_test_show_no_frames_of_ours(pytester: pytest.Pytester,
                                                     examples: Path) -> None:
    """A UsageError or ServerStartupError raised into a test by the factory reports the
    test's line and our message, not the plugin's internals."""
    pytester.makepyfile(test_inner="""
        def test_bad_attr(flask_server_factory):
            flask_server_factory("gunicorn", "hello:nope")

        def test_broken_start(flask_server_factory):
            flask_server_factory("waitress", "import_error:app", resolve=False)
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "E *UsageError: app spec 'hello:nope' (from flask_server_factory): module 'hello' "
        "has no attribute 'nope'*",
        "E *ServerStartupError: waitress failed to start 'import_error:app'*",
    ])
    assert "pytest_flaskserve/" not in out, out

"""Defects where one fact lived in several places, and HTTP/1.1 keep-alive on every server:
each test here failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

KEEPALIVE_APP = """
from flask import Flask, Response, redirect, request

app = Flask(__name__)

@app.get("/")
def index():
    return "Hello"

@app.get("/old")
def old():
    return redirect("/", code=308)

@app.get("/stream")
def stream():
    return Response(f"chunk{i}\\n" for i in range(5))

@app.post("/echo")
def echo():
    return request.get_data()
"""


def test_keep_alive_session_sees_no_connection_error(pytester: pytest.Pytester) -> None:
    """500 requests on one requests.Session per server (redirects, streams, POST bodies):
    uWSGI's --http-socket used to close connections without saying so, and a pooled
    connection then failed with ConnectionResetError or RemoteDisconnected."""
    pytester.makepyfile(kaapp=KEEPALIVE_APP)
    pytester.makepyfile(test_inner="""
        def test_keep_alive(flask_http):
            body = b"x" * 5000
            for i in range(125):
                assert flask_http.get("/old").text == "Hello"
                assert flask_http.get("/stream").text.count("chunk") == 5
                assert flask_http.post("/echo", data=body).content == body
                assert flask_http.get("/").status_code == 200
    """)
    result = pytester.runpytest_subprocess("--flask-app=kaapp:app", "-p", "no:randomly")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 4


def test_app_run_of_a_module_without_source_is_a_clean_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner="""
        def test_factory(flask_server_factory):
            flask_server_factory("app-run", "flask:Flask", resolve=False)
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "app-run cannot start 'flask:Flask'" in out and "has no source file" in out
    assert "ValueError" not in out and "Traceback" not in out


def test_header_shows_the_command_that_runs(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("-v", "--flask-app=hello.py", "--flask-servers=flask-run",
                                           "--flask-threads=1")
    result.assert_outcomes(passed=1)
    header = [line for line in result.stdout.lines if line.startswith("  flask-run: ")]
    assert header and "--without-threads" in header[0], result.stdout.str()


NEEDS_ENV = """
import os
from flask import Flask

if os.environ.get("NEEDED") != "1":
    raise RuntimeError("NEEDED missing")
app = Flask(__name__)

@app.get("/")
def index():
    return "ok"
"""


def test_parity_honours_marker_env(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(needsenv=NEEDS_ENV)
    pytester.makepyfile(test_inner="""
        import pytest

        pytestmark = pytest.mark.flask_options(env={"NEEDED": "1"})

        @pytest.mark.flask_servers("flask-run", "waitress")
        def test_same(flask_parity):
            flask_parity.get("/")

        def test_url(flask_url):
            pass
    """)
    result = pytester.runpytest_subprocess("--flask-app=needsenv:app", "-rs")
    out = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, out
    # app-run: needsenv.py has no main guard, so it is skipped whether env came from the
    # shell or from the marker
    assert outcomes.get("skipped") == 1 and "has no `if __name__" in out, out
    assert "NEEDED missing" not in out


def test_stop_never_signals_a_reused_pid(pytester: pytest.Pytester, examples: Path) -> None:
    """A session server dies during test 1 and is reaped; its pid is then given to an
    unrelated program leading its own group. Stopping the dead server at session end used
    to killpg that pid, and the stranger died."""
    stranger_file = pytester.path / "stranger.pid"
    pytester.makepyfile(test_inner=f"""
        import os, signal, subprocess, time

        def test_1_server_dies(flask_server):
            os.kill(flask_server.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while flask_server.is_running() and time.monotonic() < deadline:
                time.sleep(0.02)  # is_running() reaps it
            assert not flask_server.is_running()
            with open("dead.pid", "w") as f:
                f.write(str(flask_server.pid))

        def test_2_pid_reused():
            target = int(open("dead.pid").read())
            for _ in range(200):
                with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                    f.write(str(target - 1))
                stranger = subprocess.Popen(["sleep", "60"], start_new_session=True,
                                            env={{"PATH": os.environ["PATH"]}})
                if stranger.pid == target:
                    break
                stranger.kill()
                stranger.wait()
            assert stranger.pid == target
            with open({str(stranger_file)!r}, "w") as f:
                f.write(str(stranger.pid))
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-servers=flask-run",
                                           "-p", "no:randomly")
    pid = int(stranger_file.read_text())
    import psutil

    stranger = psutil.Process(pid)
    try:
        alive = stranger.is_running() and stranger.status() != psutil.STATUS_ZOMBIE
    finally:
        stranger.kill()
    # test 1 fails by design: the plugin reports a server that died during a test
    result.assert_outcomes(passed=1, failed=1)
    assert "died during" in result.stdout.str()
    assert alive, "the plugin killed a process it did not start"

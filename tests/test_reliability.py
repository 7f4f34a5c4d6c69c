"""Nothing is left behind, whatever ends the run: every server (with reloaders and
workers), for a normal end, a failing test, a fixture error, Ctrl-C, SIGTERM, SIGKILL of
pytest, and a server killed from outside. Checked by pid and by port, within 5 s."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _processes import alive, ended_at_exit

SERVERS = ["flask-run", "app-run", "gunicorn", "waitress", "uwsgi", "granian", "cheroot"]

INNER = """
import json, os, time
import psutil
import pytest

RECORD = os.environ["RECORD_FILE"]
MODE = os.environ["MODE"]

@pytest.fixture
def broken_fixture(flask_server):
    if MODE == "fixture_error":
        raise RuntimeError("fixture error after the server started")

@pytest.mark.flask_options(reload=True)
def test_hold(flask_server):
    tree = [p.pid for p in psutil.Process(flask_server.pid).children(recursive=True)]
    with open(RECORD, "a") as f:
        f.write(json.dumps({"server": flask_server.server, "pids": [flask_server.pid, *tree],
                            "port": flask_server.port}) + "\\n")
    if MODE == "fail":
        assert False, "deliberate failure"
    if MODE == "server_killed" and flask_server.server in ("gunicorn", "uwsgi", "app-run"):
        os.kill(flask_server.pid, 9)  # the master / reloader parent only: children stay
        deadline = time.monotonic() + 5
        while flask_server.is_running() and time.monotonic() < deadline:
            time.sleep(0.01)

@pytest.mark.flask_options(reload=True)
@pytest.mark.flask_servers("waitress")
def test_with_fixture_error(broken_fixture):
    pass

def test_zz_block():
    open(RECORD + ".ready", "w").close()
    if MODE in ("sigint", "sigterm", "sigkill"):
        time.sleep(120)
"""




def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_file(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"inner pytest exited early ({proc.returncode})"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "mode", ["normal", "fail", "fixture_error", "server_killed", "sigint", "sigterm", "sigkill"])
def test_nothing_left_behind(pytester: pytest.Pytester, examples: Path, mode: str) -> None:
    pytester.makepyfile(test_inner=INNER)
    record = pytester.path / "record.jsonl"
    log = pytester.path / "inner.log"
    env = {**os.environ, "RECORD_FILE": str(record), "MODE": mode}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
             "--flask-app=hardcoded_port.py", f"--flask-servers={','.join(SERVERS)}"],
            cwd=pytester.path, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    with ended_at_exit(proc):
        _wait_file(Path(str(record) + ".ready"), proc, 60)
        if mode in ("sigint", "sigterm", "sigkill"):
            sig = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}[mode]
            proc.send_signal(sig)
        code = proc.wait(timeout=60)
    output = log.read_text()
    records = [json.loads(line) for line in record.read_text().splitlines()]
    assert {r["server"] for r in records} == set(SERVERS), output
    assert sum(len(r["pids"]) for r in records) >= len(SERVERS) + 3  # reloader children, workers
    deadline = time.monotonic() + 5
    left: list[str] = []
    while time.monotonic() < deadline:
        left = [f"{r['server']} pid {pid}" for r in records for pid in r["pids"] if alive(pid)]
        left += [f"{r['server']} port {r['port']}" for r in records if _listening(r["port"])]
        if not left:
            break
        time.sleep(0.05)
    assert not left, f"left behind after {mode}: {left}\n{output}"
    if mode == "normal":
        assert code == 0, output
    elif mode == "fail":
        assert code == 1 and "deliberate failure" in output
    elif mode == "fixture_error":
        assert code == 1 and "fixture error after the server started" in output
    elif mode == "server_killed":
        assert code == 1 and "died during the test (killed by SIGKILL)" in output, output
    elif mode == "sigint":
        assert code == 2 and "KeyboardInterrupt" in output
    elif mode == "sigterm":
        assert code == -signal.SIGTERM
    else:
        assert code == -signal.SIGKILL


def test_stranger_on_the_port_is_never_taken_for_our_server(tmp_path: Path) -> None:
    from pytest_flaskserve.lifecycle.ports import free_port
    from pytest_flaskserve.lifecycle.readiness import NotReady, NotReadyKind, wait_until_serving
    from pytest_flaskserve.lifecycle.sockets import listening_in

    port = free_port()
    stranger = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                                 "127.0.0.1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(NotReady, match="another process already answers") as info:
            wait_until_serving("127.0.0.1", port, "/", poll_exit=ours.poll, timeout=10,
                               owns_port=lambda: listening_in({ours.pid}, port))
        assert info.value.kind is NotReadyKind.FOREIGN_PORT
        # the stranger's own tree does own it
        assert listening_in({stranger.pid}, port)
    finally:
        for p in (stranger, ours):
            p.kill()
            p.wait()


def test_server_ignoring_its_stop_signal_is_killed_and_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(stubborn="""
        import signal
        from flask import Flask
        app = Flask(__name__)
        @app.get("/")
        def index():
            return "stubborn"
        if __name__ == "__main__":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            app.run()
    """)
    pytester.makepyfile(test_inner="""
        import pytest
        @pytest.mark.flask_scope("function")
        def test_x(flask_server):
            assert flask_server.is_running()
    """)
    result = pytester.runpytest_subprocess("--flask-app=stubborn:app", "--flask-servers=app-run",
                                           "--flask-stop-timeout=0.5")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([
        "*app-run ignored SIGTERM for 0.5 s and was killed*",
        "*app-run*stop * ms, exit -9 (killed after its stop deadline)*",
    ])


def test_stop_returns_the_real_exit_code(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import pytest
        @pytest.mark.flask_scope("function")
        def test_codes(flask_server):
            code = flask_server.stop()
            expected = {"gunicorn": 0, "uwsgi": 0, "granian": 0}.get(flask_server.server, -15)
            assert code == expected, (flask_server.server, code)
            assert flask_server.exit_code == code
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app")
    result.assert_outcomes(passed=7)


SIGTERM_INSIDE_A_STOP = """
import os, signal

def test_sigterm_arrives_inside_a_stop(flask_server):
    with open("server.pid", "w") as f:
        f.write(str(flask_server.pid))
    # what a stop in progress holds when the signal interrupts it (teardown, Ctrl-C)
    flask_server._process._lock.acquire()
    os.kill(os.getpid(), signal.SIGTERM)
"""


def test_sigterm_during_a_stop_still_stops_and_ends_the_run(pytester: pytest.Pytester,
                                                            examples: Path) -> None:
    """The SIGTERM handler stops every server from wherever the main thread was; inside a
    stop (which holds the process's lock) it deadlocked, and pytest never ended."""
    pytester.makepyfile(test_inner=SIGTERM_INSIDE_A_STOP)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--flask-app=hello:app", "--flask-servers=flask-run"],
                            cwd=pytester.path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("pytest hung in its SIGTERM handler")
    assert code == -signal.SIGTERM
    server = int((pytester.path / "server.pid").read_text())
    assert not alive(server), "the server outlived pytest"


def test_ctrl_c_while_the_app_is_resolved_ends_the_helper_with_pytest(tmp_path: Path) -> None:
    """The app's import hangs in the helper that resolves the spec; Ctrl-C then ends the
    helper before pytest exits (no 'subprocess is still running' ResourceWarning)."""
    pid_file = tmp_path / "helper.pid"
    (tmp_path / "hangs.py").write_text(
        "import os, time\nfrom flask import Flask\napp = Flask(__name__)\n"
        f"with open({str(pid_file)!r}, 'w') as f:\n    f.write(str(os.getpid()))\n"
        "time.sleep(120)\n")
    (tmp_path / "test_x.py").write_text("def test_x(flask_url):\n    pass\n")
    log = tmp_path / "inner.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-X", "dev", "-W", "always::ResourceWarning", "-m", "pytest",
             "-p", "no:cacheprovider", "--flask-app=hangs:app", "--flask-servers=waitress"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    with ended_at_exit(proc):
        _wait_file(pid_file, proc, 60)
        while not pid_file.read_text():  # created, not yet written
            time.sleep(0.01)
        helper = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    output = log.read_text()
    assert code == 2 and "KeyboardInterrupt" in output, output
    assert not alive(helper), output
    assert "ResourceWarning" not in output, output

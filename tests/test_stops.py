"""Stops: each server's quickest stop must still be its own clean exit.

Real servers, real signals. These tests assert behaviour, never time: the exit code is the
server's own, nothing was force-killed, no process of the tree survives, the port is
free, and the workers of Gunicorn and uWSGI leave through their own shutdown path (their
Python ``atexit`` handlers run: that is where coverage.py saves a worker's data).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from pytest_flaskserve import servers
from pytest_flaskserve.appspec import parse_spec
from pytest_flaskserve.appspec.resolve import resolve_app
from pytest_flaskserve.lifecycle.supervisor import ServerHandle, StartConfig, start_server
from pytest_flaskserve.servers import ServerOptions

#: The exit code each server's stop yields: Gunicorn's arbiter and uWSGI's master exit 0
#: on their stop signal; the development server, Waitress and Cheroot keep SIGTERM's
#: default action (they install no handler), which is their documented stop.
EXPECTED = {"gunicorn": 0, "uwsgi": 0}

APP = '''
import atexit, os, time
from flask import Flask

app = Flask(__name__)

@app.get("/")
def index():
    return "ok"

@app.get("/slow")
def slow():
    time.sleep(float(os.environ.get("SLOW_SECONDS", "30")))
    return "late"

def _bye():
    mark = os.environ.get("ATEXIT_MARK")
    if mark:
        with open(mark, "a") as f:
            f.write(f"{os.getpid()}\\n")

atexit.register(_bye)

if __name__ == "__main__":
    app.run()
'''


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "stopapp.py").write_text(APP)
    return tmp_path


def available(*names: str) -> list[str]:
    return [n for n in names if servers.get(n).unavailable() is None]


def _start(app_dir: Path, server: str, tmp_path: Path, *, stop_timeout: float = 5.0,
           env: dict[str, str] | None = None, **options: object) -> ServerHandle:
    app = resolve_app(parse_spec("stopapp:app", str(app_dir)))
    config = StartConfig(log_dir=tmp_path / "logs", stop_timeout=stop_timeout)
    opts = ServerOptions(env=tuple(sorted((env or {}).items())), **options)  # type: ignore[arg-type]
    return start_server(servers.get(server), app, opts, config)


def _tree(handle: ServerHandle) -> list[psutil.Process]:
    leader = psutil.Process(handle.pid)
    return [leader, *leader.children(recursive=True)]


def _gone(procs: list[psutil.Process]) -> list[str]:
    """The processes that still run (zombies waiting for a reaper count as gone)."""
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {p.name()}")
        except psutil.Error:
            continue
    return left


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("server", available("flask-run", "app-run", "gunicorn", "waitress",
                                             "uwsgi"))
def test_stop_is_the_servers_own_exit(app_dir: Path, tmp_path: Path, server: str) -> None:
    handle = _start(app_dir, server, tmp_path)
    tree = _tree(handle)
    code = handle.stop()
    result = handle.stop_result
    assert result is not None
    assert code == EXPECTED.get(server, -15), handle.log_tail()
    assert not result.forced, handle.log_tail()
    assert _gone(tree) == []
    assert _refused(handle.port)
    assert handle.stop() == code  # idempotent: the first result


def _marks(path: Path) -> set[int]:
    return {int(x) for x in path.read_text().split()} if path.exists() else set()


@pytest.mark.skipif(not available("gunicorn"), reason="gunicorn not installed")
def test_gunicorn_workers_exit_through_their_own_path(app_dir: Path, tmp_path: Path) -> None:
    """The arbiter is paused while its workers exit on SIGTERM: none is SIGKILLed."""
    mark = tmp_path / "atexit"
    handle = _start(app_dir, "gunicorn", tmp_path, workers=2, env={"ATEXIT_MARK": str(mark)})
    leader = psutil.Process(handle.pid)
    deadline = time.monotonic() + 10
    while len(leader.children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # the arbiter forks its second worker after the first one
    workers = {p.pid for p in leader.children()}
    assert len(workers) == 2
    assert handle.stop() == 0
    log = handle.read_log()
    assert _marks(mark) >= workers, log  # every worker ran its atexit handlers
    assert all(f"Worker exiting (pid: {pid})" in log for pid in workers), log
    assert "Shutting down: Master" in log
    assert "SIGKILL" not in log


@pytest.mark.skipif(not available("gunicorn"), reason="gunicorn not installed")
def test_gunicorn_worker_still_booting_exits_cleanly(app_dir: Path, tmp_path: Path) -> None:
    """A worker stopped before it installed its own handlers still runs the arbiter's,
    which swallow SIGTERM; the signal is sent again until it takes, so that worker leaves
    through its own path too instead of being SIGKILLed when the arbiter resumes."""
    mark = tmp_path / "atexit"
    (app_dir / "slowboot.py").write_text(
        "import time\n"
        "def post_fork(server, worker):\n"
        "    if worker.age == 2:\n"
        "        time.sleep(1.0)  # still inside the arbiter's signal handlers\n")
    handle = _start(app_dir, "gunicorn", tmp_path, workers=2,
                    extra_args=("-c", str(app_dir / "slowboot.py")),
                    env={"ATEXIT_MARK": str(mark)})
    leader = psutil.Process(handle.pid)
    deadline = time.monotonic() + 10
    while len(leader.children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = {p.pid for p in leader.children()}
    assert len(workers) == 2
    assert handle.stop() == 0
    log = handle.read_log()
    assert handle.stop_result is not None and not handle.stop_result.forced
    assert "SIGKILL" not in log, log
    assert all(f"Worker exiting (pid: {pid})" in log for pid in workers), log
    assert _marks(mark) >= workers, log


@pytest.mark.skipif(not available("gunicorn"), reason="gunicorn not installed")
def test_gunicorn_busy_worker_is_bounded_and_arbiter_resumed(app_dir: Path,
                                                             tmp_path: Path) -> None:
    """A worker stuck in a request does not hold the stop past its timeout, and the paused
    arbiter is always resumed and exits with its own code."""
    handle = _start(app_dir, "gunicorn", tmp_path, stop_timeout=0.5)
    tree = _tree(handle)
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(requests.get(handle + "/slow", timeout=20).status_code)
        except requests.RequestException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    _wait_busy(handle)
    code = handle.stop()
    caller.join(30)
    assert not caller.is_alive()
    assert code == 0, handle.log_tail()
    assert handle.stop_result is not None and not handle.stop_result.forced
    assert _gone(tree) == []
    assert outcome and not isinstance(outcome[0], int)  # the request was cut, not served


def _wait_busy(handle: ServerHandle) -> None:
    """Until the worker holds a connection (the /slow request has been accepted)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for child in psutil.Process(handle.pid).children():
            try:
                if any(c.status == psutil.CONN_ESTABLISHED for c in child.net_connections("tcp")):
                    return
            except psutil.Error:
                continue
        time.sleep(0.01)
    raise AssertionError("the worker never accepted the request")


def _uwsgi_workers(stats: Path) -> list[dict[str, Any]]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(str(stats))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    workers: list[dict[str, Any]] = json.loads(data)["workers"]
    return workers


def _uwsgi_idle(stats: Path, count: int, timeout: float = 10.0) -> set[int]:
    """The pids of ``count`` uWSGI workers once every one of them is forked and out of a
    request. The first worker answers the readiness probe while the master may still be
    forking the next one; and uWSGI skips a worker's Python teardown while it is flagged
    in a request (``uwsgi_python_atexit``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = _uwsgi_workers(stats)
        pids = {int(w["pid"]) for w in workers if w.get("pid")}
        busy = any(c.get("in_request") for w in workers for c in w.get("cores", []))
        if len(pids) == count and not busy:
            return pids
        time.sleep(0.01)
    raise AssertionError(f"uWSGI did not have {count} idle workers within {timeout} s")


@pytest.mark.skipif(not available("uwsgi"), reason="uwsgi not installed")
def test_uwsgi_workers_exit_once_through_their_teardown(app_dir: Path, tmp_path: Path) -> None:
    """SIGINT reaches each worker from us and from the master: the same signal, blocked while
    end_me runs, so the worker exits once and its atexit handlers run; the master is woken
    by the worker's SIGCHLD and exits 0."""
    mark, stats = tmp_path / "atexit", tmp_path / "stats.sock"
    handle = _start(app_dir, "uwsgi", tmp_path, workers=2, env={"ATEXIT_MARK": str(mark)},
                    extra_args=("--stats", str(stats)))
    try:
        workers = _uwsgi_idle(stats, 2)
        assert workers == {p.pid for p in psutil.Process(handle.pid).children()}
    finally:
        returncode = handle.stop()
    assert returncode == 0
    log = handle.read_log()
    assert _marks(mark) >= workers, log
    assert "goodbye to uWSGI" in log
    assert "DAMN" not in log and "MISTERIOUSLY" not in log


@pytest.mark.parametrize("signalled", [True, False], ids=["after-our-signal", "on-its-own"])
def test_an_exit_that_answers_our_signal_is_not_an_exit_on_its_own(tmp_path: Path,
                                                                    signalled: bool) -> None:
    """A stop strategy signals the leader itself, then lets the one stop algorithm wait: a
    leader fast enough to be gone before that wait began (Granian, 30 ms) answered the
    signal; only an exit before anything was sent is reported as ``already_exited``."""
    import os
    import signal as signals
    import sys

    from pytest_flaskserve.lifecycle.process import ManagedProcess

    proc = ManagedProcess([sys.executable, "-c", "import time; time.sleep(60)"],
                          env=dict(os.environ), cwd=str(tmp_path), log_path=tmp_path / "log")
    proc.start()
    os.kill(proc.pid, signals.SIGTERM)
    deadline = time.monotonic() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    result = proc.stop(0, 5.0, signalled=signalled)
    assert result.returncode == -signals.SIGTERM
    assert result.already_exited is not signalled
    assert not result.forced


#: A leader that exits at once on SIGTERM, and a child of its group that takes a moment
#: to finish its own exit (as a worker or multiprocessing's resource tracker saving
#: coverage data in atexit does), then says it finished.
LEADER_WITH_SLOW_CHILD = '''
import os, signal, sys, time
mark = sys.argv[1]
if os.fork() == 0:
    def finish(signum, frame):
        time.sleep(0.3)
        with open(mark, "w") as f:
            f.write("done")
        os._exit(0)
    signal.signal(signal.SIGTERM, finish)
    # Ready only once the handler is in place: a SIGTERM before it would end the child
    # at once, which is not what the test is about.
    open(mark + ".ready", "w").close()
    while True:
        time.sleep(1)
time.sleep(60)
'''


@pytest.mark.parametrize("leader_gone_first", [False, True])
def test_the_rest_of_the_tree_may_finish_exiting_after_its_leader(
        tmp_path: Path, leader_gone_first: bool) -> None:
    """The leader answered the stop; its child got the same signal and is on its way out.
    It is given the rest of the grace, not a SIGKILL that would cut its exit short."""
    import os
    import signal as signals
    import sys

    from pytest_flaskserve.lifecycle.process import ManagedProcess

    mark = tmp_path / "mark"
    proc = ManagedProcess([sys.executable, "-c", LEADER_WITH_SLOW_CHILD, str(mark)],
                          env=dict(os.environ), cwd=str(tmp_path), log_path=tmp_path / "log")
    proc.start()
    deadline = time.monotonic() + 10
    while not (tmp_path / "mark.ready").exists() or not psutil.Process(proc.pid).children():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child = psutil.Process(proc.pid).children()[0]
    if leader_gone_first:  # a stop strategy signalled the group and the leader is gone
        os.killpg(proc.pid, signals.SIGTERM)
        while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        result = proc.stop(0, 5.0, signalled=True)
    else:
        result = proc.stop(signals.SIGTERM, 5.0)
    assert result.returncode == -signals.SIGTERM
    assert not result.forced
    assert mark.exists() and mark.read_text() == "done", "the child was cut short"
    assert _gone([child]) == []


IGNORES_THE_STOP = """
import os, signal, time
from flask import Flask

app = Flask(__name__)
app.get("/")(lambda: "hi")
if os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn") and os.fork() == 0:
    os.setsid()  # out of the server's process group, and deaf to SIGTERM
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(300)
    os._exit(0)
"""


def test_a_descendant_that_ignores_the_stop_is_killed_within_one_stop_timeout(
        tmp_path: Path) -> None:
    """The worker's child left the group and ignores SIGTERM: it costs one stop timeout,
    not two (the children's wait, then the master's), and the stop says it had to kill."""
    (tmp_path / "deaf.py").write_text(IGNORES_THE_STOP)
    app = resolve_app(parse_spec("deaf:app", str(tmp_path)), timeout=30)
    grace = 3.0
    handle = start_server(servers.get("gunicorn"), app, ServerOptions(),
                          StartConfig(log_dir=tmp_path, stop_timeout=grace))
    try:
        deadline = time.monotonic() + 10
        tree: list[psutil.Process] = []
        while len(tree) < 2 and time.monotonic() < deadline:  # the worker and its child
            tree = psutil.Process(handle.pid).children(recursive=True)
            time.sleep(0.05)
        assert len(tree) >= 2, tree
    finally:
        handle.stop()
    result = handle.stop_result
    assert result is not None and result.forced, result
    assert result.seconds < grace * 1.6, result  # was two stop timeouts
    _, left = psutil.wait_procs(tree, timeout=5)  # a killed one may still be on its way out
    assert not [p for p in left if p.status() != psutil.STATUS_ZOMBIE], left

"""Warm starts: a server forked from the pre-warmed launcher must be the same
server as a cold one: same interpreter setup, same log, same exit codes, same teardown.

Real servers, real processes. The warm path is used exactly as the proposed integration
would use it: ``start_server`` building its process object through
``WarmLauncher.process`` (passed as ``StartConfig.process_factory``).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from pytest_flaskserve import servers
from pytest_flaskserve.appspec import parse_spec
from pytest_flaskserve.appspec.resolve import resolve_app
from pytest_flaskserve.errors import ServerStartupError
from pytest_flaskserve.lifecycle.process import ManagedProcess
from pytest_flaskserve.lifecycle.supervisor import ServerHandle, StartConfig, start_server
from pytest_flaskserve.servers import ServerOptions
from pytest_flaskserve.warm import WarmLauncher, WarmProcess

WARM = [n for n in servers.names() if servers.get(n).starts_warm
        and servers.get(n).unavailable() is None]

STATE_APP = '''
"""Reports how its interpreter was set up."""
import atexit, os, resource, signal, sys
from flask import Flask, jsonify

app = Flask(__name__)

@app.get("/")
def index():
    return "ok"

@app.get("/state")
def state():
    def kind(fd):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
        if target.startswith(("socket:", "anon_inode:")):
            # connections come and go, and so does the epoll with which Werkzeug drains
            # each finished request for 10 ms (in the probe's request thread)
            return None
        if target.endswith(" (deleted)"):
            return "DELETED"  # e.g. Gunicorn's worker heartbeat file
        return "LOG" if target.endswith(".log") else target.split(":")[0]
    handlers = {}
    for name in ("SIGINT", "SIGTERM", "SIGCHLD", "SIGPIPE", "SIGHUP", "SIGQUIT", "SIGXFSZ"):
        h = signal.getsignal(getattr(signal, name))
        handlers[name] = getattr(h, "__qualname__", None) or str(h)
    main = sys.modules["__main__"]
    with open("/proc/self/status") as f:
        status = dict(line.rstrip("\\n").split(":\\t", 1) for line in f if ":\\t" in line)
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = f.read().decode().split("\\0")
    with open("/proc/self/environ", "rb") as f:
        environ = dict(e.split("=", 1) for e in f.read().decode().split("\\0") if e)
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    return jsonify(
        modules=sorted(sys.modules), cmdline=cmdline, hash_sample=hash("flaskserve-sample"), environ=environ, comm=comm,
        hash_randomization=sys.flags.hash_randomization, flags=str(sys.flags),
        sig_masks={k: status[k] for k in ("SigBlk", "SigIgn", "SigCgt")},
        umask=status["Umask"], nofile=resource.getrlimit(resource.RLIMIT_NOFILE),
        pid=os.getpid(), pgid=os.getpgid(0), sid=os.getsid(0), cwd=os.getcwd(), path=sys.path,
        argv=sys.argv[1:], argv0=sys.argv[0], orig_argv=sys.orig_argv,
        env=dict(os.environ), signals=handlers,
        blocked=sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        files=sorted(filter(None, (kind(fd) for fd in os.listdir("/proc/self/fd")))),
        stdout=[sys.stdout.encoding, sys.stdout.errors, sys.stdout.line_buffering,
                sys.stdout.write_through],
        stderr=[sys.stderr.encoding, sys.stderr.errors, sys.stderr.line_buffering,
                sys.stderr.write_through],
        dont_write_bytecode=sys.dont_write_bytecode, main_name=main.__name__,
        main_file=getattr(main, "__file__", None), executable=sys.executable,
    )

def _bye():
    mark = os.environ.get("ATEXIT_MARK")
    if mark:
        with open(mark, "a") as f:
            f.write(f"{os.getpid()}\\n")

atexit.register(_bye)

if __name__ == "__main__":
    if os.environ.get("STATE_EXIT"):
        sys.exit(int(os.environ["STATE_EXIT"]))
    if os.environ.get("STATE_RAISE"):
        raise RuntimeError("boom from the script")
    app.run()
'''


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmLauncher]:
    launcher = WarmLauncher(log_dir=tmp_path_factory.mktemp("warm-logs"))
    launcher.start()
    yield launcher
    launcher.close()
    zygote = launcher._zygote
    assert zygote is not None and zygote.returncode == 0


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stateapp")
    (path / "stateapp.py").write_text(STATE_APP)
    return path


def _start(app_dir: Path, server: str, tmp_path: Path, warm: WarmLauncher | None,
           monkeypatch: pytest.MonkeyPatch, **env: str) -> ServerHandle:
    app = resolve_app(parse_spec("stateapp:app", str(app_dir)))
    options = ServerOptions(env=tuple(sorted(env.items())))
    config = StartConfig(log_dir=tmp_path / "logs",
                         process_factory=warm.process if warm is not None else None)
    return start_server(servers.get(server), app, options, config)


def _state(handle: ServerHandle) -> dict[str, Any]:
    data: dict[str, Any] = requests.get(handle + "/state", timeout=10).json()
    port = str(handle.port)
    data["argv"] = [a.replace(port, "PORT") for a in data["argv"]]
    data["orig_argv"] = [a.replace(port, "PORT") for a in data["orig_argv"]]
    data["cmdline"] = [a.replace(port, "PORT") for a in data["cmdline"]]
    for env in (data["env"], data["environ"]):
        for key in ("FLASKSERVE_OWNER", "FLASKSERVE_APP_RUN"):
            env.pop(key, None)
    return data


@pytest.mark.parametrize("server", WARM)
def test_warm_server_is_set_up_like_a_cold_one(
    warm: WarmLauncher, app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    server: str,
) -> None:
    cold_handle = _start(app_dir, server, tmp_path, None, monkeypatch, STATE_X="1")
    try:
        warm_handle = _start(app_dir, server, tmp_path, warm, monkeypatch, STATE_X="1")
    except BaseException:
        cold_handle.stop()  # a failed warm start must not leave the cold server running
        raise
    try:
        assert isinstance(warm_handle.process, WarmProcess)
        assert warm_handle.process.started_warm, warm_handle.process.cold_reason
        assert type(cold_handle.process) is ManagedProcess
        cold, hot = _state(cold_handle), _state(warm_handle)
        # same start-up log, but for ports, pids and times
        assert _log_shape(warm_handle) == _log_shape(cold_handle)
    finally:
        cold_code, warm_code = cold_handle.stop(), warm_handle.stop()
    assert warm_code == cold_code
    for key in ("pid", "pgid", "sid"):
        cold.pop(key)
    # the serving process (the leader, or a worker it forked) is in the leader's own
    # session and process group, so a signal to the group reaches all of the server
    assert hot["pgid"] == hot["sid"] == warm_handle.pid
    for key in ("pid", "pgid", "sid"):
        hot.pop(key)
    # randomised in both (servers forked in one session share the zygote's seed)
    sample = hash("flaskserve-sample")
    assert hot.pop("hash_sample") != sample and cold.pop("hash_sample") != sample
    # nothing imported that the cold start does not import, nothing missing
    hot_modules, cold_modules = set(hot.pop("modules")), set(cold.pop("modules"))
    assert (sorted(hot_modules - cold_modules), sorted(cold_modules - hot_modules)) == ([], [])
    assert hot == cold


def _log_shape(handle: ServerHandle) -> list[str]:
    """The log's lines without numbers and timestamps, in sorted order (a master's and its
    workers' lines interleave differently from run to run)."""
    import re

    out = []
    for line in handle.read_log().splitlines():
        line = re.sub(r"\[[^\]]*\d{2}:\d{2}:\d{2}[^\]]*\]", "[T]", line)
        line = re.sub(r"\d+", "N", line)
        if '"GET ' in line or "GET /" in line:
            continue  # request lines: how many probes were needed varies
        if "Task queue depth is" in line:
            # Waitress's note that requests wait for a thread: on a loaded machine a probe
            # times out (0.25 s) and the next one queues behind it, warm or cold alike
            continue
        out.append(line)
    return sorted(out)


def test_warm_exit_codes_and_tracebacks_match_cold(
    warm: WarmLauncher, app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The script's sys.exit(3) and an uncaught exception end a warm server as they end a
    cold one, and the traceback shows the script, not the launcher."""
    for env, code in (({"STATE_EXIT": "3"}, 3), ({"STATE_RAISE": "1"}, 1)):
        errors = []
        for launcher in (None, warm):
            with pytest.raises(ServerStartupError) as info:
                _start(app_dir, "app-run", tmp_path, launcher, monkeypatch, **env)
            errors.append(info.value)
        assert [e.exit_code for e in errors] == [code, code]
        if code == 1:
            cold_tail, warm_tail = (e.log_tail for e in errors)
            assert "RuntimeError: boom from the script" in warm_tail
            assert "pytest_flaskserve/warm/" not in warm_tail
            assert _frames(warm_tail) == _frames(cold_tail)


def _frames(tail: str) -> list[str]:
    return [ln.strip() for ln in tail.splitlines() if ln.strip().startswith("File ")]


def test_warm_gunicorn_stops_cleanly(
    warm: WarmLauncher, app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "gunicorn" not in WARM:
        pytest.skip("gunicorn not installed")
    mark = tmp_path / "atexit"
    handle = _start(app_dir, "gunicorn", tmp_path, warm, monkeypatch, ATEXIT_MARK=str(mark))
    tree = [psutil.Process(handle.pid), *psutil.Process(handle.pid).children(recursive=True)]
    workers = {p.pid for p in tree[1:]}
    assert handle.stop() == 0
    assert handle.stop_result is not None and not handle.stop_result.forced
    assert workers and workers <= {int(x) for x in mark.read_text().split()}
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_warm_servers_start_concurrently(
    warm: WarmLauncher, app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    handles: list[ServerHandle] = []
    errors: list[BaseException] = []
    app = resolve_app(parse_spec("stateapp:app", str(app_dir)))
    config = StartConfig(log_dir=tmp_path / "logs", process_factory=warm.process)

    def one(name: str) -> None:
        try:
            handles.append(start_server(servers.get(name), app, ServerOptions(), config))
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in WARM * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors, errors
        assert len({h.port for h in handles}) == len(threads)
        for h in handles:
            assert isinstance(h.process, WarmProcess) and h.process.started_warm
            assert requests.get(h.url, timeout=10).text == "ok"
    finally:
        for h in handles:
            h.stop()


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_warm_does_not_care_about_the_start_method(
    warm: WarmLauncher, app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    method: str,
) -> None:
    """The zygote is a subprocess, not a multiprocessing child: pytest is never forked."""
    before = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(method, force=True)
    try:
        handle = _start(app_dir, "flask-run", tmp_path, warm, monkeypatch)
        try:
            assert isinstance(handle.process, WarmProcess)
            forker = psutil.Process(psutil.Process(handle.pid).ppid())
            assert forker.ppid() == warm.pid != os.getpid()
            assert requests.get(handle.url, timeout=10).text == "ok"
        finally:
            handle.stop()
    finally:
        multiprocessing.set_start_method(before, force=True)


def test_commands_that_cannot_start_warm_start_cold(warm: WarmLauncher, tmp_path: Path) -> None:
    env = dict(os.environ)
    python = warm.python
    flask_run = servers.get("flask-run")
    assert warm.why_cold([python, "-m", "flask", "run"], env, str(tmp_path), flask_run) is None
    uwsgi = servers.get("uwsgi")
    assert warm.why_cold(["/usr/bin/uwsgi", "--http-socket", ":0"], env, str(tmp_path),
                         uwsgi) == uwsgi.cold_reason
    assert warm.why_cold([python, "-X", "dev", "app.py"], env, str(tmp_path), flask_run) \
        == "interpreter options"
    seeded = {**env, "PYTHONHASHSEED": "7"}
    assert "PYTHONHASHSEED" in (warm.why_cold([python, "app.py"], seeded, str(tmp_path),
                                              flask_run) or "")
    measured = {**env, "COVERAGE_PROCESS_CONFIG": "{}"}
    assert "COVERAGE_PROCESS_CONFIG" in (warm.why_cold([python, "a.py"], measured,
                                                       str(tmp_path), flask_run) or "")
    cold = warm.process(["/usr/bin/uwsgi", "--version"], env=env, cwd=str(tmp_path),
                        log_path=tmp_path / "x.log", launcher=uwsgi)
    assert type(cold) is ManagedProcess


@pytest.mark.parametrize("change", ["umask", "RLIMIT_NOFILE"])
def test_a_umask_or_limit_changed_since_the_launcher_started_starts_cold(
    warm: WarmLauncher, app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    """The zygote took pytest's umask and limits when it started (and its forker's
    imports may have changed them, as Granian's do): a start after pytest changed them
    is cold, and gets them as they are now."""
    umask = os.umask(0o027) if change == "umask" else None
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    if change == "RLIMIT_NOFILE":
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile[0], 1000), nofile[1]))
    try:
        handle = _start(app_dir, "waitress", tmp_path, warm, monkeypatch)
    finally:
        if umask is not None:
            os.umask(umask)
        resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
    try:
        assert not handle.process.started_warm
        assert handle.process.cold_reason == \
            f"pytest's {change} changed since the warm launcher started"
        state = _state(handle)
        assert state["umask"] == "0027" if change == "umask" else state["nofile"][0] <= 1000
    finally:
        handle.stop()
    again = _start(app_dir, "waitress", tmp_path, warm, monkeypatch)  # as before: warm
    try:
        assert again.process.started_warm, again.process.cold_reason
    finally:
        again.stop()


PATCHING_APP = """
from gevent import monkey

monkey.patch_all()

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "ok"
"""


def test_an_app_that_monkey_patches_as_it_is_imported_starts_cold(
    warm: WarmLauncher, app_dir: Path, tmp_path: Path,
) -> None:
    """The resolver sees the patch; the warm launcher, whose zygote imported Flask long
    before, starts such an app cold."""
    (tmp_path / "patched.py").write_text(PATCHING_APP)
    app = resolve_app(parse_spec("patched:app", str(tmp_path)))
    assert app.patches_at_import == "gevent"
    config = StartConfig(log_dir=tmp_path / "logs", process_factory=warm.process)
    handle = start_server(servers.get("waitress"), app, ServerOptions(), config)
    try:
        assert not handle.process.started_warm
        assert handle.process.cold_reason == ("the app monkey-patches the standard library "
                                              "with gevent as it is imported")
        assert requests.get(handle.url, timeout=10).text == "ok"
    finally:
        handle.stop()
    plain = resolve_app(parse_spec("stateapp:app", str(app_dir)))
    assert plain.patches_at_import == ""


def test_a_project_module_shadowing_a_preloaded_one_starts_cold(
    warm: WarmLauncher, tmp_path: Path,
) -> None:
    """The forker finds the shadowing copy (a cold start would import it), and the start
    falls back to a cold one that really imports the project's module."""
    (tmp_path / "flask.py").write_text("WHO = 'the project'\n")
    (tmp_path / "main.py").write_text("import flask\nprint('imported', flask.WHO)\n")
    log = tmp_path / "main.log"
    proc = warm.process([warm.python, "main.py"], env=dict(os.environ), cwd=str(tmp_path),
                        log_path=log, launcher=servers.get("app-run"))
    assert isinstance(proc, WarmProcess)
    proc.start()
    assert proc.wait(30) == 0
    assert not proc.started_warm
    assert "shadows the preloaded 'flask'" in (proc.cold_reason or "")
    assert "imported the project" in log.read_text()
    assert ("app-run", proc.cold_reason) in warm.fallbacks


def test_a_lost_launcher_takes_its_servers_with_it(
    app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the zygote dies nobody can report its children's exit codes: they are killed
    rather than left running unowned, and later commands start cold."""
    launcher = WarmLauncher(log_dir=tmp_path / "wlogs")
    launcher.start()
    try:
        handle = _start(app_dir, "flask-run", tmp_path, launcher, monkeypatch)
        server = psutil.Process(handle.pid)
        assert launcher.pid is not None
        os.kill(launcher.pid, signal.SIGKILL)
        assert isinstance(handle.process, WarmProcess)
        assert handle.process.wait(10) == -signal.SIGKILL
        assert handle.stop() == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while server.is_running() and server.status() != psutil.STATUS_ZOMBIE \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE
        assert not launcher.ready
        again = launcher.process([launcher.python, "-m", "flask"], env=dict(os.environ),
                                 cwd=str(tmp_path), log_path=tmp_path / "y.log",
                                 launcher=servers.get("flask-run"))
        assert type(again) is ManagedProcess
    finally:
        launcher.close()


def test_closing_the_launcher_stops_what_it_started(
    app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    launcher = WarmLauncher(log_dir=tmp_path / "wlogs")
    launcher.start()
    handle = _start(app_dir, "waitress" if "waitress" in WARM else "flask-run", tmp_path,
                    launcher, monkeypatch)
    server = psutil.Process(handle.pid)
    launcher.close()
    assert handle.process.poll() == -signal.SIGTERM
    assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE
    assert launcher._zygote is not None and launcher._zygote.returncode == 0


def test_a_reused_pid_is_not_taken_for_its_earlier_holder(
    warm: WarmLauncher, app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The zygote forks a server whose pid an earlier, stopped server had (pid_max is
    32768 here, so a long session wraps): the earlier exit code must not make the new
    server look dead at once ("exited with killed by SIGTERM" with a healthy log)."""
    if not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: /proc/sys/kernel/ns_last_pid must be writable")
        pytest.skip("forcing pid reuse needs root (/proc/sys/kernel/ns_last_pid)")
    first = _start(app_dir, "waitress", tmp_path, warm, monkeypatch)
    old = first.pid
    first.stop()
    handle = None
    for _ in range(50):  # other processes may fork between the write and the spawn
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(old - 1))
        handle = _start(app_dir, "waitress", tmp_path, warm, monkeypatch)
        if handle.pid == old:
            break
        handle.stop()
    assert handle is not None and handle.pid == old, "the pid was not reused"
    try:
        assert handle.is_running()
        assert requests.get(handle.url + "/state", timeout=10).json()["pid"] == old
    finally:
        handle.stop()

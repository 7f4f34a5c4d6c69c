"""The watchdog (what stops our servers when pytest is SIGKILLed) kills only what is
provably ours, and takes orders from no one but the pytest process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from _processes import alive

HOLD = """
import os, signal, time

def test_1_hold(flask_server):
    with open("server.pid", "w") as f:
        f.write(str(flask_server.pid))
    open("ready", "w").close()
    time.sleep(120)
"""

REUSE = """
import os, signal, subprocess, time

def test_1_server_dies(flask_server):
    os.kill(flask_server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while flask_server.is_running() and time.monotonic() < deadline:
        time.sleep(0.02)  # is_running() reaps it
    with open("dead.pid", "w") as f:
        f.write(str(flask_server.pid))

def test_2_pid_reused_then_pytest_is_killed():
    target = int(open("dead.pid").read())
    for _ in range(200):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(target - 1))
        stranger = subprocess.Popen(["sleep", "60"], start_new_session=True,
                                    env={"PATH": os.environ["PATH"]})
        if stranger.pid == target:
            break
        stranger.kill()
        stranger.wait()
    with open("stranger.pid", "w") as f:
        f.write(str(stranger.pid))
    open("ready", "w").close()
    time.sleep(120)
"""

#: mod_wsgi under a nested pytest's long temp dir puts its sockets in a directory of its own
HOLD_SOCKET_DIR = """
import time

def test_1_hold(flask_server):
    argv = flask_server.argv
    with open("socket.dir", "w") as f:
        f.write(argv[argv.index("--socket-prefix") + 1])
    open("ready", "w").close()
    time.sleep(120)
"""


def _run_then_kill(path: Path, meddle: Callable[[psutil.Process], object] | None = None,
                   servers: str = "flask-run") -> tuple[psutil.Process, str]:
    """Run the inner tests until they write ``ready``, let ``meddle`` at the watchdog,
    SIGKILL that pytest; the watchdog (still finishing its work) and the inner output."""
    log = path / "inner.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
             "--flask-app=hello:app", f"--flask-servers={servers}"],
            cwd=path, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (path / "ready").exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        dogs = [p for p in psutil.Process(proc.pid).children()
                if "pytest_flaskserve._child.watchdog" in " ".join(p.cmdline())]
        assert len(dogs) == 1, log.read_text()
        if meddle is not None:
            meddle(dogs[0])
        return dogs[0], log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _reuse_possible() -> None:
    if not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: /proc/sys/kernel/ns_last_pid must be writable")
        pytest.skip("forcing pid reuse needs root (/proc/sys/kernel/ns_last_pid); run as root")


def test_watchdog_leaves_a_reused_pid_alone(pytester: pytest.Pytester, examples: Path) -> None:
    """A server dies on its own and is reaped; a stranger gets its pid and leads its own
    group; then pytest is SIGKILLed. The watchdog used to killpg the registered pid."""
    _reuse_possible()
    pytester.makepyfile(test_inner=REUSE)
    dog, output = _run_then_kill(pytester.path)
    stranger = int((pytester.path / "stranger.pid").read_text())
    assert stranger == int((pytester.path / "dead.pid").read_text()), output
    try:
        dog.wait(timeout=15)
        assert alive(stranger), "the watchdog killed a process it did not start"
    finally:
        os.kill(stranger, signal.SIGKILL)


def test_no_other_process_can_give_the_watchdog_orders(pytester: pytest.Pytester,
                                                       examples: Path) -> None:
    """Every file descriptor of the watchdog is tried, through /proc, by a process that
    did not start it: none lets it add a target (a socket cannot be reopened there, and
    a target must be provably ours anyway)."""
    pytester.makepyfile(test_inner=HOLD)
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    opened: list[str] = []

    def order_a_kill(dog: psutil.Process) -> None:
        started = psutil.Process(victim.pid).create_time()
        token = next(arg for arg in dog.cmdline() if len(arg) == 16)
        orders = f"+ {victim.pid}\n+ {victim.pid} {started!r} {token}:forged\n".encode()
        for fd in os.listdir(f"/proc/{dog.pid}/fd"):
            path = f"/proc/{dog.pid}/fd/{fd}"
            try:
                with open(path, "wb", buffering=0) as channel:
                    channel.write(orders)
                    opened.append(os.readlink(path))
            except OSError:
                continue

    try:
        dog, output = _run_then_kill(pytester.path, order_a_kill)
        dog.wait(timeout=15)
        server = int((pytester.path / "server.pid").read_text())
        assert not alive(server), "the watchdog did not stop the server"
        assert victim.poll() is None, f"a stranger made the watchdog kill a process ({opened})"
        assert set(opened) == {"/dev/null"}, opened  # stdio; the socket cannot be opened
    finally:
        victim.kill()
        victim.wait()


def test_the_watchdog_removes_a_server_temp_dir(pytester: pytest.Pytester,
                                                 examples: Path) -> None:
    """A directory made for a server outside pytest's temp dir (mod_wsgi's sockets, when
    the server root is too long for a socket path) is removed after a SIGKILL of pytest
    too, not only by the server's own stop."""
    pytester.makepyfile(test_inner=HOLD_SOCKET_DIR)
    dog, output = _run_then_kill(pytester.path, servers="mod_wsgi")
    made = Path((pytester.path / "socket.dir").read_text())
    assert made.name.startswith("flaskserve-mod_wsgi-"), (made, output)
    dog.wait(timeout=15)
    assert not made.exists(), f"{made} outlived pytest: {sorted(made.iterdir())}"


DIE_BEFORE_REGISTERING = """
import os
from pytest_flaskserve.lifecycle import registry

def die(proc):  # pytest dies (pytest-timeout's os._exit) between the spawn and add()
    with open("server.pid", "w") as f:
        f.write(str(proc.pid))
    os._exit(1)

registry.registry.add = die
"""


def test_a_server_spawned_just_before_pytest_died_is_stopped(pytester: pytest.Pytester,
                                                            examples: Path) -> None:
    """The watchdog runs before the first spawn: a pytest that dies right after spawning a
    server, before registering it, still has its server swept by its marker."""
    pytester.makeconftest(DIE_BEFORE_REGISTERING)
    pytester.makepyfile(test_inner="def test_x(flask_server):\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--flask-app=hello:app", "--flask-servers=flask-run"],
                          cwd=pytester.path, capture_output=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    server = int((pytester.path / "server.pid").read_text())
    deadline = time.monotonic() + 15
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert not alive(server), "the server outlived its pytest"
    finally:
        if alive(server):
            os.kill(server, signal.SIGKILL)

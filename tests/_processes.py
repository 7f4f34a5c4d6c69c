"""Helpers the process and stop tests share."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

import psutil


@contextlib.contextmanager
def ended_at_exit(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """``proc`` (an inner pytest the test signals), killed and reaped if the test's body
    left it running (a failed assertion while it waits)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has ended: only its exit code is left)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_leaves_nothing_behind(cases: str) -> str:
    """The source of a nested test that stops each ``(server, min processes, exit code)`` of
    ``cases`` (a Python list literal) and checks its whole tree ended by its own stop."""
    return STOP_TEST.replace("CASES", cases)


STOP_TEST = """
@pytest.mark.parametrize("server, processes, code", CASES)
def test_stop_leaves_nothing_behind(flask_server_factory, server, processes, code):
    h = flask_server_factory(server, "hello:app")
    tree = [psutil.Process(h.pid), *psutil.Process(h.pid).children(recursive=True)]
    # at least: Apache's MPM starts more children when it is busy (seen in CI's warm pass)
    assert len(tree) >= processes, [p.cmdline() for p in tree]
    assert h.stop() == code
    assert not h.stop_result.forced, "needed SIGKILL"
    deadline = time.monotonic() + 5
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree):
        assert time.monotonic() < deadline, [p.pid for p in tree if p.is_running()]
        time.sleep(0.02)
    with pytest.raises(OSError):
        socket.create_connection((h.host, h.port), timeout=1).close()
"""

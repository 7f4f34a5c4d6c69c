"""Stress, run by CI (marked slow): port collisions under xdist, resource growth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script: str, *args: str, timeout: float) -> dict[str, object]:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout[: proc.stdout.rindex("}") + 1])


@pytest.mark.slow
def test_300_starts_under_xdist_never_collide() -> None:
    result = _run("port_stress.py", "--starts", "300", "--workers", "4",
                  "--servers", "flask-run,waitress", timeout=600)
    assert result["starts_ok"] == result["starts_requested"] == 300
    assert result["pytest_exit"] == 0


@pytest.mark.slow
def test_repeated_starts_leak_nothing() -> None:
    result = _run("stress.py", "--rounds", "4",
                  "--servers", "flask-run,app-run,gunicorn,waitress,uwsgi", timeout=300)
    assert result["growth"] == {"fds": 0, "threads": 0, "children": 0, "owned_processes": 0}

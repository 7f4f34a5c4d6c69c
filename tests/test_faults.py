"""The fast cases of the fault harness (benchmarks/faults.py, which runs them all): a run
judged from outside, by every descendant sampled while it lived, leaves nothing alive and
nothing listening 5 s after it ends. Every default server, in each run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "benchmarks" / "faults.py"
SERVERS = "flask-run,app-run,gunicorn,waitress,uwsgi,granian,cheroot"


@pytest.mark.parametrize("case", ["hostile-detach-scrubbed", "sigkill-detach-scrubbed"])
def test_fault_case_leaves_nothing_behind(case: str) -> None:
    done = subprocess.run([sys.executable, str(HARNESS), "--json", case, SERVERS],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = json.loads(done.stdout.splitlines()[-1])
    assert verdict["sampled"] > 7, verdict  # it saw the servers and the detached grandchildren
    assert verdict["alive"] == [] and verdict["listening"] == [], verdict
    assert verdict["note"] == "", verdict

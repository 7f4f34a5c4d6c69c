"""pytest-xdist: one server per worker, the worker id in log file names."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_each_worker_runs_its_own_servers(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import os
        import pytest
        import requests

        @pytest.mark.parametrize("n", range(4))
        def test_x(flask_server, n):
            worker = os.environ["PYTEST_XDIST_WORKER"]
            assert f"-{worker}-" in flask_server.log_path.name
            assert requests.get(flask_server.url, timeout=10).text == "Hello, World!"
            with open(f"pids-{worker}.txt", "a") as f:
                f.write(f"{flask_server.server} {flask_server.pid}\\n")
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "-n", "2",
                                           "--flask-servers=flask-run,waitress")
    result.assert_outcomes(passed=8)
    per_worker = {}
    for path in pytester.path.glob("pids-gw*.txt"):
        per_worker[path.name] = {tuple(line.split()) for line in path.read_text().splitlines()}
    assert len(per_worker) == 2
    a, b = per_worker.values()
    assert not {pid for _, pid in a} & {pid for _, pid in b}  # no server shared by workers
    for pairs in per_worker.values():
        servers_seen = [s for s, _ in pairs]
        assert len(servers_seen) == len(set(servers_seen))  # one server of each kind per worker

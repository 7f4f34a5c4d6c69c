#!/usr/bin/env python3
"""Port-collision stress: N function-scoped server starts under ``pytest -n WORKERS``.

    python benchmarks/port_stress.py --starts 300 --workers 4

Each inner test starts a fresh server (round-robin over fast servers), checks that the
answering process is its own (the pid behind the port), and records port, pid and the
number of start attempts. A collision shows up as a failed start, an answer from another
server's process, or two live servers on one port; retries (a port lost to a race and
taken again) are counted separately. Exit status 0 means zero collisions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

INNER = '''
import json, os
import psutil, pytest, requests

SERVERS = {servers!r}

@pytest.mark.flask_scope("function")
@pytest.mark.parametrize("n", range({per_server}))
@pytest.mark.flask_servers(*SERVERS)
def test_start(flask_server, n):
    r = requests.get(flask_server.url + "/ping", timeout=10)
    assert r.json() == {{"pong": "ok"}}
    owners = {{flask_server.pid, *(p.pid for p in psutil.Process(flask_server.pid).children(recursive=True))}}
    conns = [c for pid in owners for c in psutil.Process(pid).net_connections("tcp")
             if c.status == psutil.CONN_LISTEN and c.laddr.port == flask_server.port]
    assert conns, "our process tree does not own the port it answered on"
    with open(os.environ["STRESS_RECORD"], "a") as f:
        f.write(json.dumps({{"server": flask_server.server, "port": flask_server.port,
                            "pid": flask_server.pid, "attempts": flask_server.attempts,
                            "worker": os.environ.get("PYTEST_XDIST_WORKER", "")}}) + "\\n")
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--servers", default="flask-run,waitress,gunicorn")
    args = parser.parse_args()
    servers = [s for s in args.servers.split(",") if s]
    per_server = -(-args.starts // len(servers))
    work = Path(tempfile.mkdtemp(prefix="flaskserve-stress-"))
    try:
        shutil.copy(ROOT / "example_apps" / "hello.py", work / "hello.py")
        (work / "test_stress.py").write_text(INNER.format(servers=servers, per_server=per_server))
        record = work / "record.jsonl"
        env = {**os.environ, "STRESS_RECORD": str(record)}
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(args.workers),
             "--flask-app=hello:app", "test_stress.py"],
            cwd=work, env=env, capture_output=True, text=True, timeout=1200)
        elapsed = time.monotonic() - t0
        rows = [json.loads(ln) for ln in record.read_text().splitlines()] if record.exists() else []
        retries = sum(r["attempts"] - 1 for r in rows)
        summary = {
            "starts_requested": per_server * len(servers),
            "starts_ok": len(rows),
            "workers": args.workers,
            "servers": dict(Counter(r["server"] for r in rows)),
            "distinct_ports": len({r["port"] for r in rows}),
            "port_retries": retries,
            "pytest_exit": proc.returncode,
            "seconds": round(elapsed, 1),
        }
        print(json.dumps(summary, indent=2))
        if proc.returncode != 0:
            print(proc.stdout[-4000:])
            return 1
        return 0 if len(rows) == summary["starts_requested"] else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

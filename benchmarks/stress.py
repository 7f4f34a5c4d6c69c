#!/usr/bin/env python3
"""Resource stress: start and stop each server N times in one process.

    python benchmarks/stress.py --rounds 200

Reports, before and after, this process's open file descriptors and threads and the
number of live processes carrying our owner marker; any growth is a leak. Exit status 0
means no growth.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_flaskserve import servers  # noqa: E402
from pytest_flaskserve.appspec import parse_spec  # noqa: E402
from pytest_flaskserve.appspec.resolve import resolve_app  # noqa: E402
from pytest_flaskserve.lifecycle.process import OWNER_ENV, SESSION_TOKEN, stop_all  # noqa: E402
from pytest_flaskserve.lifecycle.supervisor import StartConfig, start_server  # noqa: E402
from pytest_flaskserve.servers import ServerOptions  # noqa: E402


def owned() -> int:
    count = 0
    for p in psutil.process_iter():
        try:
            if p.environ().get(OWNER_ENV, "").startswith(SESSION_TOKEN + ":"):
                count += p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            continue
    return count


def snapshot() -> dict[str, int]:
    gc.collect()
    me = psutil.Process()
    return {"fds": me.num_fds(), "threads": me.num_threads(), "children": len(me.children()),
            "owned_processes": owned()}


def run(rounds: int, names: list[str]) -> dict[str, object]:
    app = resolve_app(parse_spec("hello:app", ROOT / "example_apps"))
    with tempfile.TemporaryDirectory(prefix="flaskserve-stress-") as tmp:
        config = StartConfig(log_dir=Path(tmp))
        # one warm-up round so lazily created things (psutil caches, the watchdog) exist
        for name in names:
            start_server(servers.get(name), app, ServerOptions(), config).stop()
        before = snapshot()
        t0 = time.monotonic()
        for _ in range(rounds):
            for name in names:
                handle = start_server(servers.get(name), app, ServerOptions(), config)
                handle.stop()
                handle.log_path.unlink()
        elapsed = time.monotonic() - t0
        after = snapshot()
    stop_all()
    growth = {k: after[k] - before[k] for k in before}
    return {"rounds": rounds, "servers": names, "starts": rounds * len(names),
            "seconds": round(elapsed, 1), "before": before, "after": after, "growth": growth}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--servers", default="")
    args = parser.parse_args()
    names = [n for n in args.servers.split(",") if n] or [
        n for n in servers.names() if servers.get(n).unavailable() is None
        and getattr(servers.get(n), "default", True)]
    result = run(args.rounds, names)
    print(json.dumps(result, indent=2))
    return 0 if all(v <= 0 for v in result["growth"].values()) else 1  # type: ignore[union-attr]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())

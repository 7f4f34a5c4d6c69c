#!/usr/bin/env python3
"""What nginx in front of a server costs a start, measured side by side in one run.

    .venv/bin/python benchmarks/nginx.py [--rounds 7] [--servers gunicorn,uwsgi,...]

Round by round, in a shuffled order, each server is started bare (``SERVER``) and behind
nginx (``SERVER+nginx``) through ``start_server``, and stopped. Reported per server
(medians): the bare time-to-ready, the proxied time-to-ready, what the proxy adds (goal:
under 30 ms), nginx's own start (process start until a request through it reaches the
ready upstream) and nginx's own stop (SIGQUIT until the master has exited). Every server
binds 127.0.0.1. Prints a table and writes JSON to ``benchmarks/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import parse_spec
from pytest_flaskserve.appspec.resolve import resolve_app
from pytest_flaskserve.lifecycle.supervisor import StartConfig, start_server
from pytest_flaskserve.proxy.proxied import ProxiedHandle
from pytest_flaskserve.servers import ServerOptions

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ("gunicorn", "waitress", "uwsgi", "granian", "cheroot")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--servers", default=",".join(DEFAULT))
    args = parser.parse_args()
    names = [n for n in args.servers.split(",") if servers.get(n).unavailable() is None
             and servers.get(f"{n}+nginx").unavailable() is None]
    app = resolve_app(parse_spec("hello.py", str(ROOT / "example_apps")), timeout=30)
    runs: dict[str, dict[str, list[float]]] = {
        n: {"bare": [], "proxied": [], "nginx_start": [], "nginx_stop": []} for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        config = StartConfig(log_dir=Path(tmp))
        for _ in range(args.rounds):
            visits = [(n, proxied) for n in names for proxied in (False, True)]
            random.shuffle(visits)
            for name, proxied in visits:
                launcher = servers.get(f"{name}+nginx" if proxied else name)
                t0 = time.perf_counter()
                handle = start_server(launcher, app, ServerOptions(), config)
                ready = time.perf_counter() - t0
                if isinstance(handle, ProxiedHandle):
                    runs[name]["proxied"].append(ready)
                    runs[name]["nginx_start"].append(handle.nginx.ready_seconds)
                    t1 = time.perf_counter()
                    handle.nginx.stop()
                    runs[name]["nginx_stop"].append(time.perf_counter() - t1)
                else:
                    runs[name]["bare"].append(ready)
                handle.stop()
    print(f"{'server':<10} {'bare ms':>8} {'proxied ms':>11} {'added ms':>9} "
          f"{'nginx start':>12} {'nginx stop':>11}   (medians of {args.rounds})")
    summary = {}
    for name, r in runs.items():
        med = {k: statistics.median(v) * 1000 for k, v in r.items()}
        med["added"] = med["proxied"] - med["bare"]
        summary[name] = med
        print(f"{name:<10} {med['bare']:>8.0f} {med['proxied']:>11.0f} {med['added']:>9.0f} "
              f"{med['nginx_start']:>12.1f} {med['nginx_stop']:>11.1f}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"nginx-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"rounds": args.rounds, "medians_ms": summary,
                                "runs_s": runs}, indent=2))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

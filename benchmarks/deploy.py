#!/usr/bin/env python3
"""Ready and stop times of the example deployment files' own commands (--flask-deploy).

    .venv/bin/python benchmarks/deploy.py [--rounds 5]      # ~30 s on 2 cores

Each of example_apps/deploy's Procfile, Dockerfile, gunicorn.conf.py and uwsgi.ini is
started through ``start_server`` exactly as the plugin starts it (the user's command with
its listen address moved to a free loopback port), ``--rounds`` times, interleaved; the
plugin's own launcher for the same server is measured beside it, on the same app, for
comparison. The deployment's settings are the user's (Gunicorn's graceful_timeout, uWSGI
without the plugin's SIGCHLD wake-up hook), so its stop can be slower than the plugin's own
command: that is the deployment's real stop. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_apps" / "deploy"
sys.path.insert(0, str(ROOT))

from pytest_flaskserve import deploy, servers  # noqa: E402
from pytest_flaskserve.appspec.grammar import parse_spec  # noqa: E402
from pytest_flaskserve.appspec.resolve import resolve_app  # noqa: E402
from pytest_flaskserve.lifecycle.supervisor import StartConfig, start_server  # noqa: E402
from pytest_flaskserve.servers import ServerOptions  # noqa: E402

#: deployment file -> the plugin's own launcher for the server it runs
FILES = {"Procfile": "gunicorn", "gunicorn.conf.py": "gunicorn", "uwsgi.ini": "uwsgi",
         "Dockerfile": "waitress"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    app = resolve_app(parse_spec("app:create_app()", EXAMPLE), timeout=30)
    rows: dict[str, tuple[object, object]] = {}
    for name, own in FILES.items():
        launcher = deploy.load(name, EXAMPLE, "benchmark")[0]
        rows[launcher.name] = (launcher, launcher.own_app() or app)
        rows[f"{own} (plugin's own)"] = (servers.get(own), app)
    ready: dict[str, list[float]] = {k: [] for k in rows}
    stop: dict[str, list[float]] = {k: [] for k in rows}
    codes: dict[str, set[object]] = {k: set() for k in rows}
    with tempfile.TemporaryDirectory() as logs:
        config = StartConfig(log_dir=Path(logs))
        for _ in range(rounds):
            order = list(rows)
            random.shuffle(order)
            for key in order:
                launcher, target = rows[key]
                handle = start_server(launcher, target, ServerOptions(), config)  # type: ignore[arg-type]
                ready[key].append(handle.ready_seconds * 1000)
                handle.stop()
                assert handle.stop_result is not None
                stop[key].append(handle.stop_result.seconds * 1000)
                codes[key].add(handle.stop_result.returncode)
    print(f"{'server':<26} {'ready ms (median/max)':>22} {'stop ms (median/max)':>22}  exit")
    for key in rows:
        print(f"{key:<26} {statistics.median(ready[key]):>12.0f}/{max(ready[key]):<9.0f}"
              f" {statistics.median(stop[key]):>12.0f}/{max(stop[key]):<9.0f} "
              f"{', '.join(map(str, sorted(codes[key], key=str)))}")


if __name__ == "__main__":
    main()

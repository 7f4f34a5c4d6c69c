#!/usr/bin/env python3
"""What the installed plugin costs a pytest run that starts no server.

    python benchmarks/load_overhead.py              # ~1 minute on 2 cores
    python benchmarks/load_overhead.py --runs 25 --source /path/to/checkout

A project of 20 trivial tests is collected (``pytest -q --co -p no:cacheprovider``) with
the plugin loaded and with ``-p no:flaskserve``, the two runs alternating so that machine
noise falls on both alike. The package is installed the way a wheel installs it: a copy
of ``pytest_flaskserve/`` and a ``.dist-info`` with its ``pytest11`` entry point and
``RECORD``, put first on ``PYTHONPATH`` (pytest then rewrites the plugin's assertions,
as it does for any installed plugin; an editable install escapes that). Two cases:

* **cached**: bytecode caching on, after one run that wrote the caches;
* **no bytecode**: ``PYTHONDONTWRITEBYTECODE=1`` and a copy with no ``__pycache__``, as
  many CI and Docker images run: every module is compiled (and rewritten) on every run.

Prints the median of each, wall clock and CPU time (user + system, steadier when other
work shares the machine), and the difference and ratio. The goal is <= 10 ms added in
both cases. Then the part of it spent importing the plugin's own modules (compiled,
rewritten and run by pytest's import hook), timed inside the process: far steadier than
the difference of two whole runs, and the part that grows without bytecode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = 20
GOAL_MS = 10.0


def install_copy(source: Path, site: Path) -> None:
    """``pytest_flaskserve`` from ``source`` into ``site``, as a wheel would put it."""
    shutil.copytree(source / "pytest_flaskserve", site / "pytest_flaskserve",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = site / "pytest_flaskserve-0.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pytest-flaskserve\n"
                                   "Version: 0.0.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[pytest11]\nflaskserve = pytest_flaskserve.plugin\n",
                                           encoding="utf-8")
    files = sorted(p.relative_to(site).as_posix() for p in (site / "pytest_flaskserve").rglob("*")
                   if p.is_file())
    (dist / "RECORD").write_text("".join(f"{f},,\n" for f in files), encoding="utf-8")


def make_project(root: Path) -> None:
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (root / "test_plain.py").write_text(
        "".join(f"def test_{i}():\n    assert {i} == {i}\n\n\n" for i in range(TESTS)),
        encoding="utf-8")


def run_once(project: Path, env: dict[str, str], plugin: bool) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one collection run."""
    argv = [sys.executable, "-m", "pytest", "-q", "--co", "-p", "no:cacheprovider"]
    if not plugin:
        argv += ["-p", "no:flaskserve"]
    start = time.perf_counter()
    with subprocess.Popen(argv, cwd=project, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as child:
        assert child.stdout is not None
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if child.returncode != 0 or f"{TESTS} tests collected" not in out:
        raise SystemExit(f"pytest failed ({child.returncode}):\n{out}")
    return seconds, usage.ru_utime + usage.ru_stime


#: a pytest run that times, inside the process, each top-level import of our modules
#: through pytest's assertion-rewriting import hook (nested imports count once)
_TIMED_RUN = """
import sys, time
import _pytest.assertion.rewrite as rewrite
hook, depth, spent = rewrite.AssertionRewritingHook.exec_module, [0], [0.0]
def timed(self, module):
    ours = module.__name__.split(".")[0] == "pytest_flaskserve"
    depth[0] += ours
    start = time.perf_counter()
    try:
        return hook(self, module)
    finally:
        depth[0] -= ours
        if ours and depth[0] == 0:
            spent[0] += time.perf_counter() - start
rewrite.AssertionRewritingHook.exec_module = timed
import pytest
code = pytest.main(sys.argv[1:])
print("OWN-MODULES", spent[0])
raise SystemExit(code)
"""


def own_modules_seconds(project: Path, env: dict[str, str], runs: int) -> float:
    """Median seconds one run spends importing the plugin's modules."""
    got = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _TIMED_RUN, "-q", "--co", "-p",
                              "no:cacheprovider"], cwd=project, env=env, capture_output=True,
                             text=True, check=True).stdout
        got.append(float(out.rsplit("OWN-MODULES", 1)[1]))
    return statistics.median(got)


def check_loaded_copy(project: Path, env: dict[str, str], site: Path) -> None:
    """The plugin under test is the copy in ``site``, not another install."""
    code = ("import importlib.metadata as m, pytest_flaskserve.plugin as p; "
            "print(p.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=project, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    if not out.startswith(str(site)):
        raise SystemExit(f"the plugin was imported from {out}, not from the copy in {site}")


def measure(source: Path, runs: int, bytecode: bool,
            work: Path) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds with the plugin ``"on"`` and ``"off"``, for one case, and
    under ``"own modules"`` the seconds of it spent importing the plugin's modules."""
    site = work / ("site-cached" if bytecode else "site-fresh")
    project = work / ("project-cached" if bytecode else "project-fresh")
    install_copy(source, site)
    make_project(project)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "FLASKSERVE_", "FLASK_", "COV_"))}
    env["PYTHONPATH"] = str(site)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    check_loaded_copy(project, env, site)
    # one unmeasured run of each: with caching on it writes the caches the case is about
    run_once(project, env, True)
    run_once(project, env, False)
    if not bytecode and any(site.rglob("__pycache__")):
        raise SystemExit(f"bytecode was written under {site} despite PYTHONDONTWRITEBYTECODE")
    samples: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    for i in range(runs):
        order = (True, False) if i % 2 == 0 else (False, True)
        for plugin in order:
            samples["on" if plugin else "off"].append(run_once(project, env, plugin))
    medians = {arm: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
               for arm, got in samples.items()}
    own = own_modules_seconds(project, env, runs)
    medians["own modules"] = (own, own)
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per arm and case (15)")
    parser.add_argument("--source", type=Path, default=REPO,
                        help="a checkout holding pytest_flaskserve/ (default: this one)")
    args = parser.parse_args()
    print(f"pytest -q --co on {TESTS} trivial tests, {args.runs} runs each, "
          f"plugin from {args.source}")
    print(f"{'case':<12} {'clock':<6} {'plugin on':>10} {'-p no:flaskserve':>17} {'added':>9} "
          f"{'ratio':>6}")
    over_goal = False
    with tempfile.TemporaryDirectory(prefix="flaskserve-load-") as tmp:
        for label, bytecode in (("cached", True), ("no bytecode", False)):
            medians = measure(args.source, args.runs, bytecode, Path(tmp))
            for i, clock in enumerate(("wall", "cpu")):
                on, off = medians["on"][i], medians["off"][i]
                added = (on - off) * 1000
                over_goal |= clock == "wall" and added > GOAL_MS
                print(f"{label:<12} {clock:<6} {on * 1000:>7.0f} ms {off * 1000:>14.0f} ms "
                      f"{added:>+6.1f} ms {on / off:>5.2f}x")
            print(f"{label:<12} of which importing the plugin's own modules: "
                  f"{medians['own modules'][0] * 1000:.1f} ms")
    print(f"goal: <= {GOAL_MS:g} ms added (wall clock) in both cases: "
          f"{'missed' if over_goal else 'met'}; the CPU rows are steadier on a busy machine")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

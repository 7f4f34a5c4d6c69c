#!/usr/bin/env python3
"""Fault harness: run pytest with the plugin under faults, and count what it leaves behind.

    python benchmarks/faults.py                         # every case on every server: a table
    python benchmarks/faults.py --cases sigkill-test,hostile-detach --servers gunicorn
    python benchmarks/faults.py --json CASE SERVER      # one run, its verdict as JSON

A run is judged from outside: this process makes itself a child subreaper, so whatever the
run forks, detaches or orphans (pytest killed, a server's main process gone) stays below
it instead of passing to init; a sampler thread keeps a psutil handle (pid and start time,
so a reused pid is never miscounted) of every descendant it sees while the run lives, and
the loopback ports they listen on. 5 s after the run ends, the verdict counts the sampled
processes still alive and the ports that still accept a connection; both must be 0.
Exit status 0 when every verdict is clean. ``tests/test_faults.py`` runs the fast cases.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_flaskserve import servers  # noqa: E402
from pytest_flaskserve.lifecycle.reach import become_subreaper  # noqa: E402

#: how long after a run ends its leftovers are counted
AFTER = 5.0
#: the pytest plugins the plugin-* cases run with, installed on demand (``--no-deps``:
#: pytest is here) into a directory only those runs see, so no other case has them
PLUGIN_DISTRIBUTIONS = {"timeout": "pytest-timeout", "rerunfailures": "pytest-rerunfailures",
                        "randomly": "pytest-randomly"}
PLUGIN_DEPS = ROOT / "benchmarks" / "results" / ".deps-faults"

#: what every case's app ends with: ``python app.py`` serves it (app-run)
MAIN_GUARD = """

if __name__ == "__main__":
    app.run()
"""

HELLO = """
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "hello"
"""

#: The app's import forks a child that leaves the session and forks a grandchild, which
#: re-executes itself without any FLASKSERVE_* variable and listens on a loopback port.
#: Every import does so: resolvers, servers, workers.
DETACH = HELLO + """
import os, sys

SCRUB = {scrub!r}
ESCAPEE = '''
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
with open(sys.argv[1], "a") as f:
    f.write(f"{{os.getpid()}} {{s.getsockname()[1]}}\\\\n")
time.sleep(600)
'''
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        env = {{k: v for k, v in os.environ.items() if not (SCRUB and k.startswith("FLASKSERVE"))}}
        os.execve(sys.executable, [sys.executable, "-c", ESCAPEE, os.environ["ESCAPEES"]], env)
    os._exit(0)
"""

IGNORES_SIGTERM = HELLO + """
import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
"""

POOL = HELLO + """
import multiprocessing
pool = multiprocessing.get_context("fork").Pool(2)
"""

EXTRA_PORT = HELLO + """
import socket, threading
extra = socket.socket()
extra.bind(("127.0.0.1", 0))
extra.listen()
threading.Thread(target=lambda: extra.accept(), daemon=True).start()
"""

ENDLESS_OUTPUT = HELLO + """
import sys, threading

def spam():
    line = "x" * 200 + "\\n"
    while True:
        sys.stdout.write(line)

threading.Thread(target=spam, daemon=True).start()
"""

EXIT_IN_WORKER = HELLO + """
import os


@app.get("/die")
def die():
    os._exit(3)
"""

EXIT_AFTER_START = HELLO + """
import os, threading
threading.Timer(0.8, lambda: os._exit(0)).start()
"""

#: The inner test module: a session server, a few tests, points the faults aim at.
INNER = """
import os, time, urllib.request
import pytest

POINTS = os.environ["FAULT_POINTS"]


def point(name):
    open(os.path.join(POINTS, name), "w").close()


@pytest.fixture
def watched(flask_server):
    yield flask_server
    point("teardown")
    time.sleep(float(os.environ.get("FAULT_TEARDOWN_HOLD", "0")))


def test_a_serves(flask_url):
    assert urllib.request.urlopen(flask_url, timeout=10).read() == b"hello"


def test_b_holds(watched):
    point("test")
    time.sleep(float(os.environ.get("FAULT_TEST_HOLD", "0")))
    if os.environ.get("FAULT_FAIL"):
        assert False, "deliberate failure"


def test_c_again(flask_url):
    if os.environ.get("FAULT_HIT"):
        try:
            urllib.request.urlopen(flask_url + os.environ["FAULT_HIT"], timeout=10)
        except OSError:
            pass
    point("end")
"""


def install_plugins(names: list[str]) -> None:
    """Make the pytest plugins ``names`` importable from PLUGIN_DEPS (once)."""
    missing = [PLUGIN_DISTRIBUTIONS[n] for n in names
               if not any(PLUGIN_DEPS.glob(PLUGIN_DISTRIBUTIONS[n].replace("-", "_") + "-*"))]
    if not missing:
        return
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--disable-pip-version-check", "--target", str(PLUGIN_DEPS),
                           *missing], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"cannot install {', '.join(missing)}: {done.stderr.strip()[-500:]}")


@dataclass
class Run:
    """One pytest run of a case: where, how, and what the fault does while it runs."""

    directory: Path
    server: str
    app: str = HELLO
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    python_flags: list[str] = field(default_factory=list)
    limits: dict[int, int] = field(default_factory=dict)
    #: called with the running pytest and the points directory; may signal it
    fault: Callable[[subprocess.Popen[bytes], Path], None] | None = None
    timeout: float = 120.0

    def start(self) -> subprocess.Popen[bytes]:
        self.directory.mkdir(parents=True, exist_ok=True)
        # a main guard, so that app-run serves the app as the other servers do
        (self.directory / "app.py").write_text(self.app + MAIN_GUARD)
        (self.directory / "test_inner.py").write_text(INNER)
        (self.directory / "points").mkdir(exist_ok=True)
        env = {**os.environ, "FAULT_POINTS": str(self.directory / "points"),
               "ESCAPEES": str(self.directory / "escapees"), **self.env}
        env.pop("PYTEST_ADDOPTS", None)
        plugins = [name for flag, name in zip(self.args, self.args[1:], strict=False)
                   if flag == "-p" and name in PLUGIN_DISTRIBUTIONS]
        if plugins:
            install_plugins(plugins)
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(PLUGIN_DEPS), env.get("PYTHONPATH")]))
        argv = [sys.executable, *self.python_flags, "-m", "pytest", "-p", "no:cacheprovider",
                "--flask-app=app:app", f"--flask-servers={self.server}", *self.args]
        limits = dict(self.limits)

        def apply_limits() -> None:
            for which, value in limits.items():
                resource.setrlimit(which, (value, value))

        self.log = open(self.directory / "pytest.log", "wb")  # noqa: SIM115 - closed in judge
        return subprocess.Popen(argv, cwd=self.directory, env=env, stdout=self.log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=apply_limits if limits else None)

    def output(self) -> str:
        return (self.directory / "pytest.log").read_text(errors="replace")


class Sampler:
    """Keeps a handle of every descendant of this process, and the ports they listen on."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.seen: dict[tuple[int, float], psutil.Process] = {}
        self.ports: dict[int, str] = {}
        self._stop = threading.Event()
        self._ours: set[int] = set()  # pids of Popen children (not ours to reap here)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def own(self, pid: int) -> None:
        self._ours.add(pid)

    def _run(self) -> None:
        me = psutil.Process()
        rounds = 0
        while not self._stop.is_set():
            rounds += 1
            for proc in _children(me):
                try:
                    key = (proc.pid, proc.create_time())
                    if key not in self.seen:
                        self.seen[key] = proc
                    if proc.status() == psutil.STATUS_ZOMBIE:
                        if proc.ppid() == me.pid and proc.pid not in self._ours:
                            os.waitpid(proc.pid, os.WNOHANG)  # an orphan we adopted
                        continue
                    if rounds % 5 == 1 or key not in self.seen:
                        for conn in proc.net_connections(kind="inet"):
                            if conn.status == psutil.CONN_LISTEN and conn.laddr:
                                self.ports.setdefault(conn.laddr.port, _describe(proc))
                except (psutil.Error, ChildProcessError, OSError):
                    continue
            self._stop.wait(self.interval)

    def alive(self) -> list[str]:
        found = []
        for proc in self.seen.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(_describe(proc))
            except psutil.Error:
                continue
        return found

    def listening(self) -> list[str]:
        return [f"{port} ({who})" for port, who in sorted(self.ports.items()) if _accepts(port)]


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {' '.join(proc.cmdline()).replace(chr(10), ' ')[:90]}"
    except psutil.Error:
        return str(proc.pid)


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_point(directory: Path, name: str, proc: subprocess.Popen[bytes],
               timeout: float = 60.0) -> bool:
    """Wait until the run reaches ``name``; False if it ended (or took too long) first."""
    path = directory / "points" / name
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def at(point: str, sig: int, delay: float = 0.0
       ) -> Callable[[subprocess.Popen[bytes], Path], None]:
    """A fault: ``sig`` to pytest once the run reaches ``point`` (then ``delay`` s)."""
    def fault(proc: subprocess.Popen[bytes], directory: Path) -> None:
        if point == "start":  # while the session's first server starts
            deadline = time.monotonic() + 30
            while not any("FLASKSERVE_OWNER" in _environ(p) for p in _children(psutil.Process(proc.pid))):
                if proc.poll() is not None or time.monotonic() > deadline:
                    return
                time.sleep(0.002)
        elif not wait_point(directory, point, proc):
            return
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(sig)
    return fault


def _environ(proc: psutil.Process) -> dict[str, str]:
    try:
        return proc.environ()
    except psutil.Error:
        return {}


def kill_a_worker(proc: subprocess.Popen[bytes], directory: Path) -> None:
    """SIGKILL one xdist worker while it runs a test."""
    if not wait_point(directory, "test", proc):
        return
    workers = [p for p in _children(psutil.Process(proc.pid))
               if "PYTEST_XDIST_WORKER" in _environ(p) and p.ppid() == proc.pid]
    if workers:
        workers[0].kill()


@dataclass(frozen=True)
class Verdict:
    case: str
    server: str
    alive: list[str]
    listening: list[str]
    sampled: int
    returncode: int | None
    note: str = ""

    @property
    def clean(self) -> bool:
        return not self.alive and not self.listening and not self.note


def judge(case: str, runs: list[Run], check: Callable[[list[int | None], list[Run]], str] | None = None
          ) -> Verdict:
    """Start ``runs`` together, apply their faults, wait for all, count leftovers."""
    with Sampler() as sampler:
        procs = [run.start() for run in runs]
        for proc in procs:
            sampler.own(proc.pid)
        faults = [threading.Thread(target=run.fault, args=(proc, run.directory), daemon=True)
                  for run, proc in zip(runs, procs, strict=True) if run.fault is not None]
        for thread in faults:
            thread.start()
        codes: list[int | None] = []
        for run, proc in zip(runs, procs, strict=True):
            try:
                codes.append(proc.wait(timeout=run.timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
            run.log.close()
        time.sleep(AFTER)
        alive, listening = sampler.alive(), sampler.listening()
        note = check(codes, runs) if check is not None else ""
        # a usage or internal error means the case never ran: nothing left proves nothing
        if not note and any(code in (3, 4) for code in codes):
            log = (runs[0].directory / "pytest.log").read_text(errors="replace").splitlines()
            why = next((ln for ln in log if ln.startswith(("ERROR", "INTERNALERROR"))), "")
            note = f"pytest exited {codes} before the case ran: {why}"
        for proc_handle in list(sampler.seen.values()):  # clean up after a failed verdict
            try:
                if proc_handle.is_running():
                    proc_handle.kill()
            except psutil.Error:
                pass
        return Verdict(case, runs[0].server, alive, listening, len(sampler.seen),
                       codes[0], note)


# -- the cases ---------------------------------------------------------------------------
Case = Callable[[Path, str], Verdict]
CASES: dict[str, Case] = {}
#: the cases tests/test_faults.py runs on every pass (a few seconds each)
FAST: tuple[str, ...] = ("hostile-detach-scrubbed", "sigkill-detach-scrubbed",
                         "concurrent-one-sigkilled")


def case(name: str) -> Callable[[Case], Case]:
    def register(func: Case) -> Case:
        CASES[name] = func
        return func
    return register


def _simple(name: str, **run: object) -> None:
    def func(tmp: Path, server: str) -> Verdict:
        return judge(name, [Run(tmp / "run", server, **run)])  # type: ignore[arg-type]
    CASES[name] = func


_SIGNALS = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}
for _sig_name, _sig in _SIGNALS.items():
    for _point in ("start", "test", "teardown"):
        _simple(f"{_sig_name}-{_point}", fault=at(_point, _sig),
                env={"FAULT_TEST_HOLD": "30", "FAULT_TEARDOWN_HOLD": "30"}
                if _point != "start" else {})

    def _random(tmp: Path, server: str, sig: int = _sig, label: str = _sig_name) -> Verdict:
        rng = random.Random(os.environ.get("FAULT_SEED", "1"))
        point = rng.choice(["start", "test", "teardown", "end"])
        return judge(f"{label}-random", [Run(tmp / "run", server, fault=at(point, sig, rng.uniform(0, 0.3)),
                                             env={"FAULT_TEST_HOLD": "0.5"})])
    CASES[f"{_sig_name}-random"] = _random

_simple("normal")
_simple("failing-test", env={"FAULT_FAIL": "1"})
_simple("hostile-ignores-sigterm", app=IGNORES_SIGTERM)
_simple("hostile-detach", app=DETACH.format(scrub=False))
_simple("hostile-detach-scrubbed", app=DETACH.format(scrub=True))
_simple("sigkill-detach-scrubbed", app=DETACH.format(scrub=True),
        fault=at("test", signal.SIGKILL), env={"FAULT_TEST_HOLD": "30"})
_simple("hostile-pool-at-import", app=POOL)
_simple("hostile-extra-port", app=EXTRA_PORT)
_simple("hostile-endless-output", app=ENDLESS_OUTPUT)
_simple("hostile-exit-in-worker", app=EXIT_IN_WORKER, env={"FAULT_HIT": "die"})
_simple("hostile-exit-after-start", app=EXIT_AFTER_START, env={"FAULT_TEST_HOLD": "1.5"})
_simple("env-ulimit-n-64", limits={resource.RLIMIT_NOFILE: 64})
_simple("env-pythonsafepath", env={"PYTHONSAFEPATH": "1"})
_simple("env-dev-mode-warnings-as-errors", python_flags=["-X", "dev", "-W", "error"])
_simple("plugin-timeout-thread-in-test", args=["-p", "timeout", "--timeout=1",
                                               "--timeout-method=thread"],
        env={"FAULT_TEST_HOLD": "5"})
_simple("plugin-timeout-signal-in-test", args=["-p", "timeout", "--timeout=1",
                                               "--timeout-method=signal"],
        env={"FAULT_TEST_HOLD": "5"})
_simple("plugin-timeout-thread-in-start", args=["-p", "timeout", "--timeout=0.05",
                                                "--timeout-method=thread"])
_simple("plugin-timeout-signal-in-start", args=["-p", "timeout", "--timeout=0.05",
                                                "--timeout-method=signal"])
_simple("plugin-rerunfailures", args=["-p", "rerunfailures", "--reruns=2"],
        env={"FAULT_FAIL": "1"})
_simple("plugin-randomly", args=["-p", "randomly"])
_simple("plugin-exitfirst", args=["-x"], env={"FAULT_FAIL": "1"})
_simple("xdist-loadscope", args=["-n", "4", "--dist", "loadscope"])
_simple("xdist-worker-killed", args=["-n", "2"], fault=kill_a_worker,
        env={"FAULT_TEST_HOLD": "3"})


@case("plugin-last-failed")
def _last_failed(tmp: Path, server: str) -> Verdict:
    first = judge("plugin-last-failed", [Run(tmp / "run", server, env={"FAULT_FAIL": "1"},
                                             args=["-p", "cacheprovider"])])
    second = judge("plugin-last-failed", [Run(tmp / "run", server, args=["-p", "cacheprovider", "--lf"])])
    return Verdict("plugin-last-failed", server, first.alive + second.alive,
                   first.listening + second.listening, first.sampled + second.sampled,
                   second.returncode)


@case("env-read-only-tmpdir")
def _read_only_tmp(tmp: Path, server: str) -> Verdict:
    ro = tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        # root ignores modes: a read-only bind mount where we may mount, else the mode
        mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(ro), str(ro)],
                                 capture_output=True).returncode == 0 if os.geteuid() == 0 else False
        try:
            return judge("env-read-only-tmpdir", [Run(tmp / "run", server, env={"TMPDIR": str(ro)})])
        finally:
            if mounted:
                subprocess.run(["umount", str(ro)], check=False)
    finally:
        ro.chmod(0o755)


@case("env-full-tmpdir")
def _full_tmp(tmp: Path, server: str) -> Verdict:
    full = tmp / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(full)],
                      capture_output=True).returncode != 0:
        return Verdict("env-full-tmpdir", server, [], [], 0, None, "not run: cannot mount a tmpfs")
    try:
        with open(full / "filler", "wb") as f:
            try:
                f.write(b"\0" * (1 << 20))
            except OSError:
                pass
        return judge("env-full-tmpdir", [Run(tmp / "run", server, env={"TMPDIR": str(full)})])
    finally:
        subprocess.run(["umount", "-l", str(full)], check=False)


@case("env-spaces-and-unicode-path")
def _unicode_path(tmp: Path, server: str) -> Verdict:
    return judge("env-spaces-and-unicode-path", [Run(tmp / "dir with spaces" / "ünïcødé ✓", server)])


@case("concurrent-one-sigkilled")
def _concurrent(tmp: Path, server: str) -> Verdict:
    """Two runs at once; one is SIGKILLed mid-test. The other's servers must be untouched:
    it passes (its last test talks to its session server after the kill)."""
    killed = Run(tmp / "a", server, fault=at("test", signal.SIGKILL), env={"FAULT_TEST_HOLD": "30"})
    survivor = Run(tmp / "b", server, env={"FAULT_TEST_HOLD": "4"})

    def survivor_passed(codes: list[int | None], runs: list[Run]) -> str:
        if codes[1] != 0:
            return f"the other run failed (exit {codes[1]}): {runs[1].output()[-600:]}"
        return ""
    return judge("concurrent-one-sigkilled", [killed, survivor], survivor_passed)


def run_case(name: str, server: str) -> Verdict:
    tmp = Path(tempfile.mkdtemp(prefix="flaskserve-faults-"))
    try:
        return CASES[name](tmp, server)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--servers", default=",".join(servers.default_names()))
    parser.add_argument("--json", nargs=2, metavar=("CASE", "SERVER"), help="one run as JSON")
    args = parser.parse_args()
    if not become_subreaper():
        print("needs Linux (PR_SET_CHILD_SUBREAPER) to keep every descendant in view")
        return 2
    if args.json:
        print(json.dumps(run_case(*args.json).__dict__))
        return 0
    bad = 0
    print(f"{'case':34} {'server':18} alive listening sampled exit")
    for name in args.cases.split(","):
        for server in args.servers.split(","):
            verdict = run_case(name, server)
            bad += not verdict.clean
            print(f"{name:34} {server:18} {len(verdict.alive):5} {len(verdict.listening):9} "
                  f"{verdict.sampled:7} {verdict.returncode} {verdict.note[:60]}", flush=True)
            for line in verdict.alive + verdict.listening:
                print(f"    left: {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

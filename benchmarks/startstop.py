#!/usr/bin/env python3
"""Start and stop times of every server, through the plugin and bare.

    .venv/bin/python benchmarks/startstop.py            # ~2-3 minutes on 2 cores

One run measures, interleaved round by round (each round visits every measurement once,
in a shuffled order, so machine noise spreads over all rows alike):

* **ready**: the plugin's time-to-ready (``start_server`` called -> it returns, HTTP 200
  confirmed) against the *bare* command's own time-to-ready: the same argv and environment
  started with ``Popen`` and polled by a tight external HTTP loop (1 ms apart);
* **stop**: ``handle.stop()`` with today's recipes, against the earlier recipes
  (Gunicorn ``--graceful-timeout 2`` + SIGTERM, uWSGI SIGTERM without the SIGCHLD wake-up
  hook) run on a bare process; the exit codes seen;
* **matrix**: every server started at once through threads calling ``start_server``,
  against the slowest single server's median (the lead's target is <= 1.3x);
* **warm**: servers forked from the pre-warmed launcher (``pytest_flaskserve.warm``, the
  plugin's default) against the cold path (``--flask-cold``), single and as a concurrent
  matrix, whose ratio to the slowest single default start is the goal (<= 1.3x);
* **installed but unused**: what the installed plugin costs ``pytest --co`` on a project
  that does not use it, against ``-p no:flaskserve``, with bytecode cached and with
  ``PYTHONDONTWRITEBYTECODE=1`` (``load_overhead.py``'s measurement, run first, alone);
* **tls** (``--tls``): each server that terminates TLS itself, started with
  ``ServerOptions(tls=True)`` and the session's certificate, against its plain start;
* **incumbent**: pytest-flask's ``LiveServer`` (its ``live_server`` fixture), from a child
  interpreter; installed on demand into ``benchmarks/results/.deps`` (``--no-install``
  skips the row when pytest-flask is absent).

Every server binds 127.0.0.1; every request goes to 127.0.0.1; every wait has a deadline.
Prints a table and writes JSON to ``benchmarks/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_flaskserve import servers  # noqa: E402
from pytest_flaskserve.appspec import ResolvedApp, parse_spec  # noqa: E402
from pytest_flaskserve.appspec.resolve import resolve_app  # noqa: E402
from pytest_flaskserve.lifecycle import supervisor  # noqa: E402
from pytest_flaskserve.lifecycle.ports import free_port  # noqa: E402
from pytest_flaskserve.lifecycle.process import OWNER_ENV, SESSION_TOKEN, stop_all  # noqa: E402
from pytest_flaskserve.lifecycle.supervisor import ServerHandle, StartConfig, start_server  # noqa: E402
from pytest_flaskserve.servers import ServerOptions  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
import load_overhead  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DEPS = RESULTS / ".deps"
HOST = "127.0.0.1"
DEADLINE = 30.0

#: The earlier stop recipes, per server: (argv rewrite, signal). Servers not listed
#: stopped then as they stop now: SIGTERM to the process group.
LEGACY_STOP: dict[str, tuple[Callable[[list[str]], list[str]], int]] = {}


def _set_option(argv: list[str], option: str, value: str) -> list[str]:
    out = list(argv)
    if option in out:
        out[out.index(option) + 1] = value
    else:
        out[-1:-1] = [option, value]
    return out


def _drop_option(argv: list[str], option: str) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == option:
            skip = True
            continue
        out.append(arg)
    return out


LEGACY_STOP["gunicorn"] = (lambda a: _set_option(a, "--graceful-timeout", "2"), signal.SIGTERM)
LEGACY_STOP["uwsgi"] = (lambda a: _drop_option(a, "--hook-master-start"), signal.SIGTERM)


# -- statistics ---------------------------------------------------------------------------
@dataclass
class Samples:
    """Named lists of seconds (or other numbers) collected over the rounds."""

    data: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.data.setdefault(key, []).append(value)

    def note(self, key: str, value: Any) -> None:
        self.notes.setdefault(key, []).append(value)

    def median(self, key: str) -> float | None:
        values = self.data.get(key)
        return statistics.median(values) if values else None

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
                for k, v in sorted(self.data.items()) if v}


def ms(samples: Samples, key: str) -> str:
    """``152 [140-181]`` in milliseconds, or ``-`` when nothing was measured."""
    values = samples.data.get(key)
    if not values:
        return "-"
    return (f"{statistics.median(values) * 1000:.0f} "
            f"[{min(values) * 1000:.0f}-{max(values) * 1000:.0f}]")


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


# -- bare processes -------------------------------------------------------------------------
def http_poll(port: int, popen: subprocess.Popen[bytes], deadline: float) -> float:
    """Poll ``GET /`` on a fresh connection every millisecond until 200; monotonic time of it.

    This is the bare command's own time-to-ready, seen from outside with as little delay as
    a poller can add. Raises if the process exits or the deadline passes.
    """
    while True:
        conn = http.client.HTTPConnection(HOST, port, timeout=2.0)
        try:
            conn.request("GET", "/", headers={"Connection": "close"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return time.perf_counter()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        if popen.poll() is not None:
            raise RuntimeError(f"bare server exited with {popen.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError("bare server did not answer in time")
        time.sleep(0.001)


class Bare:
    """A server command started without the plugin: same argv and environment."""

    live: list[Bare] = []

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, log: Path) -> None:
        self.argv, self.env, self.cwd, self.log = argv, env, cwd, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start_and_wait(self, port: int) -> float:
        with open(self.log, "ab") as log:
            t0 = time.perf_counter()
            self.popen = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        Bare.live.append(self)
        return http_poll(port, self.popen, time.monotonic() + DEADLINE) - t0

    def stop(self, sig: int, grace: float = 10.0) -> tuple[float, int | None]:
        """``sig`` to the group, wait for the leader; then SIGKILL what is left. Seconds, code."""
        popen = self.popen
        assert popen is not None
        kids = _descendants(popen.pid)
        t0 = time.perf_counter()
        _killpg(popen.pid, sig)
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        seconds = time.perf_counter() - t0
        code = popen.poll()
        self.kill()
        _kill_pids(kids)
        return seconds, code

    def kill(self) -> None:
        popen = self.popen
        if popen is None:
            return
        _killpg(popen.pid, signal.SIGKILL)
        popen.wait(10)
        if self in Bare.live:
            Bare.live.remove(self)

    @classmethod
    def kill_all(cls) -> None:
        for bare in list(cls.live):
            bare.kill()


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _descendants(pid: int) -> list[int]:
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:  # noqa: BLE001 - best effort, only for cleanup
        return []


def _kill_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# -- the benchmark ----------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, app: ResolvedApp, log_dir: Path) -> None:
        self.args = args
        self.app = app
        self.log_dir = log_dir
        self.config = StartConfig(log_dir=log_dir, host=HOST, startup_timeout=DEADLINE)
        self.s = Samples()
        self.servers: list[str] = args.servers
        self.warm: Any = None
        self.warm_servers: list[str] = []
        self.tls_servers: list[str] = []
        self.tls_files: Any = None
        #: load_overhead.measure's medians by case ("cached", "no bytecode")
        self.overhead: dict[str, dict[str, tuple[float, float]]] = {}
        self._log_n = 0

    # helpers ----------------------------------------------------------------------------
    def _log(self, name: str) -> Path:
        self._log_n += 1
        return self.log_dir / f"bare-{name}-{self._log_n}.log"

    def _bare(self, name: str, argv_rewrite: Callable[[list[str]], list[str]] | None = None,
              ) -> tuple[Bare, int]:
        launcher = servers.get(name)
        port = free_port(HOST)
        log = self._log(name)
        plan = launcher.plan(servers.LaunchRequest(app=self.app, host=HOST, port=port,
                                                   options=ServerOptions(),
                                                   python=sys.executable,
                                                   scratch_dir=log.with_suffix(".d")))
        env = supervisor.server_env(dict(os.environ), self.app, ServerOptions(),
                                    dict(plan.env), False)
        env[OWNER_ENV] = f"{SESSION_TOKEN}:bench"
        argv = argv_rewrite(plan.argv) if argv_rewrite else plan.argv
        return Bare(argv, env, self.app.cwd, log), port

    def _start(self, name: str) -> tuple[ServerHandle, float]:
        t0 = time.perf_counter()
        handle = start_server(servers.get(name), self.app, ServerOptions(), self.config)
        return handle, time.perf_counter() - t0

    # measurements -----------------------------------------------------------------------
    def plugin_cold(self, name: str) -> None:
        handle, seconds = self._start(name)
        self.s.add(f"ready.plugin.{name}", seconds)
        t0 = time.perf_counter()
        code = handle.stop()
        self.s.add(f"stop.after.{name}", time.perf_counter() - t0)
        self.s.note(f"exit.after.{name}", code)
        if handle.stop_result is not None and handle.stop_result.forced:
            self.s.note(f"forced.after.{name}", True)

    def plugin_tls(self, name: str) -> None:
        """Start over TLS (the certificate made once, before the rounds) and stop."""
        config = dataclasses.replace(self.config, tls=self.tls_files)
        t0 = time.perf_counter()
        handle = start_server(servers.get(name), self.app, ServerOptions(tls=True), config)
        self.s.add(f"ready.tls.{name}", time.perf_counter() - t0)
        t0 = time.perf_counter()
        handle.stop()
        self.s.add(f"stop.tls.{name}", time.perf_counter() - t0)

    def bare(self, name: str) -> None:
        bare, port = self._bare(name)
        try:
            self.s.add(f"ready.bare.{name}", bare.start_and_wait(port))
        finally:
            bare.kill()

    def legacy_stop(self, name: str) -> None:
        rewrite, sig = LEGACY_STOP.get(name, (None, signal.SIGTERM))
        bare, port = self._bare(name, rewrite)
        try:
            bare.start_and_wait(port)
            seconds, code = bare.stop(sig)
            self.s.add(f"stop.before.{name}", seconds)
            self.s.note(f"exit.before.{name}", code)
        finally:
            bare.kill()

    def first_matrix(self, names: Sequence[str]) -> None:
        """A session's first matrix in the default mode: a new warm launcher, started in
        the background as the plugin starts it, and every server at once right away."""
        from pytest_flaskserve.warm import WarmLauncher

        session_launcher, self.warm = self.warm, WarmLauncher(log_dir=self.log_dir)
        try:
            t0 = time.perf_counter()
            self.warm.start(wait=False)
            self.matrix(names, "first", True, started=t0)
        finally:
            self.warm.close()
            self.warm = session_launcher

    def matrix(self, names: Sequence[str], key: str, warm: bool = False,
               started: float | None = None) -> None:
        """Every server at once, each started by its own thread through ``start_server``
        (timed from ``started`` when given)."""
        handles: list[ServerHandle] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def one(name: str) -> None:
            try:
                handle = start_server(servers.get(name), self.app, ServerOptions(), self.config)
                with lock:
                    handles.append(handle)
            except BaseException as exc:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(exc)

        with self._warm_patch(warm):
            threads = [threading.Thread(target=one, args=(n,)) for n in names]
            t0 = time.perf_counter() if started is None else started
            for t in threads:
                t.start()
            for t in threads:
                t.join(DEADLINE * 2)
            seconds = time.perf_counter() - t0
        stoppers = [threading.Thread(target=h.stop) for h in handles]
        t1 = time.perf_counter()
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(DEADLINE)
        stop_seconds = time.perf_counter() - t1
        if errors:
            raise errors[0]
        self.s.add(f"matrix.{key}.ready", seconds)
        self.s.add(f"matrix.{key}.stop", stop_seconds)

    def warm_start(self, name: str) -> None:
        with self._warm_patch(True):
            handle, seconds = self._start(name)
        self.s.add(f"ready.warm.{name}", seconds)
        t0 = time.perf_counter()
        code = handle.stop()
        self.s.add(f"stop.warm.{name}", time.perf_counter() - t0)
        self.s.note(f"exit.warm.{name}", code)
        self.s.note(f"warm.kind.{name}", type(handle.process).__name__)

    @contextlib.contextmanager
    def _warm_patch(self, on: bool) -> Iterator[None]:
        """Servers started meanwhile are built by the warm launcher's factory (which
        falls back to a cold ``ManagedProcess`` by itself), as the plugin's warm mode does."""
        if not on:
            yield
            return
        original = self.config
        self.config = dataclasses.replace(original, process_factory=self.warm.process)
        try:
            yield
        finally:
            self.config = original


    def incumbent(self, deps: Path | None) -> None:
        argv = [sys.executable, str(ROOT / "benchmarks" / "_incumbent.py"), "--samples", "1",
                "--app-dir", str(ROOT / "example_apps")]
        if deps is not None:
            argv += ["--deps", str(deps)]
        env = {**os.environ, OWNER_ENV: f"{SESSION_TOKEN}:bench-incumbent",
               "FLASK_SKIP_DOTENV": "1"}
        done = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60, start_new_session=True)
        line = (done.stdout.decode().strip().splitlines() or ["{}"])[-1]
        data = json.loads(line)
        if "missing" in data:
            self.s.note("incumbent.missing", data["missing"])
            return
        for key in ("start", "ready", "stop"):
            for value in data[key]:
                self.s.add(f"incumbent.{key}", value)


def measure_load_overhead(runs: int, work: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """``benchmarks/load_overhead.py``'s two cases, for this checkout."""
    work.mkdir()
    return {label: load_overhead.measure(ROOT, runs, bytecode, work)
            for label, bytecode in (("cached", True), ("no bytecode", False))}


def incumbent_deps(args: argparse.Namespace) -> tuple[Path | None, str]:
    """Where pytest-flask can be imported from, installing it into a private folder if asked."""
    if importlib.util.find_spec("pytest_flask") is not None:
        return None, "installed"
    if (DEPS / "pytest_flask").is_dir():
        return DEPS, f"from {DEPS}"
    if args.no_install:
        return None, "absent (pip install pytest-flask to add the row)"
    DEPS.mkdir(parents=True, exist_ok=True)
    # --no-deps: Flask, Werkzeug and pytest are already here; --target keeps it out of the
    # project's environment (pytest-flask would otherwise load as a plugin everywhere).
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(DEPS), "pytest-flask"],
                          capture_output=True, timeout=180)
    if done.returncode != 0:
        return None, "could not be installed: " + done.stderr.decode()[-300:]
    return DEPS, f"installed into {DEPS}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="flaskserve-bench-"))
    try:
        log_dir = tmp / "logs"
        log_dir.mkdir()
        app = resolve_app(parse_spec("hello:app", str(ROOT / "example_apps")))
        bench = Bench(args, app, log_dir)
        deps, incumbent_status = (None, "skipped") if args.no_incumbent else incumbent_deps(args)
        # the installed-but-unused cost first, alone: its runs alternate plugin on and off
        if not args.no_co:
            bench.overhead = measure_load_overhead(args.co_runs, tmp / "load")
        if not args.no_warm:
            try:
                from pytest_flaskserve.warm import launcher as warm_mod
            except ImportError as exc:
                print(f"warm mode not available: {exc}", file=sys.stderr)
            else:
                bench.warm = warm_mod.WarmLauncher(log_dir=log_dir)
                t0 = time.perf_counter()
                bench.warm.start()
                bench.s.add("warm.launcher_start", time.perf_counter() - t0)
                bench.warm_servers = [n for n in bench.servers
                                      if servers.get(n).warm_refusal() is None]
        if args.tls:
            from pytest_flaskserve.tls import make_tls_files

            t0 = time.perf_counter()
            bench.tls_files = make_tls_files(tmp / "tls", HOST)
            bench.s.add("tls.files", time.perf_counter() - t0)
            bench.tls_servers = [n for n in bench.servers if servers.get(n).terminates_tls
                                 and servers.get(n).tls_unsupported() is None]
        try:
            # One untimed pass: page cache, .pyc files, the watchdog, psutil's import.
            for name in bench.servers:
                bench.plugin_cold(name)
            if bench.warm is not None:
                for name in bench.warm_servers:
                    bench.warm_start(name)
            for name in bench.tls_servers:
                bench.plugin_tls(name)
            kept = {k: bench.s.data.get(k, []) for k in ("warm.launcher_start", "tls.files")}
            bench.s = Samples()
            for key, values in kept.items():
                for value in values:
                    bench.s.add(key, value)
            tasks: list[tuple[str, Callable[[], None]]] = []
            for name in bench.servers:
                tasks.append((f"plugin {name}", lambda n=name: bench.plugin_cold(n)))
                tasks.append((f"bare {name}", lambda n=name: bench.bare(n)))
                tasks.append((f"legacy stop {name}", lambda n=name: bench.legacy_stop(n)))
            tasks.append(("matrix", lambda: bench.matrix(bench.servers, "cold")))
            if bench.warm is not None:
                for name in bench.warm_servers:
                    tasks.append((f"warm {name}", lambda n=name: bench.warm_start(n)))
                tasks.append(("warm matrix", lambda: bench.matrix(bench.servers, "warm", True)))
                tasks.append(("first matrix", lambda: bench.first_matrix(bench.servers)))
            for name in bench.tls_servers:
                tasks.append((f"tls {name}", lambda n=name: bench.plugin_tls(n)))
            if deps is not None or incumbent_status == "installed":
                tasks.append(("pytest-flask", lambda: bench.incumbent(deps)))
            rng = random.Random(args.seed)
            started = time.monotonic()
            for round_no in range(1, args.rounds + 1):
                rng.shuffle(tasks)
                for label, task in tasks:
                    try:
                        task()
                    except Exception as exc:  # noqa: BLE001 - one bad sample is a note, not a crash
                        bench.s.note("errors", f"round {round_no} {label}: {exc}")
                if not args.quiet:
                    print(f"  round {round_no}/{args.rounds} done "
                          f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
        finally:
            if bench.warm is not None:
                bench.warm.close()
            Bare.kill_all()
            stop_all()
        return report(bench, incumbent_status, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("flask", "werkzeug", "gunicorn", "waitress", "uwsgi", "granian", "cheroot",
                 "pytest", "psutil"):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    return out


def report(bench: Bench, incumbent_status: str, args: argparse.Namespace) -> dict[str, Any]:
    s = bench.s
    lines = [f"pytest-flaskserve start/stop benchmark: {args.rounds} rounds, interleaved; "
             "median [min-max] in ms; hello app; 127.0.0.1",
             f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end",
             ""]
    head = (f"{'server':<12} {'plugin ready':>15} {'bare ready':>15} {'plugin/bare':>11} "
            f"{'stop before':>15} {'stop after':>13} {'exit b/a':>9}")
    lines += [head, "-" * len(head)]
    for name in bench.servers:
        before_codes = sorted(set(map(str, s.notes.get(f"exit.before.{name}", []))))
        after_codes = sorted(set(map(str, s.notes.get(f"exit.after.{name}", []))))
        lines.append(
            f"{name:<12} {ms(s, f'ready.plugin.{name}'):>15} {ms(s, f'ready.bare.{name}'):>15} "
            f"{ratio(s.median(f'ready.plugin.{name}'), s.median(f'ready.bare.{name}')):>11} "
            f"{ms(s, f'stop.before.{name}'):>15} {ms(s, f'stop.after.{name}'):>13} "
            f"{','.join(before_codes)}/{','.join(after_codes):>3}")
    slowest = max(bench.servers, key=lambda n: s.median(f"ready.plugin.{n}") or 0.0)
    slowest_ms = s.median(f"ready.plugin.{slowest}")
    lines += ["",
              f"matrix, {len(bench.servers)} servers started concurrently (threads -> "
              f"start_server): {ms(s, 'matrix.cold.ready')} ms, all stopped in "
              f"{ms(s, 'matrix.cold.stop')} ms",
              f"  slowest single server ({slowest}) {ms(s, f'ready.plugin.{slowest}')} ms; "
              f"matrix / slowest single = {ratio(s.median('matrix.cold.ready'), slowest_ms)}"]
    if bench.warm is not None:
        lines += ["",
                  f"warm launcher (started once, {ms(s, 'warm.launcher_start')} ms before the "
                  "rounds; forks one child per server)",
                  f"{'server':<12} {'warm ready':>15} {'cold ready':>15} {'warm/cold':>10} "
                  f"{'warm stop':>13}"]
        for name in bench.warm_servers:
            kinds = s.notes.get(f"warm.kind.{name}", [])
            cold = sum(1 for k in kinds if k != "WarmProcess")
            lines.append(
                f"{name:<12} {ms(s, f'ready.warm.{name}'):>15} "
                f"{ms(s, f'ready.plugin.{name}'):>15} "
                f"{ratio(s.median(f'ready.warm.{name}'), s.median(f'ready.plugin.{name}')):>10} "
                f"{ms(s, f'stop.warm.{name}'):>13}"
                + (f"  ({cold} of {len(kinds)} started cold)" if cold else ""))
        # the goal's measure: the slowest single server (a cold start, as in the cold
        # matrix above); and each server's own single start in the default mode
        def single(name: str) -> float:
            key = "warm" if name in bench.warm_servers else "plugin"
            return s.median(f"ready.{key}.{name}") or 0.0
        slowest_default = max(bench.servers, key=single)
        lines.append(f"warm matrix (the default: warm where exact, cold for the rest), "
                     f"concurrent: {ms(s, 'matrix.warm.ready')} ms; matrix / slowest single "
                     f"server ({slowest}, cold) = "
                     f"{ratio(s.median('matrix.warm.ready'), slowest_ms)} (goal <= 1.3x)")
        lines.append(f"  against the slowest single start in the default mode ({slowest_default}, "
                     f"{single(slowest_default) * 1000:.0f} ms): "
                     f"{ratio(s.median('matrix.warm.ready'), single(slowest_default))}")
        lines.append(f"  a session's first matrix (a new warm launcher started with it, as the "
                     f"plugin does): {ms(s, 'matrix.first.ready')} ms")
    if bench.args.tls:
        lines += ["", f"over TLS (--tls; CA and certificate made once in {ms(s, 'tls.files')} ms)",
                  f"{'server':<16} {'TLS ready':>15} {'plain ready':>15} {'TLS/plain':>10} "
                  f"{'TLS stop':>13}"]
        for name in bench.tls_servers:
            lines.append(
                f"{name:<16} {ms(s, f'ready.tls.{name}'):>15} "
                f"{ms(s, f'ready.plugin.{name}'):>15} "
                f"{ratio(s.median(f'ready.tls.{name}'), s.median(f'ready.plugin.{name}')):>10} "
                f"{ms(s, f'stop.tls.{name}'):>13}")
        left = [n for n in bench.servers if n not in bench.tls_servers]
        if left:
            lines.append(f"  not over TLS (cannot terminate it themselves): {', '.join(left)}")
    if bench.overhead:
        lines += ["", f"installed but unused: pytest -q --co on {load_overhead.TESTS} trivial "
                  f"tests, plugin loaded against -p no:flaskserve, medians of {args.co_runs} "
                  f"(goal <= {load_overhead.GOAL_MS:g} ms added)"]
        for label, medians in bench.overhead.items():
            for i, clock in enumerate(("wall", "cpu")):
                on, off = medians["on"][i], medians["off"][i]
                lines.append(f"  {label:<12} {clock:<5} {on * 1000:6.0f} ms against "
                             f"{off * 1000:6.0f} ms: {(on - off) * 1000:+5.1f} ms, "
                             f"{on / off:.2f}x")
            lines.append(f"  {label:<12} of which importing the plugin's own modules: "
                         f"{medians['own modules'][0] * 1000:.1f} ms")
    lines.append("")
    if s.data.get("incumbent.ready"):
        lines.append(f"pytest-flask LiveServer ({incumbent_status}): start() {ms(s, 'incumbent.start')}"
                     f" ms (TCP connect), first HTTP 200 {ms(s, 'incumbent.ready')} ms, stop "
                     f"{ms(s, 'incumbent.stop')} ms (forks the test process; dev server only)")
    else:
        missing = s.notes.get("incumbent.missing", [incumbent_status])[0]
        lines.append(f"pytest-flask LiveServer: not measured ({missing})")
    if s.notes.get("errors"):
        lines += ["", f"{len(s.notes['errors'])} failed samples:"]
        lines += [f"  {e}" for e in s.notes["errors"][:20]]
    table = "\n".join(lines)
    print(table)
    result = {
        "meta": {"rounds": args.rounds, "seed": args.seed, "servers": bench.servers,
                 "warm_servers": bench.warm_servers, "tls_servers": bench.tls_servers,
                 "cpus": os.cpu_count(),
                 "loadavg_end": os.getloadavg(), "platform": platform.platform(),
                 "versions": _versions(), "incumbent": incumbent_status,
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        "summary": s.summary(),
        "samples": s.data,
        "notes": {k: [str(v) for v in vs] for k, vs in s.notes.items()},
        "table": table,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.json) if args.json else RESULTS / f"startstop-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1))
    (RESULTS / "startstop-latest.json").write_text(json.dumps(result, indent=1))
    print(f"\nJSON: {out}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    available = [n for n in servers.default_names() if servers.get(n).unavailable() is None]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--servers", type=lambda v: [x for x in v.split(",") if x],
                        default=available, help="comma-separated (default: every available "
                        f"default server: {','.join(available)})")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--no-warm", action="store_true", help="skip the warm-launcher rows")
    parser.add_argument("--tls", action="store_true",
                        help="add TLS rows: each server that terminates TLS, against plain")
    parser.add_argument("--no-co", action="store_true",
                        help="skip the installed-but-unused rows (benchmarks/load_overhead.py)")
    parser.add_argument("--co-runs", type=int, default=15,
                        help="runs per arm and bytecode case for those rows (15)")
    parser.add_argument("--no-incumbent", action="store_true", help="skip pytest-flask")
    parser.add_argument("--no-install", action="store_true",
                        help="do not install pytest-flask into benchmarks/results/.deps")
    parser.add_argument("--json", default=None, help="where to write the JSON result")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    for name in args.servers:
        servers.get(name)  # a UsageError names the choices
    run(args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        Bare.kill_all()
        stop_all()
        sys.exit(130)

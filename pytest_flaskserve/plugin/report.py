"""What the terminal shows: the header (app, where it came from, servers) and a summary
of every server started (ready and stop times, exit codes, commands with ``-v``)."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.lifecycle.process import describe_exit
from pytest_flaskserve.plugin import deploy, selection
from pytest_flaskserve.plugin.fixtures import settings as settings_of
from pytest_flaskserve.servers import LaunchRequest

if TYPE_CHECKING:
    from pytest_flaskserve.lifecycle.supervisor import ServerHandle
    from pytest_flaskserve.matrix import Matrix
    from pytest_flaskserve.plugin.session import Runtime
    from pytest_flaskserve.plugin.settings import Settings


def header_lines(s: Settings, verbosity: int, runtime: Callable[[], Runtime]) -> list[str]:
    """The header: the app and where it came from, the servers and settings; with ``-v``
    the app resolved and each server's command (``runtime`` is asked only then)."""
    if s.app:
        lines = [f"flaskserve: app {s.app} (from {s.app_source})"]
    else:
        lines = ["flaskserve: no app configured (--flask-app, flask_app in the ini file, "
                 "FLASK_APP, or wsgi.py/app.py in the rootdir)"]
    rt = runtime() if s.deploy else None  # the ids of the deployment files are in it
    chosen, _ = selection.choose(None, deploy.chosen(rt) if rt else s.servers, s.proxy)
    parts = []
    for name in chosen:
        why = servers.get(name).unavailable()
        parts.append(name if why is None else f"{name} (not installed)")
    src = s.sources.get("servers", "default")
    if rt is not None and rt.deploy_ids:
        src = s.sources.get("deploy", "--flask-deploy") if src == "default" else \
            f"{src} and {s.sources.get('deploy')}"
    lines.append(f"flaskserve: servers {', '.join(parts)} (from {src}); scope {s.scope}, "
                 f"startup timeout {s.startup_timeout:g} s")
    lines.append(start_modes(s, chosen))
    changed = [f"{name}={getattr(s, name)!r} ({source})" for name, source in s.sources.items()
               if name not in ("app", "servers") and source != "default"]
    if changed:
        lines.append(f"flaskserve: settings {', '.join(changed)}")
    if verbosity > 0 and s.sources.get("app") != "default" and s.app:
        from pytest_flaskserve.appspec.resolve import resolve_app

        try:
            rt = runtime()
            spec = rt.named_spec()
            assert spec is not None
            app_target = resolve_app(spec, s.startup_timeout)
        except Exception:  # noqa: BLE001 - the header never fails the run
            return lines
        lines.append(f"flaskserve: resolved to {app_target.describe()} "
                     f"(sys.path entry {app_target.path_entry})")
        for name in chosen:
            if selection.left_out_reason(name, app_target, explicit=set()):
                continue  # the header shows what runs; skipped servers are in the list above
            launcher = servers.get(name)
            plan = launcher.plan(LaunchRequest(app=app_target, host=s.host, port=0,
                                               options=rt.options_for(None, name),
                                               python=sys.executable))
            cmd = shlex.join(plan.argv).replace(":0", ":{port}").replace("--port 0", "--port {port}")
            lines.append(f"  {name}: {cmd}")
            for note in plan.notes:
                lines.append(f"    ({note})")
    return lines


def start_modes(s: Settings, chosen: list[str]) -> str:
    """Which servers start warm and which cold, and why."""
    if not s.warm:  # --flask-cold, or FLASKSERVE_WARM=0 and the like
        source = s.sources.get("cold" if s.cold else "warm", "settings")
        return f"flaskserve: every server starts cold ({source})"
    warm, cold = [], []
    for name in chosen:
        why = servers.get(name).warm_refusal()
        if why is None:
            warm.append(name)
        else:
            cold.append(f"{name}: {why}")
    parts = [f"warm starts for {', '.join(warm)} (forked from a pre-warmed launcher; "
             "--flask-cold for none)"] if warm else []
    if cold:
        parts.append(f"cold for {'; '.join(cold)}" if warm else f"cold starts for {'; '.join(cold)}")
    return "flaskserve: " + "; ".join(parts)


def summary_lines(rt: Runtime, verbosity: int) -> list[str]:
    """Each server's life with ``-v`` (with its command); otherwise only what went wrong
    (failed starts, servers killed after their stop deadline): the matrix table already
    shows timings."""
    lines = []
    for r in rt.records:
        if verbosity <= 0 and not (r.failed or r.forced):
            continue
        if r.failed:
            lines.append(f"{r.server:<16} {r.app:<28} FAILED TO START: {r.failed}")
            continue
        stop = f"{r.stop_seconds * 1000:.0f} ms" if r.stop_seconds is not None else "-"
        forced = " (killed after its stop deadline)" if r.forced else ""
        mode = f"; {r.mode}" if verbosity > 0 else ""
        lines.append(f"{r.server:<16} {r.app:<28} ready {r.ready_seconds * 1000:.0f} ms, "
                     f"stop {stop}, exit {r.exit_code}{forced}{mode}")
        if verbosity > 0:
            lines.append(f"    {r.command}")
            lines.extend(f"    ({n})" for n in r.notes)
    if verbosity > 0 and rt.settings.warm:
        cold = rt.cold_starts()
        reasons = sorted({f"{server}: {why}" for server, why in cold})
        lines.append(f"warm launcher: {len(cold)} cold start(s)"
                     + (f" ({'; '.join(reasons)})" if reasons else ""))
    return lines


def add_server_sections(report: pytest.TestReport, when: str,
                        handles: list[ServerHandle]) -> None:
    """A server that died during the test fails it; a failed test shows its servers' logs."""
    if when == "call":
        for h in handles:
            if h.stop_result is None and not h.is_running():
                died = (f"{h.server} died during the test ({describe_exit(h.exit_code)}); "
                        f"command: {h.command}\nlast lines of {h.log_path}:\n{h.log_tail()}")
                if report.passed:
                    report.outcome = "failed"
                    report.longrepr = died
                else:
                    report.sections.append((f"flask server died: {h.server}", died))
    if report.failed:
        for h in handles:
            report.sections.append((f"flask server log: {h.server} ({h.log_path})", h.log_tail()))


def finish_matrix(config: pytest.Config, rt: Runtime | None, matrix: Matrix | None,
                  worker_runs: list[dict[str, Any]], exit_status: int) -> dict[str, Any] | None:
    """The matrix document at the end of the run, written to ``--flask-report``; None in
    an xdist worker, which hands its server runs to the controller instead."""
    from pytest_flaskserve.matrix import Matrix, run_dicts

    settings: Settings = rt.settings if rt is not None else settings_of(config)
    if rt is not None:
        rt.session_pool.close()  # so every server's stop time is in its record
    runs = run_dicts(rt.records, rt.worker) if rt is not None else []
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput["flaskserve_runs"] = json.dumps(runs)
        return None
    data = (matrix or Matrix()).build(app=settings.app, runs=runs + worker_runs,
                                      exit_status=int(exit_status), server_order=servers.names())
    if settings.report is not None:
        try:
            settings.report.parent.mkdir(parents=True, exist_ok=True)
            settings.report.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise pytest.UsageError(f"pytest-flaskserve: cannot write --flask-report "
                                    f"{settings.report}: {exc}; choose a writable path") from None
    return data


def matrix_lines(data: Mapping[str, Any], settings: Settings) -> list[str]:
    """The lines of the terminal summary's matrix section; none when no server was used."""
    from pytest_flaskserve.matrix import has_content, render

    if not has_content(data):
        return []
    lines = render(data)
    if settings.report is not None:
        lines.append(f"flaskserve: matrix written to {settings.report}")
    return lines

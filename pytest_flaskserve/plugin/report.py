"""What the terminal shows: the header (app, where it came from, servers) and a summary
of every server started (ready and stop times, exit codes, commands with ``-v``)."""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING

from pytest_flaskserve import servers
from pytest_flaskserve.plugin import deploy, selection
from pytest_flaskserve.servers import LaunchRequest

if TYPE_CHECKING:
    from pytest_flaskserve.plugin.fixtures import Runtime


def header_lines(rt: Runtime, verbosity: int) -> list[str]:
    s = rt.settings
    if s.app:
        lines = [f"flaskserve: app {s.app} (from {s.app_source})"]
    else:
        lines = ["flaskserve: no app configured (--flask-app, flask_app in the ini file, "
                 "FLASK_APP, or wsgi.py/app.py in the rootdir)"]
    chosen, _ = selection.choose(None, deploy.chosen(rt), s.proxy)
    parts = []
    for name in chosen:
        why = servers.get(name).unavailable()
        parts.append(name if why is None else f"{name} (not installed)")
    src = s.sources.get("servers", "default")
    if rt.deploy_ids:
        src = s.sources.get("deploy", "--flask-deploy") if src == "default" else \
            f"{src} and {s.sources.get('deploy')}"
    lines.append(f"flaskserve: servers {', '.join(parts)} (from {src}); scope {s.scope}, "
                 f"startup timeout {s.startup_timeout:g} s")
    changed = [f"{name}={getattr(s, name)!r} ({source})" for name, source in s.sources.items()
               if name not in ("app", "servers") and source != "default"]
    if changed:
        lines.append(f"flaskserve: settings {', '.join(changed)}")
    if verbosity > 0 and rt.app_spec is not None:
        from pytest_flaskserve.appspec.resolve import resolve_app

        try:
            app_target = resolve_app(rt.app_spec, s.startup_timeout)
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
        lines.append(f"{r.server:<16} {r.app:<28} ready {r.ready_seconds * 1000:.0f} ms, "
                     f"stop {stop}, exit {r.exit_code}{forced}")
        if verbosity > 0:
            lines.append(f"    {r.command}")
            lines.extend(f"    ({n})" for n in r.notes)
    if verbosity > 0 and rt.settings.warm:
        reasons = sorted({why for _, why in rt.warm_fallbacks})
        lines.append(f"warm launcher: {len(rt.warm_fallbacks)} cold start(s)"
                     + (f": {'; '.join(reasons)}" if reasons else ""))
    return lines

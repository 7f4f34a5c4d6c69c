"""The test-by-server matrix: outcomes per (test, server), and each server's start and
stop times, as a terminal table and as JSON for CI dashboards (``--flask-report``).

The pytest layer tags each report with its (test, server) cell where the item runs; the
tag is a plain attribute of the report, so pytest-xdist carries it to the controller,
where the table is built. Server runs come from ``Runtime.records`` (and, under xdist,
from each worker's ``workeroutput``).

The JSON shape is :data:`SCHEMA` (a JSON Schema, draft 2020-12 subset); :func:`validate`
checks a document against it without third-party packages.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

OUTCOMES = ("pass", "fail", "error", "skip", "xfail", "xpass")
#: when several reports land in one cell, the worst one is shown
_RANK = {"skip": 0, "xfail": 1, "pass": 2, "xpass": 3, "fail": 4, "error": 5}
FORMAT = "pytest-flaskserve-matrix"
VERSION = 1


def cell_of(item: Any, server_param: str) -> tuple[str, str] | None:
    """(test, server) for a pytest item that ran on one server (its ``server_param``
    parameter), else None.

    The test is the node id without the server's part of the parameter id:
    ``test_a.py::test_x[gunicorn-1]`` is row ``test_a.py::test_x[1]``, column ``gunicorn``.
    An item that is no parametrized test (a smoke check) names its cell itself.
    """
    own = getattr(item, "flaskserve_cell", None)
    if own is not None:
        return own[0], own[1]
    callspec = getattr(item, "callspec", None)
    if callspec is None or server_param not in callspec.params:
        return None
    server = str(callspec.params[server_param])
    nodeid: str = item.nodeid
    pid: str = callspec.id
    suffix = f"[{pid}]"
    base = nodeid[: -len(suffix)] if nodeid.endswith(suffix) else nodeid
    rest = _drop_token(pid, server if server != "none" else "no-server")
    return (f"{base}[{rest}]" if rest else base), server


def _drop_token(pid: str, token: str) -> str:
    if pid == token:
        return ""
    if pid.startswith(token + "-"):
        return pid[len(token) + 1:]
    if pid.endswith("-" + token):
        return pid[: -len(token) - 1]
    return pid.replace(f"-{token}-", "-", 1)


def outcome_of(report: Any) -> str | None:
    """The cell value one phase's report contributes, or None (a passing setup)."""
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "xpass" if xfail else "pass"
        if report.skipped:
            return "xfail" if xfail else "skip"
        return "fail"
    if report.failed:
        return "error"
    if report.skipped:
        return "xfail" if xfail else "skip"
    return None


class Matrix:
    """Cells gathered from reports, and server runs; rendered or dumped at the end."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], str] = {}
        self.rows: list[str] = []

    def add(self, report: Any) -> None:
        cell = getattr(report, "flaskserve_cell", None)
        if not cell:
            return
        outcome = outcome_of(report)
        if outcome is None:
            return
        row, server = cell[0], cell[1]
        if row not in self.rows:
            self.rows.append(row)
        old = self.cells.get((row, server))
        if old is None or _RANK[outcome] > _RANK[old]:
            self.cells[(row, server)] = outcome

    def _row_key(self, row: str) -> tuple[int, int]:
        """Smoke checks first, in their own order; then tests in the order they ran."""
        order = smoke_order()
        if row.startswith("smoke::") and row[7:] in order:
            return (0, order.index(row[7:]))
        return (1, self.rows.index(row))

    def build(self, *, app: str | None, runs: Sequence[Mapping[str, Any]], exit_status: int,
              server_order: Sequence[str]) -> dict[str, Any]:
        """The JSON document (see :data:`SCHEMA`)."""
        used = {s for _, s in self.cells} | {str(r["server"]) for r in runs}
        servers = [s for s in server_order if s in used] + sorted(used - set(server_order))
        tests = [{"test": row, "results": {s: self.cells[(row, s)] for s in servers
                                          if (row, s) in self.cells}}
                 for row in sorted(self.rows, key=self._row_key)]
        totals = {s: {o: 0 for o in OUTCOMES} for s in servers}
        for (_, server), outcome in self.cells.items():
            totals[server][outcome] += 1
        timings = {}
        for s in servers:
            mine = [r for r in runs if r["server"] == s]
            ready = [r["ready_seconds"] for r in mine if not r["failed"]]
            stop = [r["stop_seconds"] for r in mine if r["stop_seconds"] is not None]
            timings[s] = {
                "starts": len(mine),
                "failed_starts": sum(1 for r in mine if r["failed"]),
                "ready_seconds_median": round(statistics.median(ready), 4) if ready else None,
                "ready_seconds_max": round(max(ready), 4) if ready else None,
                "stop_seconds_median": round(statistics.median(stop), 4) if stop else None,
                "stop_seconds_max": round(max(stop), 4) if stop else None,
                "forced_stops": sum(1 for r in mine if r["forced"]),
            }
        return {
            "format": FORMAT,
            "version": VERSION,
            "app": app,
            "exit_status": int(exit_status),
            "servers": servers,
            "tests": tests,
            "totals": totals,
            "timings": timings,
            "server_runs": [dict(r) for r in runs],
        }


def smoke_order() -> list[str]:
    from pytest_flaskserve.parity.smoke import CHECKS

    return [c.name for c in CHECKS]


def run_dicts(records: Iterable[Any], worker: str = "") -> list[dict[str, Any]]:
    """``Runtime.records`` as JSON-ready dicts (the ``server_runs`` entries)."""
    out = []
    for rec in records:
        d = dataclasses.asdict(rec)
        out.append({
            "server": d["server"], "app": d["app"], "command": d["command"],
            "ready_seconds": round(float(d["ready_seconds"]), 4),
            "stop_seconds": None if d["stop_seconds"] is None else round(d["stop_seconds"], 4),
            "exit_code": d["exit_code"], "forced": bool(d["forced"]), "failed": d["failed"],
            "worker": worker,
        })
    return out


def has_content(data: Mapping[str, Any]) -> bool:
    """False when no server was used: nothing started, and no test ran on one."""
    if data["server_runs"]:
        return True
    return any(o != "skip" for t in data["tests"] for o in t["results"].values())


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def render(data: Mapping[str, Any], width: int = 100) -> list[str]:
    """The terminal table: a row per test, a column per server, then the timings."""
    servers: list[str] = list(data["servers"])
    if not servers:
        return []
    tim, totals = data["timings"], data["totals"]
    rows: list[tuple[str, list[str]]] = [("test", servers)]
    for t in data["tests"]:
        rows.append((t["test"], [_shown(t["results"].get(s)) for s in servers]))
    rows.append(("server starts", [str(tim[s]["starts"]) for s in servers]))
    rows.append(("ready ms (median/max)", [
        _pair(tim[s]["ready_seconds_median"], tim[s]["ready_seconds_max"]) for s in servers]))
    rows.append(("stop ms (median/max)", [
        _pair(tim[s]["stop_seconds_median"], tim[s]["stop_seconds_max"]) for s in servers]))
    rows.append(("passed/failed/skipped", [
        f"{totals[s]['pass'] + totals[s]['xpass']}/{totals[s]['fail'] + totals[s]['error']}/"
        f"{totals[s]['skip'] + totals[s]['xfail']}" for s in servers]))
    col = [max(len(r[1][i]) for r in rows) for i in range(len(servers))]
    label_w = min(max(len(r[0]) for r in rows), max(24, width - sum(c + 2 for c in col)))
    out = []
    for label, cells in rows:
        if len(label) > label_w:
            label = "..." + label[-(label_w - 3):]
        out.append((label.ljust(label_w) + "  "
                    + "  ".join(c.ljust(w) for c, w in zip(cells, col, strict=False))).rstrip())
    return out


def _pair(median: float | None, worst: float | None) -> str:
    return "-" if median is None else f"{_ms(median)}/{_ms(worst)}"


def _shown(outcome: str | None) -> str:
    if outcome is None:
        return "."
    return outcome.upper() if outcome in ("fail", "error", "xpass") else outcome


# -- the documented shape --------------------------------------------------------------
_NUM_OR_NULL = {"type": ["number", "null"], "minimum": 0}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pytest-flaskserve test-by-server matrix",
    "type": "object",
    "required": ["format", "version", "app", "exit_status", "servers", "tests", "totals",
                 "timings", "server_runs"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "version": {"const": VERSION},
        "app": {"type": ["string", "null"], "description": "the app spec, as given"},
        "exit_status": {"type": "integer", "description": "pytest's exit status"},
        "servers": {"type": "array", "items": {"type": "string"},
                    "description": "columns, in the plugin's server order"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["test", "results"],
                "additionalProperties": False,
                "properties": {
                    "test": {"type": "string",
                             "description": "node id without the server's parameter id"},
                    "results": {"type": "object",
                                "additionalProperties": {"enum": list(OUTCOMES)},
                                "description": "server -> outcome; servers it did not run "
                                               "on are absent"},
                },
            },
        },
        "totals": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": list(OUTCOMES),
                "additionalProperties": False,
                "properties": {o: {"type": "integer", "minimum": 0} for o in OUTCOMES},
            },
        },
        "timings": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["starts", "failed_starts", "ready_seconds_median",
                             "ready_seconds_max", "stop_seconds_median", "stop_seconds_max",
                             "forced_stops"],
                "additionalProperties": False,
                "properties": {
                    "starts": {"type": "integer", "minimum": 0},
                    "failed_starts": {"type": "integer", "minimum": 0},
                    "ready_seconds_median": _NUM_OR_NULL,
                    "ready_seconds_max": _NUM_OR_NULL,
                    "stop_seconds_median": _NUM_OR_NULL,
                    "stop_seconds_max": _NUM_OR_NULL,
                    "forced_stops": {"type": "integer", "minimum": 0},
                },
            },
        },
        "server_runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["server", "app", "command", "ready_seconds", "stop_seconds",
                             "exit_code", "forced", "failed", "worker"],
                "additionalProperties": False,
                "properties": {
                    "server": {"type": "string"},
                    "app": {"type": "string"},
                    "command": {"type": "string"},
                    "ready_seconds": {"type": "number", "minimum": 0},
                    "stop_seconds": _NUM_OR_NULL,
                    "exit_code": {"type": ["integer", "null"],
                                  "description": "negative: killed by that signal"},
                    "forced": {"type": "boolean",
                               "description": "killed after its stop deadline"},
                    "failed": {"type": ["string", "null"],
                               "description": "first line of the startup error"},
                    "worker": {"type": "string", "description": "xdist worker id, or ''"},
                },
            },
        },
    },
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


def _is(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def validate(data: Any, schema: Mapping[str, Any] = SCHEMA, path: str = "$") -> list[str]:
    """Errors of ``data`` against ``schema`` (the subset :data:`SCHEMA` uses); [] if valid."""
    errors: list[str] = []
    if "const" in schema and data != schema["const"]:
        return [f"{path}: {data!r} is not {schema['const']!r}"]
    if "enum" in schema and data not in schema["enum"]:
        return [f"{path}: {data!r} is not one of {schema['enum']}"]
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(data, n) for n in names):
            return [f"{path}: {type(data).__name__} is not {' or '.join(names)}"]
    if "minimum" in schema and _is(data, "number") and data < schema["minimum"]:
        errors.append(f"{path}: {data} is below {schema['minimum']}")
    if isinstance(data, dict):
        for key in schema.get("required", ()):
            if key not in data:
                errors.append(f"{path}: missing {key!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in data.items():
            if key in props:
                errors += validate(value, props[key], f"{path}.{key}")
            elif extra is False:
                errors.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                errors += validate(value, extra, f"{path}.{key}")
    if isinstance(data, list) and "items" in schema:
        for i, value in enumerate(data):
            errors += validate(value, schema["items"], f"{path}[{i}]")
    return errors


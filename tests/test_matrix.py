"""The test-by-server matrix: the terminal table and the --flask-report JSON (validated
against the documented schema) from real inner runs, xdist included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_flaskserve.matrix import FORMAT, OUTCOMES, SCHEMA, validate

MIXED = """
import pytest


def test_ok(flask_http):
    assert flask_http.get("/").status_code == 200


def test_fails_on_waitress(flask_server):
    assert flask_server.server != "waitress"


def test_skipped_on_gunicorn(flask_server):
    if flask_server.server == "gunicorn":
        pytest.skip("not on gunicorn")


@pytest.mark.parametrize("n", [1, 2])
def test_param(flask_url, n):
    assert n


def test_no_server():
    pass
"""


def test_terminal_table_and_json_report(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_mixed=MIXED)
    result = pytester.runpytest_subprocess(
        "--flask-app=hello:app", "--flask-servers=flask-run,gunicorn,waitress",
        "--flask-smoke", "-k", "not smoke or starts or stop", "--flask-report=out/matrix.json")
    result.assert_outcomes(passed=20, failed=1, skipped=1, deselected=17)
    result.stdout.fnmatch_lines([
        "*- flaskserve matrix -*",
        "test * flask-run * gunicorn * waitress",
        "smoke::starts * pass * pass * pass",
        "smoke::stop * pass * pass * pass",
        "test_mixed.py::test_ok * pass * pass * pass",
        "test_mixed.py::test_fails_on_waitress * pass * pass * FAIL",
        "test_mixed.py::test_skipped_on_gunicorn * pass * skip * pass",
        "test_mixed.py::test_param[[]1[]] * pass * pass * pass",
        "test_mixed.py::test_param[[]2[]] * pass * pass * pass",
        "server starts * 2 * 2 * 2",
        "ready ms (median/max) * [0-9]*/[0-9]* * [0-9]*/[0-9]* * [0-9]*/[0-9]*",
        "stop ms (median/max) * [0-9]*/[0-9]* * [0-9]*/[0-9]* * [0-9]*/[0-9]*",
        "passed/failed/skipped * 7/0/0 * 6/0/1 * 6/1/0",
        "flaskserve: matrix written to */out/matrix.json",
    ])
    assert "test_no_server" not in result.stdout.str().split("flaskserve matrix")[1]

    data = json.loads((pytester.path / "out" / "matrix.json").read_text())
    assert validate(data) == []
    assert data["format"] == FORMAT and data["app"] == "hello:app" and data["exit_status"] == 1
    assert data["servers"] == ["flask-run", "gunicorn", "waitress"]
    rows = {t["test"]: t["results"] for t in data["tests"]}
    assert rows["test_mixed.py::test_fails_on_waitress"] == {
        "flask-run": "pass", "gunicorn": "pass", "waitress": "fail"}
    assert rows["test_mixed.py::test_skipped_on_gunicorn"]["gunicorn"] == "skip"
    assert list(rows)[:2] == ["smoke::starts", "smoke::stop"]
    assert data["totals"]["waitress"] == {"pass": 6, "fail": 1, "error": 0, "skip": 0,
                                          "xfail": 0, "xpass": 0}
    # the smoke servers (3 workers for Gunicorn) and the session servers of the tests
    runs = data["server_runs"]
    assert sorted(r["server"] for r in runs) == ["flask-run", "flask-run", "gunicorn",
                                                 "gunicorn", "waitress", "waitress"]
    assert all(r["stop_seconds"] is not None and r["failed"] is None for r in runs)
    assert any("--workers 3" in r["command"] for r in runs if r["server"] == "gunicorn")
    assert data["timings"]["gunicorn"]["starts"] == 2
    assert data["timings"]["waitress"]["stop_seconds_max"] >= \
        data["timings"]["waitress"]["stop_seconds_median"]


def test_ini_twin_and_nothing_printed_without_servers(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nflask_report = reports/m.json\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-servers=flask-run")
    result.assert_outcomes(passed=1)
    assert "flaskserve matrix" not in result.stdout.str()
    data = json.loads((pytester.path / "reports" / "m.json").read_text())
    assert validate(data) == []
    assert data["servers"] == [] and data["tests"] == [] and data["server_runs"] == []


def test_xdist_workers_report_to_the_controller(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_x="""
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_n(flask_url, n):
            assert n < 3
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--flask-app=hello:app",
                                           "--flask-servers=flask-run,waitress",
                                           "--flask-report=m.json")
    result.assert_outcomes(passed=6, failed=2)
    result.stdout.fnmatch_lines(["test_x.py::test_n[[]3[]] * FAIL * FAIL"])
    data = json.loads((pytester.path / "m.json").read_text())
    assert validate(data) == []
    assert {r["worker"] for r in data["server_runs"]} <= {"gw0", "gw1"}
    assert {r["worker"] for r in data["server_runs"]} != {""}
    assert len(data["tests"]) == 4
    assert all(r["stop_seconds"] is not None for r in data["server_runs"])


def test_validate_rejects_what_the_schema_forbids() -> None:
    good = {
        "format": FORMAT, "version": 1, "app": None, "exit_status": 0, "servers": ["gunicorn"],
        "tests": [{"test": "t", "results": {"gunicorn": "pass"}}],
        "totals": {"gunicorn": {o: 0 for o in OUTCOMES}},
        "timings": {"gunicorn": {"starts": 1, "failed_starts": 0, "ready_seconds_median": 0.1,
                                 "ready_seconds_max": 0.1, "stop_seconds_median": None,
                                 "stop_seconds_max": None, "forced_stops": 0}},
        "server_runs": [{"server": "gunicorn", "app": "a", "command": "c", "ready_seconds": 0.1,
                         "stop_seconds": None, "exit_code": None, "forced": False,
                         "failed": None, "worker": ""}],
    }
    assert validate(good) == []
    bad = json.loads(json.dumps(good))
    bad["tests"][0]["results"]["gunicorn"] = "passed"
    del bad["timings"]["gunicorn"]["starts"]
    bad["server_runs"][0]["forced"] = 0
    bad["totals"]["gunicorn"]["fail"] = True
    bad["extra"] = 1
    errors = validate(bad)
    assert "$.tests[0].results.gunicorn: 'passed' is not one of " \
           "['pass', 'fail', 'error', 'skip', 'xfail', 'xpass']" in errors
    assert "$.timings.gunicorn: missing 'starts'" in errors
    assert "$.server_runs[0].forced: int is not boolean" in errors
    assert "$.totals.gunicorn.fail: bool is not integer" in errors
    assert "$: unexpected key 'extra'" in errors
    assert len(errors) == 5
    # the schema is itself plain JSON, so CI can validate with any JSON Schema tool
    assert json.loads(json.dumps(SCHEMA)) == SCHEMA


def test_documented_shape_validates() -> None:
    """docs/parity.md's JSON example is a valid report, and its key table covers the schema."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "parity.md").read_text()
    example = json.loads(doc.split("```json\n", 1)[1].split("```", 1)[0])
    assert validate(example) == []
    for key in SCHEMA["required"]:
        assert f"`{key}" in doc, key

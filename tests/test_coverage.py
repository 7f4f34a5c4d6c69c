"""Coverage of the app inside the servers: a route that only an HTTP request reaches counts
as covered, on every server, under ``pytest --cov`` (with xdist) and ``coverage run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_flaskserve import coverage_support
from pytest_flaskserve.lifecycle import supervisor
from pytest_flaskserve.servers import ServerOptions

pytest.importorskip("coverage", reason="coverage is not installed (pip install 'coverage>=7.10')")
pytest.importorskip("pytest_cov", reason="pytest-cov is not installed (pip install pytest-cov)")

SERVERS = ["flask-run", "app-run", "gunicorn", "waitress", "uwsgi", "granian", "cheroot",
           "gunicorn-gthread", "gunicorn-gevent", "gevent", "eventlet", "uvicorn", "hypercorn"]
#: Served under coverage, but what they run is not measured (README, coverage docs):
#: uWSGI's gevent loop ends its workers without Python's atexit, where coverage saves;
#: mod_wsgi runs requests on threads it creates in C, which coverage does not trace.
UNMEASURED = ["uwsgi-gevent", "mod_wsgi"]
#: Werkzeug's reloader runs the app in a child process: its own case.
RELOADERS = ["flask-run-reload", "app-run-debug"]


def _app_source() -> str:
    """An app with one branch per server, each tagged, so the report says who ran what."""
    branches = "".join(
        f"    if server == {name!r}:\n        return server  # hit:{name}\n"
        for name in SERVERS + RELOADERS + UNMEASURED)
    return (
        "from flask import Flask\n\napp = Flask(__name__)\n\n\n"
        "@app.get('/')\ndef index():\n    return 'ok'\n\n\n"
        "@app.get('/hit/<server>')\ndef hit(server):\n" + branches + "    return 'unknown'\n\n\n"
        "if __name__ == '__main__':\n    app.run()\n"
    )


INNER = """
import pytest
import requests

def hit(handle, name):
    assert requests.get(f"{handle.url}/hit/{name}", timeout=10).text == name

@pytest.mark.flask_servers(*SERVERS)
def test_hit(flask_server):
    hit(flask_server, flask_server.server)

@pytest.mark.flask_servers("flask-run")
@pytest.mark.flask_options(reload=True)
def test_hit_reloader(flask_server):
    hit(flask_server, "flask-run-reload")

@pytest.mark.flask_servers("app-run")
@pytest.mark.flask_app("covdebug.py")
def test_hit_app_run_debug(flask_server):
    hit(flask_server, "app-run-debug")
""".replace("SERVERS", repr(SERVERS + UNMEASURED))

def _supervisor_applies_coverage_env() -> bool:
    """Whether ``supervisor.server_env`` adds what ``coverage_support.server_env()`` says."""
    app = SimpleNamespace(path_entry="/nowhere")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(coverage_support, "server_env", lambda: {"FLASKSERVE_COVERAGE_PROBE": "1"})
        env = supervisor.server_env({}, app, ServerOptions(), {}, False)  # type: ignore[arg-type]
    return env.get("FLASKSERVE_COVERAGE_PROBE") == "1"


def _project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(covapp=_app_source(),
                        covdebug="from covapp import app\n\nif __name__ == '__main__':\n"
                                 "    app.run(debug=True, port=5000)\n",
                        test_inner=INNER)


def _hit_lines(pytester: pytest.Pytester) -> dict[str, int]:
    lines = (pytester.path / "covapp.py").read_text().splitlines()
    return {ln.split("# hit:")[1]: i for i, ln in enumerate(lines, 1) if "# hit:" in ln}


def _executed(report: Path) -> set[int]:
    files = json.loads(report.read_text())["files"]
    return set(files["covapp.py"]["executed_lines"])


def test_routes_reached_over_http_are_covered_on_every_server(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess(
        "--flask-app=covapp:app", "-v", "-n", "2", "-p", "no:cacheprovider",
        "--cov=.", "--cov-report=json:cov.json")
    result.assert_outcomes(passed=len(SERVERS) + len(RELOADERS) + len(UNMEASURED))
    executed = _executed(pytester.path / "cov.json")
    missing = [name for name, line in _hit_lines(pytester).items()
               if line not in executed and name not in UNMEASURED]
    assert not missing, f"lines run only inside these servers were not covered: {missing}"
    source = (pytester.path / "covapp.py").read_text().splitlines()
    assert source.index("    return 'unknown'") + 1 not in executed  # a line no request ran
    # pytest-cov combined every server's data file into its own and removed them
    assert not list(pytester.path.glob(".coverage.*"))


def test_coverage_run_then_combine(pytester: pytest.Pytester) -> None:
    _project(pytester)
    pytester.makepyfile(test_inner="""
        import pytest
        import requests

        @pytest.mark.flask_servers("waitress", "gunicorn")
        def test_hit(flask_server):
            requests.get(f"{flask_server.url}/hit/{flask_server.server}", timeout=10)
    """)
    run = pytester.run(sys.executable, "-m", "coverage", "run", "-m", "pytest",
                       "--flask-app=covapp:app", "-p", "no:cacheprovider", timeout=120)
    assert run.ret == 0, run.stdout.str()
    # the servers' data sits beside .coverage until it is combined
    assert len(list(pytester.path.glob(".coverage.*"))) >= 2
    for step in (["combine", "--append"], ["json", "-o", "cov.json"]):
        done = pytester.run(sys.executable, "-m", "coverage", *step, timeout=60)
        assert done.ret == 0, done.stdout.str()
    executed = _executed(pytester.path / "cov.json")
    lines = _hit_lines(pytester)
    assert {lines["waitress"], lines["gunicorn"]} <= executed
    assert lines["uwsgi"] not in executed


def test_server_environment(tmp_path: Path) -> None:
    """Without coverage nothing is added (and coverage is not imported); with it, the
    servers get the run's settings plus what servers need, with an absolute data file."""
    probe = """
import base64, json, os, sys
from pytest_flaskserve import coverage_support
print(json.dumps([coverage_support.server_env(), "coverage" in sys.modules]))
import coverage
cov = coverage.Coverage(data_file="data/.cov", branch=True)
cov.start()
env = coverage_support.server_env()
cov.stop()
os.chdir("/")
config = json.loads(base64.b64decode(env["COVERAGE_PROCESS_CONFIG"]))
print(json.dumps([sorted(env), config["data_file"], config["parallel"], config["sigterm"],
                  config["branch"], config["patch"], config["plugins"],
                  coverage_support.server_env()]))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, timeout=60,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert json.loads(out[0]) == [{}, False]
    keys, data_file, parallel, sigterm, branch, patch, plugins, after = json.loads(out[1])
    assert keys == ["COVERAGE_PROCESS_CONFIG"]
    assert data_file == str(tmp_path / "data" / ".cov")
    assert (parallel, sigterm, branch) == (True, True, True)
    assert patch == ["_exit"] and plugins == ["pytest_flaskserve._coverage_boot"]
    assert after == {}  # stopped: nothing is measured any more


def test_supervisor_applies_the_coverage_environment() -> None:
    assert _supervisor_applies_coverage_env()

"""What loading the plugin costs a run that starts no server: the modules it imports
(the time is measured by benchmarks/load_overhead.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: everything the plugin imports to load: its tables and the thin fixtures
LOAD_TIME_MODULES = {
    "pytest_flaskserve",
    "pytest_flaskserve.appspec",
    "pytest_flaskserve.errors",
    "pytest_flaskserve.plugin",
    "pytest_flaskserve.plugin.features",
    "pytest_flaskserve.plugin.fixtures",
    "pytest_flaskserve.plugin.live_server",
    "pytest_flaskserve.plugin.options",
}
#: and when the run sets anything (here the app), the settings are loaded and checked too
SETTINGS_MODULES = {"pytest_flaskserve.plugin.settings", "pytest_flaskserve.plugin.checks"}
#: with pytest-playwright installed, the fixtures that wrap its own are loaded too
if importlib.util.find_spec("pytest_playwright") is not None:
    LOAD_TIME_MODULES |= {"pytest_flaskserve.plugin.browser_fixtures"}
NEVER_AT_LOAD = ("flask", "werkzeug", "requests", "psutil", "gunicorn", "waitress", "uwsgi",
                 "granian", "cheroot", "dotenv", "http.client", "concurrent.futures",
                 "pytest_flaskserve.lifecycle", "pytest_flaskserve.servers",
                 "pytest_flaskserve.appspec.grammar", "pytest_flaskserve.appspec.resolve")



def _environment_that_sets_nothing() -> dict[str, str]:
    """This process's environment without the plugin's variables: CI runs the suite a
    second time with FLASKSERVE_COLD set, and a run that inherits it sets something."""
    from pytest_flaskserve.plugin.options import APP_ENV, OPTIONS

    ours = {APP_ENV, *(o.env for o in OPTIONS if o.env)}
    return {k: v for k, v in os.environ.items() if k not in ours}


_RUN = """
import json, sys, pytest
code = pytest.main(sys.argv[1:])
print("MODULES" + json.dumps(sorted(sys.modules)))
raise SystemExit(code)
"""


def _modules_after_run(project: Path, *args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _RUN, "-q", "-p", "no:cacheprovider", *args],
                          cwd=project, env=_environment_that_sets_nothing(), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return set(json.loads(done.stdout.split("MODULES", 1)[1]))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plain")
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_plain.py").write_text("".join(
        f"def test_{i}():\n    assert {i} + 1 == {i + 1}\n\n" for i in range(5)))
    (root / "hello.py").write_text("from flask import Flask\n\napp = Flask(__name__)\n")
    return root


@pytest.mark.parametrize(("args", "settings_loaded"), [((), False),
                                                      (("--flask-app=hello:app",), True)],
                         ids=["no-app", "named-app"])
def test_a_run_without_servers_imports_only_the_tables(project: Path, args: tuple[str, ...],
                                                       settings_loaded: bool) -> None:
    """A run whose tests ask for no server imports the plugin's tables and fixtures and
    nothing else of ours, at load or at the end: no app resolved, no server imported,
    nothing swept; the settings only when the run sets something (to check it at once)."""
    plain = _modules_after_run(project, "-p", "no:flaskserve")
    loaded = _modules_after_run(project, *args)
    added = loaded - plain
    ours = {m for m in added if m.startswith("pytest_flaskserve")}
    expected = LOAD_TIME_MODULES | (SETTINGS_MODULES if settings_loaded else set())
    assert ours == expected, f"imported: {sorted(ours ^ expected)}"
    others = sorted(added - ours)
    assert not [m for m in added if m.startswith(NEVER_AT_LOAD)], others
    assert len(others) <= 2, f"standard modules the plugin pulls in at load: {others}"



@pytest.mark.parametrize(("args", "expected"), [
    ((), ["fixtures", "live_server"]),
    (("-p", "no:pytest_flaskserve.plugin.live_server"), ["fixtures"]),
    (("-p", "no:flaskserve"), []),
], ids=["default", "one-part-disabled", "plugin-disabled"])
def test_the_parts_come_and_go_with_the_plugin(pytester: pytest.Pytester, args: tuple[str, ...],
                                              expected: list[str]) -> None:
    """The parts are registered with the plugin (not through ``pytest_plugins``), so
    ``-p no:flaskserve`` removes them all, and one is disabled alone by its name."""
    pytester.makepyfile(test_parts="""
        def test_parts(pytestconfig):
            names = ("fixtures", "live_server")
            found = [n for n in names
                     if pytestconfig.pluginmanager.has_plugin(f"pytest_flaskserve.plugin.{n}")]
            print("PARTS(" + ",".join(found) + ")")
    """)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*PARTS({','.join(expected)})*"])


def test_every_option_names_a_check() -> None:
    """The table names each option's check in ``plugin.checks`` (imported with the
    settings, not with the plugin): a name that is not there fails here, not in a run."""
    from pytest_flaskserve.plugin import checks
    from pytest_flaskserve.plugin.options import OPTIONS

    assert [o.flag for o in OPTIONS if not callable(getattr(checks, o.check, None))] == []


def test_a_run_that_sets_nothing_loads_its_settings_with_the_first_server(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing named on the command line, in the ini file or the environment: the header
    says nothing of the plugin, and a test whose marker names the app still gets its
    servers, under xdist too (the controller, which starts none, still shows the matrix)."""
    pytester.makepyfile(hello="""
        from flask import Flask
        app = Flask(__name__)
        @app.get("/")
        def index():
            return "hi"
    """)
    pytester.makepyfile(test_marked="""
        import pytest
        import requests

        @pytest.mark.flask_app("hello:app")
        @pytest.mark.flask_servers("waitress", "flask-run")
        def test_served(flask_url):
            assert requests.get(flask_url, timeout=10).text == "hi"

        def test_plain():
            pass
    """)
    for name in set(os.environ) - set(_environment_that_sets_nothing()):
        monkeypatch.delenv(name)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=3)
    assert "flaskserve:" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*flaskserve matrix*", "test_marked.py::test_served*pass*pass*"])

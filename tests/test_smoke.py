"""The smoke suite end to end: inner pytest runs with --flask-smoke on real servers,
mostly in a directory with no test file at all, each asserting which check failed on
which server and what the message says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.parity.smoke import CHECKS


def expected_items(names: list[str], baseline: str) -> dict[str, str]:
    """Item id -> expected outcome word for an app that passes everything."""
    out = {}
    for name in names:
        launcher = servers.get(name)
        for check in CHECKS:
            if check.production_only and not launcher.production:
                continue
            if check.compares and name == baseline or check.tls_only:
                continue
            behind = launcher.behind is not None
            if (check.proxied_only and not behind) or (check.bare_only and behind):
                continue
            out[f"smoke::{check.name}[{name}]"] = "PASSED"
    return out


def test_hello_passes_every_check_on_every_server(pytester: pytest.Pytester, examples: Path) -> None:
    # only the app: no test file, no conftest, no ini
    assert not list(pytester.path.glob("test_*.py"))
    result = pytester.runpytest_subprocess("--flask-app=hello.py", "--flask-smoke", "-v", "-rs")
    names = [n for n in servers.default_names() if servers.get(n).unavailable() is None]
    items = expected_items(names, baseline="flask-run")
    single = []
    for name in names:
        if servers.get(name).production and f"smoke::workers[{name}] SKIPPED" in result.stdout.str():
            single.append(name)
            items[f"smoke::workers[{name}]"] = "SKIPPED"
    result.assert_outcomes(passed=len(items) - len(single), skipped=len(single))
    assert result.ret == 0
    for item, word in items.items():
        result.stdout.fnmatch_lines([f"{item.replace('[', '?').replace(']', '?')} {word}*"])
    # the skips are the single-process servers, and they say so
    assert "waitress" in single and "gunicorn" not in single and "uwsgi" not in single
    result.stdout.fnmatch_lines(["*waitress serves every request from one process*"])
    result.stdout.fnmatch_lines(["*flaskserve matrix*", "smoke::workers * pass *"])


def test_stateful_app_fails_on_worker_state_and_says_why(pytester: pytest.Pytester,
                                                        examples: Path) -> None:
    result = pytester.runpytest_subprocess(
        "--flask-app=stateful.py", "--flask-smoke",
        "--flask-servers=flask-run,gunicorn,uwsgi,waitress")
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["FAILED smoke::workers?gunicorn?*", "FAILED smoke::workers?uwsgi?*"])
    result.assert_outcomes(failed=2, skipped=1, passed=len(expected_items(
        ["flask-run", "gunicorn", "uwsgi", "waitress"], "flask-run")) - 3)
    for server in ("gunicorn", "uwsgi"):
        assert (f"1 route(s) answer differently depending on which of the 3 {server} worker "
                "processes serves them") in out
        section = out.split(f"{server} worker processes serves them", 1)[1]
        pids = re.findall(r'worker pid (\d+): 200 OK \{"count":0,"pid":(\d+)\}', section)[:3]
        assert len(pids) == 3 and all(a == b for a, b in pids), section[:600]
        assert len({a for a, _ in pids}) == 3
    assert "module globals" in out and "--flask-smoke-exclude=PATH" in out
    assert "GET /count:" in out and "GET /:" not in out  # "/" answers the same everywhere

    # the documented way out: exclude the per-process route
    again = pytester.runpytest_subprocess(
        "--flask-app=stateful.py", "--flask-smoke", "--flask-smoke-exclude=/count",
        "--flask-servers=gunicorn,uwsgi", "-k", "workers")
    again.assert_outcomes(passed=2)


def test_status_difference_between_servers_names_both(pytester: pytest.Pytester,
                                                     examples: Path) -> None:
    result = pytester.runpytest_subprocess(
        "--flask-app=parity/main_only_init.py", "--flask-smoke",
        "--flask-servers=flask-run,app-run,gunicorn", "-k", "routes or same-status")
    result.assert_outcomes(failed=3, passed=2)
    result.stdout.fnmatch_lines(["FAILED smoke::routes?flask-run?*",
                                 "FAILED smoke::same-status?app-run?*",
                                 "FAILED smoke::routes?gunicorn?*"])
    # the difference names both servers and both statuses
    result.stdout.fnmatch_lines(
        ["  GET /greeting: 500 INTERNAL SERVER ERROR on flask-run, 200 OK on app-run"])
    assert "1 of 2 GET routes failed on gunicorn" in result.stdout.str()


def test_head_with_a_body_is_caught(pytester: pytest.Pytester, examples: Path) -> None:
    result = pytester.runpytest_subprocess(
        "--flask-app=parity/stream.py", "--flask-smoke",
        "--flask-servers=flask-run,gunicorn,waitress", "-k", "head", "-v")
    result.assert_outcomes(failed=1, passed=2)
    result.stdout.fnmatch_lines(["*smoke::head?flask-run? PASSED*",
                                 "*smoke::head?gunicorn? PASSED*",
                                 "*smoke::head?waitress? FAILED*"])
    result.stdout.fnmatch_lines([r"  HEAD /events: 5 bytes after the headers (b'0\r\n\r\n')*"])


def test_debugger_reachable_in_production_is_caught(pytester: pytest.Pytester,
                                                   examples: Path) -> None:
    result = pytester.runpytest_subprocess(
        "--flask-app=parity/debugger.py", "--flask-smoke", "--flask-servers=gunicorn",
        "-k", "debug-off")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "debug mode is on or the Werkzeug debugger is reachable under gunicorn:",
        "  app.wsgi_app is wrapped in Werkzeug's DebuggedApplication*",
        "  GET /?__debugger__=yes&cmd=resource&f=debugger.js on gunicorn served the Werkzeug*",
        "  GET /console on gunicorn served the Werkzeug debugger console*",
    ])
    # debug mode switched on for the run: app.debug is what a production server sees
    debug = pytester.runpytest_subprocess(
        "--flask-app=hello.py", "--flask-smoke", "--flask-servers=waitress", "--flask-debug",
        "-k", "debug-off")
    debug.assert_outcomes(failed=1)
    debug.stdout.fnmatch_lines(["  app.debug is True in the environment waitress runs with*"])


def test_stop_check_fails_when_the_app_ignores_sigterm(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(stubborn="""
        import signal
        from flask import Flask

        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # e.g. a scheduler's shutdown hook
        app = Flask(__name__)

        @app.get("/")
        def index():
            return "ok"
    """)
    result = pytester.runpytest_subprocess(
        "--flask-app=stubborn:app", "--flask-smoke", "--flask-servers=waitress",
        "--flask-stop-timeout=1", "-k", "stop")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "waitress did not exit within 1 s of SIGTERM and was killed with SIGKILL*"])


@pytest.mark.parametrize(("index", "says"), [
    ("raise RuntimeError('no such table: user')",
     "*the app failed on its ready path / (500; its traceback is in the server log below)*"),
    ("abort(404)", "*its ready path / answered 404*point --flask-ready-path at one*"),
], ids=["app-error", "not-found"])
def test_a_ready_path_that_fails_says_whose_failure_it_is(pytester: pytest.Pytester,
                                                          index: str, says: str) -> None:
    """A 5xx on the ready path is the app's own error (an uninitialised database, as in
    Flask's tutorial): another ready path would not mend it, so only a 4xx gets that hint."""
    pytester.makepyfile(broken=f"""
        from flask import Flask, abort

        app = Flask(__name__)

        @app.get("/")
        def index():
            {index}
    """)
    result = pytester.runpytest_subprocess("--flask-app=broken:app", "--flask-smoke",
                                           "--flask-servers=waitress", "-k", "starts")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([says])
    if "RuntimeError" in index:
        result.stdout.fnmatch_lines(["*RuntimeError: no such table: user*"])
        assert "--flask-ready-path" not in result.stdout.str()


def test_collected_without_test_files_selectable_and_gone_with_the_plugin(
        pytester: pytest.Pytester, examples: Path) -> None:
    listed = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-smoke",
                                           "--flask-servers=flask-run,gunicorn",
                                           "--collect-only", "-q")
    ids = [ln for ln in listed.stdout.lines if ln.startswith("smoke::")]
    assert ids == [f"smoke::{c}[flask-run]" for c in ("starts", "routes", "not-found", "head",
                                                      "stop")] + \
        [f"smoke::{c.name}[gunicorn]" for c in CHECKS if not c.proxied_only and not c.tls_only]
    picked = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-smoke",
                                           "--flask-servers=flask-run,gunicorn",
                                           "--collect-only", "-q", "-k", "gunicorn and routes")
    assert [ln for ln in picked.stdout.lines if ln.startswith("smoke::")] == \
        ["smoke::routes[gunicorn]"]
    gone = pytester.runpytest_subprocess("-p", "no:flaskserve", "--flask-smoke")
    assert gone.ret == pytest.ExitCode.USAGE_ERROR
    gone.stderr.fnmatch_lines(["*unrecognized arguments: --flask-smoke*"])
    nothing = pytester.runpytest_subprocess("-p", "no:flaskserve", "--collect-only", "-q")
    assert nothing.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "smoke::" not in nothing.stdout.str()


def test_needs_an_app(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--flask-smoke")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--flask-smoke needs an app: pass --flask-app=module:app*"])


def test_ini_twin_and_combined_with_the_users_tests(pytester: pytest.Pytester,
                                                   examples: Path) -> None:
    pytester.makeini("[pytest]\nflask_app = hello:app\nflask_smoke = true\n"
                     "flask_servers = flask-run,waitress\n")
    pytester.makepyfile(test_user="""
        def test_home(flask_http):
            assert flask_http.get("/").text == "Hello, World!"
    """)
    result = pytester.runpytest_subprocess("-v")
    smoke = expected_items(["flask-run", "waitress"], "flask-run")
    result.assert_outcomes(passed=len(smoke) - 1 + 2, skipped=1)
    result.stdout.fnmatch_lines(["smoke::starts?flask-run? PASSED*",
                                 "*test_user.py::test_home?waitress? PASSED*"])


def test_a_server_skipped_at_collection_is_reported_not_an_internal_error(
        pytester: pytest.Pytester, examples: Path) -> None:
    """A smoke item skipped by its marker (an optional server not installed, app-run for
    a script with no entry point) reports a location pytest can print: it was an
    INTERNALERROR (pytest asserts the item's line is not None), found on httpbin."""
    pytester.makeconftest("""
        import sys

        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "gunicorn":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Hide())
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-smoke",
                                           "--flask-servers=gunicorn,waitress", "-rs")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [f"SKIPPED [[]{len([c for c in CHECKS if not c.proxied_only and not c.tls_only])}[]] *: gunicorn is not installed in this environment*"])

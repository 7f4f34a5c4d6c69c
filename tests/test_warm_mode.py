"""Warm starts (the default) through pytest: every server and scope still works, servers
really fork from the warm launcher, the first ones too (uWSGI, not a Python command, starts
cold), the header and ``-v`` say which and why; ``--flask-cold`` starts every one cold."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_warm_mode_over_every_server_and_scope(pytester: pytest.Pytester, examples: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLASKSERVE_COLD", raising=False)  # the suite's cold pass sets it
    pytester.makepyfile(test_inner="""
        import pytest
        import requests
        KINDS = {}

        def record(h):
            KINDS.setdefault(h.server, []).append(
                type(h.process).__name__ + ("/warm" if h.process.started_warm else "/cold"))
            assert requests.get(h.url, timeout=10).text == "Hello, World!"

        def test_session(flask_server):
            record(flask_server)

        @pytest.mark.flask_scope("module")
        def test_module(flask_server):
            record(flask_server)

        @pytest.mark.flask_scope("function")
        @pytest.mark.parametrize("n", range(3))
        def test_function(flask_server, n):
            record(flask_server)
            code = flask_server.stop()
            assert code is not None and not flask_server.is_running()

        def test_zz_kinds():
            # the first starts too: they wait for the launcher's preload
            for server in ("flask-run", "app-run", "gunicorn", "waitress"):
                assert set(KINDS[server]) == {"WarmProcess/warm"}, (server, KINDS[server])
            assert set(KINDS["uwsgi"]) == {"ManagedProcess/cold"}
    """)
    result = pytester.runpytest_subprocess(
        "--flask-app=hello:app", "-v", "-p", "no:randomly",
        "--flask-servers=flask-run,app-run,gunicorn,waitress,uwsgi")
    # the lines that say why, up front: CI shortens the middle of a long captured output
    why = [ln for ln in result.outlines if "failed to start" in ln or "cause:" in ln
           or ln.startswith(("ERROR ", "FAILED "))]
    assert result.parseoutcomes().get("passed") == 5 * 5 + 1, "\n".join(why)
    result.assert_outcomes(passed=5 * 5 + 1)
    result.stdout.fnmatch_lines([
        "flaskserve: warm starts for flask-run, app-run, gunicorn, waitress (forked from a "
        "pre-warmed launcher; --flask-cold for none); cold for uwsgi: uWSGI is a compiled "
        "program, not a Python command",
        "gunicorn * ready * ms, stop * ms, exit *; warm start",
        "uwsgi * ready * ms, stop * ms, exit *; cold start: uWSGI is a compiled program, not "
        "a Python command",
        "warm launcher: * cold start(s) (*uwsgi: uWSGI is a compiled program*)"])


def test_flask_cold_starts_every_server_cold(pytester: pytest.Pytester, examples: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLASKSERVE_COLD", raising=False)
    pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.flask_servers("flask-run", "gunicorn")
        @pytest.mark.flask_scope("function")
        @pytest.mark.parametrize("n", range(2))
        def test_cold(flask_server, n):
            assert type(flask_server.process).__name__ == "ManagedProcess"
            assert not flask_server.process.started_warm
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-cold", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["flaskserve: every server starts cold (--flask-cold)",
                                 "*cold=True (--flask-cold)*"])
    assert "warm launcher" not in result.stdout.str()


def test_the_smoke_suite_starts_warm_too(pytester: pytest.Pytester, examples: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Smoke items use no fixture: their starts reach the warm launcher all the same."""
    monkeypatch.delenv("FLASKSERVE_COLD", raising=False)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-smoke", "-v",
                                           "--flask-servers=flask-run,gunicorn,waitress")
    assert result.ret == 0, result.stdout.str()
    starts = [ln for ln in result.outlines if " ready " in ln and "; " in ln]
    assert starts and all(ln.endswith("; warm start") for ln in starts), starts

"""--flask-warm through pytest: every server and scope still works, and servers really
fork from the warm launcher once it is ready (uWSGI, not a Python command, starts cold)."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_warm_mode_over_every_server_and_scope(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import pytest
        import requests
        KINDS = {}

        def record(h):
            KINDS.setdefault(h.server, []).append(type(h.process).__name__)
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
            for server in ("flask-run", "app-run", "gunicorn", "waitress"):
                assert "WarmProcess" in KINDS[server], (server, KINDS[server])
            assert set(KINDS["uwsgi"]) == {"ManagedProcess"}
    """)
    result = pytester.runpytest_subprocess(
        "--flask-app=hello:app", "--flask-warm", "-v", "-p", "no:randomly",
        "--flask-servers=flask-run,app-run,gunicorn,waitress,uwsgi")
    # the lines that say why, up front: CI shortens the middle of a long captured output
    why = [ln for ln in result.outlines if "failed to start" in ln or "cause:" in ln
           or ln.startswith(("ERROR ", "FAILED "))]
    assert result.parseoutcomes().get("passed") == 5 * 5 + 1, "\n".join(why)
    result.assert_outcomes(passed=5 * 5 + 1)
    result.stdout.fnmatch_lines(["*warm=True (--flask-warm)*",
                                 "warm launcher: * cold start(s)*not this interpreter*"])

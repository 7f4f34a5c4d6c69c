"""flask_parity end to end (inner pytest runs on real servers): it passes where the
servers agree and fails with a side-by-side table where the example apps diverge; plus
the comparison itself on recorded exchanges."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_flaskserve.parity.compare import ParityResult, compare
from pytest_flaskserve.parity.wire import Exchange

AGREE = """
import pytest


def test_hello_agrees_everywhere(flask_parity):
    assert len(flask_parity.servers) >= 5
    assert flask_parity.get("/").exchanges["gunicorn"].text == "Hello, World!"
    flask_parity.get("/ping")
    assert flask_parity.get("/no/such/page")["waitress"].status == 404
    head = flask_parity.head("/")
    assert all(ex.body == b"" and ex.status == 200 for ex in head.exchanges.values())
    flask_parity.post("/", json={"a": 1})  # 405 everywhere
    flask_parity.post("/", body=iter([b"x", b"y"]))  # chunked, still 405 everywhere
"""

DIVERGE = """
import json

import pytest


@pytest.mark.flask_app("parity/upload.py")
def test_fixed_length_upload_agrees(flask_parity):
    flask_parity.post("/upload", body=b"abcdefgh")


@pytest.mark.flask_app("parity/upload.py")
def test_chunked_upload(flask_parity):
    flask_parity.post("/upload", body=iter([b"abc", b"defgh"]))


@pytest.mark.flask_app("parity/upload.py")
def test_chunked_upload_api(flask_parity):
    result = flask_parity.post("/upload", body=iter([b"abc", b"defgh"]), check=False)
    assert not result and "body" in [d.field for d in result.differences]
    got = {name: ex.json()["received"] for name, ex in result.exchanges.items()
           if name != "uwsgi"}
    assert got == {"flask-run": 8, "gunicorn": 8, "waitress": 8}
    # uWSGI's view reads an empty body; rarely it closes before the last chunk is sent
    # and the reset loses its answer: the upload is lost either way
    uwsgi = result["uwsgi"]
    assert uwsgi.json()["received"] == 0 if uwsgi.status else \
        uwsgi.error.startswith("the server closed the connection before")


@pytest.mark.flask_app("parity/proxy.py")
def test_direct_request_agrees(flask_parity):
    result = flask_parity.get("/whoami")  # each server's own address compares as {host}
    assert result["gunicorn"].json()["external_url"].endswith("/whoami")


@pytest.mark.flask_app("parity/proxy.py")
def test_behind_a_proxy(flask_parity):
    flask_parity.get("/whoami", headers={"X-Forwarded-Proto": "https",
                                         "X-Forwarded-For": "203.0.113.9"})


@pytest.mark.flask_app("parity/stream.py")
def test_streamed_response(flask_parity):
    result = flask_parity.get("/events")
    for name, ex in result.exchanges.items():
        assert ex.text == "event 0\\nevent 1\\nevent 2\\nevent 3\\n", name
        # the first line arrives before the generator has finished: really streamed
        assert ex.first_byte_seconds < ex.seconds - 0.2, (name, ex.chunks)


@pytest.mark.flask_app("stateful.py")
@pytest.mark.flask_servers("flask-run", "gunicorn", "uwsgi")
@pytest.mark.flask_options(workers=3)
def test_counter_across_workers(flask_parity):
    for _ in range(3):
        flask_parity.post("/hit", normalize=lambda body: json.loads(body)["count"])


@pytest.mark.flask_app("parity/slow.py")
@pytest.mark.flask_servers("flask-run", "gunicorn")
@pytest.mark.flask_options(extra_args={"gunicorn": ["--timeout", "1"]})
def test_request_longer_than_gunicorns_timeout(flask_parity):
    flask_parity.get("/slow?seconds=2.5")
"""


def test_agrees_on_every_server(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_agree=AGREE)
    result = pytester.runpytest_subprocess("--flask-app=hello.py")
    result.assert_outcomes(passed=1)


def test_divergences_fail_with_a_side_by_side_table(pytester: pytest.Pytester,
                                                   examples: Path) -> None:
    pytester.makepyfile(test_diverge=DIVERGE)
    result = pytester.runpytest_subprocess("--flask-servers=flask-run,gunicorn,waitress,uwsgi")
    out = result.stdout.str()
    result.assert_outcomes(passed=4, failed=4)
    result.stdout.fnmatch_lines([
        "FAILED test_diverge.py::test_chunked_upload - *",
        "FAILED test_diverge.py::test_behind_a_proxy - *",
        "FAILED test_diverge.py::test_counter_across_workers - *",
        "FAILED test_diverge.py::test_request_longer_than_gunicorns_timeout - *",
    ])
    # chunked upload: uWSGI's view read an empty body
    result.stdout.fnmatch_lines([
        "E * flask_parity: POST /upload answered differently on 1 field(s)*",
        "E *flask-run * | gunicorn * | waitress * | uwsgi",
        "E *  status * 200 OK * | 200 OK * | 200 OK * | 200 OK",
        'E * body *ceived":8* | *ceived":8* | *ceived":8* | *',
    ])
    assert ('body on uwsgi: {"received":0,' in out
            or "the server closed the connection before the whole request was sent" in out)
    # behind a proxy: Gunicorn and uWSGI trust X-Forwarded-Proto, the others do not
    result.stdout.fnmatch_lines([
        "E * flask_parity: GET /whoami answered differently*",
        'E *  body on flask-run: {"external_url":"http://{host}/whoami",*"scheme":"http"}*',
        'E *  body on gunicorn: {"external_url":"https://{host}/whoami",*"scheme":"https"}*',
        'E *  body on waitress: {"external_url":"http://{host}/whoami",*"scheme":"http"}*',
        'E *  body on uwsgi: {"external_url":"https://{host}/whoami",*"scheme":"https"}*',
    ])
    # in-memory counter: the second hit lands on another worker, which counts 1
    result.stdout.fnmatch_lines([
        "E * flask_parity: POST /hit answered differently on 1 field(s)*",
        "E * body * 2 * | 1 * | 1",
        "E *  worker pid * - * | [0-9]* | [0-9]*",
    ])
    # the traceback ends at the test's own line, not inside the plugin
    assert "pytest_flaskserve/parity/" not in out
    # a request longer than --timeout: Gunicorn aborts the worker and answers 500
    result.stdout.fnmatch_lines([
        "E * flask_parity: GET /slow?seconds=2.5 answered differently*",
        "E * status * 200 OK * | 500 Internal Server Error",
    ])
    assert "WORKER TIMEOUT" in out  # from the Gunicorn log attached to the failure


IGNORED = """
def test_request_id(flask_parity):
    flask_parity.get("/")


def test_request_id_ignored_for_one_call(flask_parity):
    result = flask_parity.get("/", ignore_headers=["X-Request-Id"])
    assert "X-Request-Id" in result.ignored
"""


def test_ignored_headers_are_configurable(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_ids=IGNORED)
    args = ("--flask-app=parity/request_id.py", "--flask-servers=flask-run,waitress")
    default = pytester.runpytest_subprocess(*args)
    default.assert_outcomes(passed=1, failed=1)
    default.stdout.fnmatch_lines(["E * header X-Request-Id  [0-9a-f]* | [0-9a-f]*"])
    pytester.makeini("[pytest]\nflask_parity_ignore_headers = Date, Server, Connection, "
                     "Transfer-Encoding, X-Request-Id\n")
    configured = pytester.runpytest_subprocess(*args)
    configured.assert_outcomes(passed=2)
    # the command line replaces the ini list: Server is compared again
    cli = pytester.runpytest_subprocess(*args, "--flask-parity-ignore-headers=Date,X-Request-Id",
                                        "-k", "test_request_id_ignored")
    cli.assert_outcomes(failed=1)
    cli.stdout.fnmatch_lines(["E * header Server * Werkzeug/* | waitress"])


def test_fewer_than_two_servers_skips(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_one="def test_x(flask_parity):\n    flask_parity.get('/')\n")
    result = pytester.runpytest_subprocess("--flask-app=hello.py", "--flask-servers=waitress",
                                           "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*flask_parity compares servers, but fewer than two can run*"])


def _ex(status: int | None, body: bytes = b"", headers: tuple[tuple[str, str], ...] = (),
        error: str | None = None) -> Exchange:
    return Exchange(method="GET", path="/", status=status, reason="OK" if status else "",
                    headers=headers, body=body, error=error)


def test_compare_and_table() -> None:
    exchanges = {
        "flask-run": _ex(200, b'{"url":"http://127.0.0.1:5001/x"}',
                         (("Date", "a"), ("Location", "http://127.0.0.1:5001/x"))),
        "gunicorn": _ex(200, b'{"url":"http://127.0.0.1:6002/x"}',
                        (("Date", "b"), ("Location", "http://127.0.0.1:6002/x"))),
        "uwsgi": _ex(None, error="connection closed by the server"),
    }
    netlocs = {"flask-run": "127.0.0.1:5001", "gunicorn": "127.0.0.1:6002",
               "uwsgi": "127.0.0.1:7003"}
    diffs = compare(exchanges, netlocs, ignore_headers=["Date"])
    assert [d.field for d in diffs] == ["status", "header Location", "body"]
    assert diffs[1].values == {"flask-run": "http://{host}/x", "gunicorn": "http://{host}/x",
                               "uwsgi": "(absent)"}
    # without the missing response the two agree: ports never count as a difference
    two = {k: v for k, v in exchanges.items() if k != "uwsgi"}
    assert compare(two, netlocs, ignore_headers=["Date"]) == []
    assert [d.field for d in compare(two, netlocs, ignore_headers=[])] == ["header Date"]
    table = ParityResult("GET", "/", exchanges, diffs, ("status", "headers", "body"),
                         ("Date",)).table()
    lines = table.splitlines()
    assert lines[0].startswith("flask_parity: GET / answered differently on 3 field(s)")
    assert lines[2].startswith("* status") and "no response (connection" in lines[2]
    assert [ln[:1] for ln in lines[2:5]] == ["*", "*", "*"]
    assert lines[1].split() == ["flask-run", "|", "gunicorn", "|", "uwsgi"]
    # clipped cells are repeated in full below the table
    assert "  status on uwsgi: no response (connection closed by the server)" in lines


UNICODE_AND_STREAM = '''
import time
from flask import Flask, Response

app = Flask(__name__)


@app.get("/")
def endless():  # the ready path streams forever: status and headers are the answer
    def gen():
        while True:
            yield b"."
            time.sleep(0.2)
    return Response(gen())


@app.get("/café/<name>")
def cafe(name):
    return f"un café pour {name}"
'''


def test_streaming_ready_path_and_non_ascii_paths(pytester: pytest.Pytester) -> None:
    """An endless stream on the ready path is ready at its status line (it held the
    probe past every deadline); /café is sent percent-encoded, as a browser sends it."""
    pytester.makepyfile(uapp=UNICODE_AND_STREAM)
    pytester.makepyfile(test_inner="""
        def test_cafe(flask_parity):
            result = flask_parity.get("/café/zoé")
            assert result.exchanges["waitress"].text == "un café pour zoé"
    """)
    result = pytester.runpytest_subprocess("--flask-app=uapp:app", "--flask-startup-timeout=5",
                                           "--flask-servers=flask-run,gunicorn,waitress,uwsgi")
    result.assert_outcomes(passed=1)


def test_servers_that_all_fail_do_not_agree() -> None:
    down = {n: Exchange(method="GET", path="/", status=None, error="connection refused")
            for n in ("flask-run", "gunicorn")}
    diffs = compare(down, {n: "127.0.0.1:1" for n in down}, ignore_headers=())
    assert [d.field for d in diffs] == ["no server answered"]


def test_table_header_lines_up_with_the_cells() -> None:
    from pytest_flaskserve.parity.compare import ParityResult

    ex = {n: Exchange(method="GET", path="/", status=200, reason="OK", body=body)
          for n, body in (("flask-run", b"2"), ("gunicorn", b"1"), ("uwsgi", b"1"))}
    diffs = compare(ex, {n: "h:1" for n in ex}, ignore_headers=())
    lines = ParityResult("GET", "/", ex, diffs, ("status", "body"), ()).table().splitlines()
    head, status, body = lines[1], lines[2], lines[3]
    assert head.index("flask-run") == status.index("200 OK") == body.index("2")
    assert [i for i, c in enumerate(head) if c == "|"] == \
        [i for i, c in enumerate(status) if c == "|"]

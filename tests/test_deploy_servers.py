"""The servers of Flask's "Deploying to Production" added as opt-in servers: gevent's and
eventlet's own WSGI servers, uWSGI's gevent loop, Uvicorn (asgiref's WsgiToAsgi),
Hypercorn (its own WSGI support) and mod_wsgi (Apache httpd), end to end: the spec forms
each renders differently, a startup failure explained in plain words with its exit code,
a clean stop of the whole tree, and the skip when one is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from _processes import stop_leaves_nothing_behind

NEW = ["uwsgi-gevent", "gevent", "eventlet", "uvicorn", "hypercorn", "mod_wsgi"]

#: every spec form of tests/test_e2e_servers.py, with the body each serves
SPECS = [
    ("hello", "Hello, World!"),
    ("hello.py", "Hello, World!"),
    ("hello.py:app", "Hello, World!"),
    ("only_application", "served as application"),
    ("factory_pkg", "hello from default"),
    ("factory_pkg:create_app()", "hello from default"),
    ("factory_pkg:create_app('test')", "hello from test"),
    ("nested.api.server:app", "nested api"),
    ("nested/api/server.py:app", "nested api"),
    ("wsgiproject/wsgi.py", "served through wsgi.py"),
    ("my-site", "served from my-site.py"),
    ("my-site:app", "served from my-site.py"),
    ("my-site.py", "served from my-site.py"),
]


def _spec_tests() -> str:
    return "\n\n".join(
        f"@NEW\n@pytest.mark.flask_app({spec!r})\n"
        f"def test_spec_{i}(flask_server):\n"
        f"    assert get(flask_server.url).text == {body!r}\n"
        for i, (spec, body) in enumerate(SPECS))

INNER = """
import socket
import time

import psutil
import pytest
import requests

from pytest_flaskserve.errors import ServerStartupError

NEW = pytest.mark.flask_servers(*{new!r})


def get(url):
    return requests.get(url, timeout=10)


def last(handle):
    return " ".join(handle.argv[-4:])


@NEW
def test_module_attr(flask_server):
    assert get(flask_server.url).text == "Hello, World!"
    assert get(flask_server.url + "/missing").status_code == 404
    expected = {{
        "mod_wsgi": "--callable-object app hello",
        "uwsgi-gevent": "--module hello:app",
    }}
    if flask_server.server in expected:
        assert last(flask_server).endswith(expected[flask_server.server])
    else:  # run from a script (gevent, eventlet) or wrapped (uvicorn): the generated entry
        assert "FLASKSERVE_ENTRY" not in flask_server.command
        assert flask_server.notes and "Flask's" in flask_server.notes[0]


@NEW
@pytest.mark.flask_app("factory_pkg:create_app('test', TESTING=True)")
def test_factory_with_arguments(flask_server):
    assert get(flask_server.url + "/config").json() == {{"name": "test", "testing": True}}
    if flask_server.server == "mod_wsgi":
        assert last(flask_server).endswith("--callable-object app pytest_flaskserve._entry")
    elif flask_server.server == "uwsgi-gevent":
        assert flask_server.argv[-1] == "pytest_flaskserve._entry:app"


{spec_tests}

@pytest.mark.parametrize("server, code, meaning", [
    ("uwsgi-gevent", "exit code 22", "no app could be loaded"),
    ("gevent", "exit code 1", "the app failed to import"),
    ("eventlet", "exit code 1", "the app failed to import"),
    ("uvicorn", "exit code 1", "Uvicorn could not load the app"),
    ("hypercorn", "exit code 0", "Hypercorn's worker exited while loading the app"),
])
def test_startup_failure_is_diagnosed(flask_server_factory, server, code, meaning):
    with pytest.raises(ServerStartupError) as info:
        flask_server_factory(server, "import_error:app", resolve=False)
    text = str(info.value)
    assert f"{{server}} failed to start 'import_error:app': exited with {{code}} ({{meaning}}" in text
    assert "'flask_extension_that_is_not_installed', which is not installed in" in text


def test_mod_wsgi_import_error_is_diagnosed(flask_server_factory):
    # Apache keeps running when the app does not import: each request answers 500 and
    # the traceback goes to the error log, so the failure is the ready check's 500
    with pytest.raises(ServerStartupError) as info:
        flask_server_factory("mod_wsgi", "import_error:app", resolve=False)
    text = str(info.value)
    assert ("mod_wsgi failed to start 'import_error:app': mod_wsgi could not load the app "
            "(Apache keeps running and answers 500") in text
    assert "'flask_extension_that_is_not_installed', which is not installed in" in text

""" + stop_leaves_nothing_behind("""[
    ("uwsgi-gevent", 2, 0), ("gevent", 1, -15), ("eventlet", 1, -15), ("uvicorn", 1, -15),
    ("hypercorn", 3, 0), ("mod_wsgi", 3, 0),
]""")


def test_deploy_servers_spec_forms_failures_and_stop(pytester: pytest.Pytester,
                                                     examples: Path) -> None:
    pytester.makepyfile(test_inner=INNER.format(new=NEW, spec_tests=_spec_tests()))
    result = pytester.runpytest_subprocess("test_inner.py", "--flask-app=hello:app", "-v",
                                           "-n", "2")
    result.assert_outcomes(passed=6 + 6 + 6 * len(SPECS) + 5 + 1 + 6)
    result.stdout.fnmatch_lines(["*PASSED*test_module_attr?mod_wsgi?*"])


def _ids(result: pytest.RunResult) -> list[str]:
    return sorted(line.split("test_x[")[1].split("]")[0]
                  for line in result.outlines if "test_x[" in line)


def test_new_servers_are_opt_in(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("test_inner.py", "--flask-app=hello:app",
                                           "--collect-only", "-q")
    assert not set(NEW) & set(_ids(result))
    result = pytester.runpytest_subprocess("test_inner.py", "--flask-app=hello:app",
                                           "--collect-only", "-q",
                                           f"--flask-servers={','.join(NEW)}")
    assert _ids(result) == sorted(NEW)


def test_not_installed_is_skipped_with_the_install_command(pytester: pytest.Pytester,
                                                          examples: Path) -> None:
    pytester.makeconftest("""
        import sys

        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("eventlet", "uvicorn", "hypercorn", "mod_wsgi",
                                          "asgiref"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Hide())
    """)
    pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.flask_servers("eventlet", "uvicorn", "hypercorn", "mod_wsgi")
        def test_x(flask_url):
            pass
    """)
    result = pytester.runpytest_subprocess("test_inner.py", "--flask-app=hello:app", "-rs")
    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines_random([
        "*eventlet is not installed in this environment (pip install 'pytest-flaskserve?eventlet?')*",
        "*uvicorn is not installed in this environment (pip install 'pytest-flaskserve?uvicorn?')*",
        "*hypercorn is not installed in this environment "
        "(pip install 'pytest-flaskserve?hypercorn?')*",
        "*mod_wsgi is not installed in this environment (apt-get install apache2-dev "
        "apache2-bin, then pip install --no-cache-dir 'pytest-flaskserve?mod_wsgi?')*",
    ])


TLS_INNER = """
import pytest
import requests

@pytest.mark.flask_servers(*{servers!r})
@pytest.mark.flask_options(tls=True)
def test_hello_over_tls(flask_server, flask_url):
    assert flask_url.startswith("https://")
    assert requests.get(flask_url + "/", timeout=10, verify=flask_server.ca_path).text == (
        "Hello, World!")
    with pytest.raises(requests.exceptions.SSLError):  # only our CA vouches for it
        requests.get(flask_url + "/", timeout=10)
"""


def test_new_servers_over_tls(pytester: pytest.Pytester, examples: Path) -> None:
    tls = [name for name in NEW if name != "mod_wsgi"]
    pytester.makepyfile(test_inner=TLS_INNER.format(servers=[*tls, "mod_wsgi"]))
    result = pytester.runpytest_subprocess("test_inner.py", "--flask-app=hello:app", "-rs")
    result.assert_outcomes(passed=len(tls), skipped=1)
    result.stdout.fnmatch_lines(["*mod_wsgi-express serves HTTPS only on a second port*"])


PROXIED_INNER = """
import pytest
import requests

@pytest.mark.flask_servers(*{servers!r})
def test_behind_nginx(flask_server):
    answer = requests.get(flask_server.url + "/", timeout=10)
    assert answer.text == "Hello, World!"
    assert answer.headers["Server"].startswith("nginx")
    assert any("behind nginx" in note for note in flask_server.notes)
"""


def test_new_servers_behind_nginx(pytester: pytest.Pytester, examples: Path) -> None:
    proxied = [f"{name}+nginx" for name in NEW]
    pytester.makepyfile(test_inner=PROXIED_INNER.format(servers=proxied))
    result = pytester.runpytest_subprocess("test_inner.py", "--flask-app=hello:app", "-v")
    result.assert_outcomes(passed=len(proxied))


KILLED_INNER = """
import json, os, time
import psutil
import pytest

@pytest.mark.flask_servers(*{new!r})
def test_hold(flask_server):
    tree = [p.pid for p in psutil.Process(flask_server.pid).children(recursive=True)]
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps({{"server": flask_server.server, "port": flask_server.port,
                            "pids": [flask_server.pid, *tree]}}) + "\\n")

def test_zz_block():
    open(os.environ["RECORD_FILE"] + ".ready", "w").close()
    time.sleep(120)
"""


def test_sigkill_of_pytest_leaves_no_server_behind(pytester: pytest.Pytester,
                                                   examples: Path) -> None:
    """pytest dies without a teardown; the watchdog kills every new server's whole tree
    (Apache's children and mod_wsgi's daemon, Hypercorn's worker, uWSGI's worker)."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import psutil

    pytester.makepyfile(test_inner=KILLED_INNER.format(new=NEW))
    record = pytester.path / "record.jsonl"
    ready = Path(f"{record}.ready")
    with open(pytester.path / "inner.log", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_inner.py",
             "--flask-app=hello:app"],
            cwd=pytester.path, env={**os.environ, "RECORD_FILE": str(record)}, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, (pytester.path / "inner.log").read_text()
            assert time.monotonic() < deadline, "the servers did not start within 60 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = [json.loads(line) for line in record.read_text().splitlines()]
    assert sorted(r["server"] for r in records) == sorted(NEW)
    # each tree as it was (Apache's and Hypercorn's child counts vary with the machine):
    # every one of them must be gone below
    assert all(r["pids"] for r in records)

    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def listening(port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0

    deadline = time.monotonic() + 5
    while True:
        left = [f"{r['server']} pid {pid}" for r in records for pid in r["pids"] if alive(pid)]
        left += [f"{r['server']} port {r['port']}" for r in records if listening(r["port"])]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"left behind after SIGKILL of pytest: {left}"


def test_smoke_on_the_new_servers(pytester: pytest.Pytester, examples: Path) -> None:
    # only the smoke items: the examples' own test directories stay out
    result = pytester.runpytest_subprocess("--flask-app=hello.py", "--flask-smoke", "-v", "-rs",
                                           "--ignore=live_server_tests",
                                           f"--flask-servers=flask-run,{','.join(NEW)}")
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and "error" not in outcomes
    for name in NEW:
        result.stdout.fnmatch_lines([f"smoke::same-status?{name}? PASSED*",
                                     f"smoke::head?{name}? PASSED*",
                                     f"smoke::stop?{name}? PASSED*"])
    # single-process servers skip the workers check and say why
    result.stdout.fnmatch_lines(["*gevent serves every request from one process*"])


def test_mod_wsgi_with_a_long_server_root_leaves_no_socket_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server root too long for a Unix socket path (as in a nested pytest) puts Apache's
    daemon sockets in a short directory of their own, removed after the stop: Apache
    leaves its sockets behind."""
    import tempfile

    import requests

    from pytest_flaskserve import servers
    from pytest_flaskserve.appspec import parse_spec
    from pytest_flaskserve.appspec.resolve import resolve_app
    from pytest_flaskserve.lifecycle.supervisor import StartConfig, start_server
    from pytest_flaskserve.servers import ServerOptions

    # short, as /tmp is, whatever the depth of this test's own temp dir
    system_tmp = Path(tempfile.mkdtemp(prefix="fs-"))
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    (tmp_path / "hello.py").write_text(
        "from flask import Flask\napp = Flask(__name__)\n\n@app.get('/')\ndef index():\n"
        "    return 'Hello, World!'\n")
    deep = tmp_path / ("a-long-directory-name-" * 4) / "logs"
    app = resolve_app(parse_spec("hello:app", str(tmp_path)))
    handle = start_server(servers.get("mod_wsgi"), app, ServerOptions(), StartConfig(log_dir=deep))
    try:
        assert len(list(system_tmp.iterdir())) == 1, "one short socket directory"
        assert requests.get(handle.url + "/", timeout=10).text == "Hello, World!"
    finally:
        assert handle.stop() == 0
    left = list(system_tmp.iterdir())
    if not left:
        system_tmp.rmdir()
    assert left == []

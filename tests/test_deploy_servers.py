"""The servers of Flask's "Deploying to Production" added as opt-in servers: gevent's and
eventlet's own WSGI servers, uWSGI's gevent loop, Uvicorn (asgiref's WsgiToAsgi),
Hypercorn (its own WSGI support) and mod_wsgi (Apache httpd), end to end: the spec forms
each renders differently, a startup failure explained in plain words with its exit code,
a clean stop of the whole tree, and the skip when one is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

NEW = ["uwsgi-gevent", "gevent", "eventlet", "uvicorn", "hypercorn", "mod_wsgi"]

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
        "hypercorn": "wsgi:hello:app",
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
    if flask_server.server == "hypercorn":  # it evaluates the call itself
        assert flask_server.argv[-1] == "wsgi:factory_pkg:create_app('test', TESTING=True)"
    elif flask_server.server == "mod_wsgi":
        assert last(flask_server).endswith("--callable-object app pytest_flaskserve._entry")
    elif flask_server.server == "uwsgi-gevent":
        assert flask_server.argv[-1] == "pytest_flaskserve._entry:app"


@pytest.mark.flask_servers("hypercorn", "mod_wsgi")
@pytest.mark.flask_app("nested/api/server.py:app")
def test_file_path_in_a_package(flask_server):
    assert get(flask_server.url).text == "nested api"
    assert "nested.api.server" in last(flask_server)


@pytest.mark.flask_servers("hypercorn", "mod_wsgi", "gevent")
@pytest.mark.flask_app("my-site")
def test_file_name_that_is_not_an_identifier(flask_server):
    assert get(flask_server.url).text == "served from my-site.py"


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


@pytest.mark.parametrize("server, processes, code", [
    ("uwsgi-gevent", 2, 0), ("gevent", 1, -15), ("eventlet", 1, -15), ("uvicorn", 1, -15),
    ("hypercorn", 3, 0), ("mod_wsgi", 3, 0),
])
def test_stop_leaves_nothing_behind(flask_server_factory, server, processes, code):
    h = flask_server_factory(server, "hello:app")
    tree = [psutil.Process(h.pid), *psutil.Process(h.pid).children(recursive=True)]
    assert len(tree) == processes, [p.cmdline() for p in tree]
    assert h.stop() == code
    assert not h.stop_result.forced, "needed SIGKILL"
    deadline = time.monotonic() + 5
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree):
        assert time.monotonic() < deadline, [p.pid for p in tree if p.is_running()]
        time.sleep(0.02)
    with pytest.raises(OSError):
        socket.create_connection((h.host, h.port), timeout=1).close()
"""


def test_deploy_servers_spec_forms_failures_and_stop(pytester: pytest.Pytester,
                                                     examples: Path) -> None:
    pytester.makepyfile(test_inner=INNER.format(new=NEW))
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "-v")
    result.assert_outcomes(passed=6 + 6 + 2 + 3 + 5 + 1 + 6)
    result.stdout.fnmatch_lines(["*test_module_attr?mod_wsgi? PASSED*"])


def _ids(result: pytest.RunResult) -> list[str]:
    return sorted(line.split("test_x[")[1].split("]")[0]
                  for line in result.outlines if "test_x[" in line)


def test_new_servers_are_opt_in(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--collect-only", "-q")
    assert not set(NEW) & set(_ids(result))
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--collect-only", "-q",
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
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "-rs")
    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines_random([
        "*eventlet is not installed in this environment (pip install 'pytest-flaskserve?eventlet?')*",
        "*uvicorn is not installed in this environment (pip install 'pytest-flaskserve?uvicorn?')*",
        "*hypercorn is not installed in this environment "
        "(pip install 'pytest-flaskserve?hypercorn?')*",
        "*mod_wsgi is not installed in this environment (apt-get install apache2-dev "
        "apache2-bin, then pip install --no-cache-dir 'pytest-flaskserve?mod_wsgi?')*",
    ])

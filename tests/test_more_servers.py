"""Granian, Cheroot and the Gunicorn gthread/gevent variants, end to end: the spec forms
each server's syntax handles differently, startup failures with their exit codes, a clean
stop of the whole process tree, the default server set, and skips when not installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from _processes import stop_leaves_nothing_behind

DEFAULT = ["flask-run", "app-run", "gunicorn", "waitress", "uwsgi", "granian", "cheroot"]

INNER = """
import socket
import time

import psutil
import pytest
import requests

from pytest_flaskserve.errors import ServerStartupError

ALL_NEW = pytest.mark.flask_servers("granian", "cheroot", "gunicorn-gthread", "gunicorn-gevent")
# The gunicorn variants share Gunicorn's own syntax (tested with the core servers); the
# spec forms that render differently per server are checked on Granian and Cheroot.
OWN_SYNTAX = pytest.mark.flask_servers("granian", "cheroot")


def get(url):
    return requests.get(url, timeout=10)


@ALL_NEW
def test_module_attr(flask_server):
    assert get(flask_server.url).text == "Hello, World!"
    assert flask_server.argv[-1] == "hello:app"


@OWN_SYNTAX
@pytest.mark.flask_app("only_application")
def test_bare_module_found_by_discovery(flask_server):
    assert get(flask_server.url).text == "served as application"
    assert flask_server.argv[-1] == "only_application:application"


@OWN_SYNTAX
@pytest.mark.flask_app("nested/api/server.py:app")
def test_file_path_in_a_package(flask_server):
    assert get(flask_server.url).text == "nested api"
    assert flask_server.argv[-1] == "nested.api.server:app"


@OWN_SYNTAX
@pytest.mark.flask_app("factory_pkg:create_app()")
def test_factory_without_arguments(flask_server):
    assert get(flask_server.url).text == "hello from default"
    if flask_server.server == "granian":  # Granian calls it itself
        assert flask_server.argv[-2:] == ["--factory", "factory_pkg:create_app"]
        assert not flask_server.notes
    else:  # Cheroot cannot call a factory
        assert flask_server.argv[-1] == "pytest_flaskserve._entry:app"
        assert "cannot call a factory" in flask_server.notes[0]


@ALL_NEW
@pytest.mark.flask_app("factory_pkg:create_app('test', TESTING=True)")
def test_factory_with_arguments(flask_server):
    assert get(flask_server.url + "/config").json() == {"name": "test", "testing": True}
    if flask_server.server.startswith("gunicorn"):
        assert flask_server.argv[-1] == "factory_pkg:create_app('test', TESTING=True)"
    else:
        assert flask_server.argv[-1] == "pytest_flaskserve._entry:app"
        assert "generated entry module for factory_pkg:create_app" in flask_server.notes[0]


@pytest.mark.parametrize("server, code, meaning", [
    ("granian", "exit code 1", "Granian stopped because its worker exited"),
    ("cheroot", "exit code 1", "Cheroot could not import the app"),
    ("gunicorn-gthread", "exit code 3", "a worker failed to boot"),
    ("gunicorn-gevent", "exit code 3", "a worker failed to boot"),
])
def test_startup_failure_is_diagnosed(flask_server_factory, server, code, meaning):
    with pytest.raises(ServerStartupError) as info:
        flask_server_factory(server, "import_error:app", resolve=False)
    text = str(info.value)
    assert f"{server} failed to start 'import_error:app': exited with {code} ({meaning}" in text
    assert "'flask_extension_that_is_not_installed', which is not installed in" in text

""" + stop_leaves_nothing_behind("""[
    ("granian", 2, 0), ("cheroot", 1, -15), ("gunicorn-gthread", 2, 0), ("gunicorn-gevent", 2, 0),
]""")


def test_new_servers_spec_forms_failures_and_stop(pytester: pytest.Pytester,
                                                  examples: Path) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "-v")
    result.assert_outcomes(passed=4 + 2 + 2 + 2 + 4 + 4 + 4)
    result.stdout.fnmatch_lines(["*test_module_attr?gunicorn-gevent? PASSED*",
                                 "*test_factory_with_arguments?granian? PASSED*"])


def _ids(result: pytest.RunResult) -> list[str]:
    """Server ids of the collected test_x items."""
    return sorted(line.split("test_x[")[1].split("]")[0]
                  for line in result.outlines if "test_x[" in line)


def test_default_set_leaves_variants_out(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--collect-only")
    result.stdout.fnmatch_lines([f"flaskserve: servers {', '.join(DEFAULT)} (from default)*"])
    assert _ids(result) == sorted(DEFAULT)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--collect-only", "-q",
                                           "--flask-servers=gunicorn-gevent,gunicorn-gthread")
    assert _ids(result) == ["gunicorn-gevent", "gunicorn-gthread"]


def test_not_installed_is_skipped_with_the_extra_to_install(pytester: pytest.Pytester,
                                                            examples: Path) -> None:
    # As in an environment without them: granian and gevent cannot be imported.
    pytester.makeconftest("""
        import sys

        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("granian", "gevent"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Hide())
    """)
    pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.flask_servers("granian", "gunicorn-gevent", "cheroot")
        def test_x(flask_url):
            pass
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines([
        "*granian is not installed in this environment (pip install 'pytest-flaskserve?granian?')*",
        "*gunicorn-gevent needs 'gevent', which is not installed in this environment "
        "(pip install 'pytest-flaskserve?gevent?')*",
    ])

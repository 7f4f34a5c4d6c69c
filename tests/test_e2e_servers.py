"""End to end, as a user runs it: an inner pytest (pytester.runpytest_subprocess) with
--flask-app, every spec form, every server, real processes and real HTTP."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

INNER_BODY_TEST = """
import requests

EXPECTED = {expected!r}

def test_body(flask_server, flask_url):
    body = requests.get(flask_url + "/", timeout=10).text
    assert body == EXPECTED.get(flask_server.server, EXPECTED["*"])
"""

HELLO = {"*": "Hello, World!"}
FACTORY_DEFAULT = {"*": "hello from default", "app-run": "hello from dev"}
FACTORY_TEST = {"*": "hello from test", "app-run": "hello from dev"}
ALL = ["flask-run", "app-run", "gunicorn", "waitress", "uwsgi", "granian", "cheroot"]


def _fails_to_start(pytester: pytest.Pytester, *args: str,
                    lines: list[str]) -> pytest.RunResult:
    """An inner run of one test that needs a server, with ``args``: the start fails, and
    the report matches ``lines``."""
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(lines)
    return result


@pytest.mark.parametrize(
    ("spec", "expected", "skipped"),
    [
        ("hello:app", HELLO, []),
        ("hello", HELLO, []),
        ("hello.py", HELLO, []),
        ("hello.py:app", HELLO, []),
        ("only_application", {"*": "served as application"}, []),
        ("factory_pkg", FACTORY_DEFAULT, []),
        ("factory_pkg:create_app()", FACTORY_DEFAULT, []),
        ("factory_pkg:create_app('test')", FACTORY_TEST, []),
        ("factory_pkg:create_app('test', TESTING=True)", FACTORY_TEST, []),
        ("nested.api.server:app", {"*": "nested api"}, []),
        ("nested/api/server.py:app", {"*": "nested api"}, []),
        ("wsgiproject/wsgi.py", {"*": "served through wsgi.py"}, ["app-run"]),
        # a file name that is not an identifier: Flask imports module 'my-site'
        ("my-site", {"*": "served from my-site.py"}, []),
        ("my-site:app", {"*": "served from my-site.py"}, []),
        ("my-site.py", {"*": "served from my-site.py"}, []),
    ],
)
def test_every_spec_form_on_every_server(pytester: pytest.Pytester, examples: Path, spec: str,
                                         expected: dict[str, str], skipped: list[str]) -> None:
    pytester.makepyfile(test_inner=INNER_BODY_TEST.format(expected=expected))
    result = pytester.runpytest_subprocess(f"--flask-app={spec}", "-v", "-rs")
    result.assert_outcomes(passed=len(ALL) - len(skipped), skipped=len(skipped))
    for server in ALL:
        state = "SKIPPED" if server in skipped else "PASSED"
        result.stdout.fnmatch_lines([f"*test_body?{server}? {state}*"])


def test_spec_from_flask_app_env(pytester: pytest.Pytester, examples: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_APP", "only_application")
    pytester.makepyfile(test_inner=INNER_BODY_TEST.format(expected={"*": "served as application"}))
    result = pytester.runpytest_subprocess("-v", "--flask-servers=flask-run,gunicorn,waitress")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["flaskserve: app only_application (from FLASK_APP)"])


def test_spec_from_ini_beats_env(pytester: pytest.Pytester, examples: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_APP", "only_application")
    pytester.makeini("[pytest]\nflask_app = factory_pkg:create_app('test')\n")
    pytester.makepyfile(test_inner=INNER_BODY_TEST.format(expected=FACTORY_TEST))
    result = pytester.runpytest_subprocess("--flask-servers=gunicorn,uwsgi")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["flaskserve: app factory_pkg:create_app('test') (from ini flask_app)"])


@pytest.mark.parametrize(("filename", "body"), [("wsgi.py", "from wsgi"), ("app.py", "from app")])
def test_flask_default_files_when_nothing_is_set(pytester: pytest.Pytester, filename: str,
                                                 body: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLASK_APP", raising=False)
    pytester.path.joinpath(filename).write_text(textwrap.dedent(f"""
        from flask import Flask
        app = Flask(__name__)
        @app.get("/")
        def index():
            return {body!r}
    """))
    pytester.makepyfile(test_inner=INNER_BODY_TEST.format(expected={"*": body}))
    result = pytester.runpytest_subprocess("--flask-servers=flask-run,waitress")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"flaskserve: app {filename} (from {filename} in the rootdir*"])


def test_no_app_anywhere_fails_the_test_with_the_fix(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLASK_APP", raising=False)
    result = _fails_to_start(pytester, "--flask-servers=flask-run",
                             lines=["*no Flask app to serve: pass --flask-app=module:app*"])
    assert "Traceback" not in result.stdout.str()


def test_app_run_keeps_script_arguments_but_moves_the_port(pytester: pytest.Pytester,
                                                          examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import requests
        def test_debug_kept(flask_server):
            assert flask_server.port != 5000
            assert requests.get(flask_server.url, timeout=10).text == "debug=True"
            assert "asked for 0.0.0.0:5000" in flask_server.read_log()
            # debug=True means the reloader: a parent and a serving child
            import psutil
            assert len(psutil.Process(flask_server.pid).children()) == 1
    """)
    result = pytester.runpytest_subprocess("--flask-app=hardcoded_port.py", "--flask-servers=app-run")
    result.assert_outcomes(passed=1)


def test_package_main_runs_as_python_dash_m(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        def test_cmd(flask_server):
            assert flask_server.command.endswith("-m factory_pkg")
    """)
    result = pytester.runpytest_subprocess("--flask-app=factory_pkg", "--flask-servers=app-run")
    result.assert_outcomes(passed=1)


def test_missing_main_guard_skips_by_default_and_fails_when_asked_for(
        pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-app=no_guard:app", "-rs")
    result.assert_outcomes(passed=len(ALL) - 1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*app-run: no_guard.py has no `if __name__ == '__main__':` block*"])

    result = pytester.runpytest_subprocess("--flask-app=no_guard:app", "--flask-servers=app-run")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*app-run failed to start 'no_guard:app': exited with exit code 0*",
        "*command: * no_guard.py*",
        "*cause: the script exited without serving: it needs an `if __name__ == '__main__':` block*",
    ])


def test_package_without_main_fails_with_that_cause_when_asked_for(
        pytester: pytest.Pytester, examples: Path) -> None:
    """A package with no __main__.py: app-run is skipped unless named, then says why."""
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    pytester.path.joinpath("pkgnomain").mkdir()
    pytester.path.joinpath("pkgnomain", "__init__.py").write_text(
        "from flask import Flask\napp = Flask(__name__)\n")
    result = pytester.runpytest_subprocess("--flask-app=pkgnomain", "--flask-servers=app-run")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*app-run failed to start 'pkgnomain'*",
        "*cause: package 'pkgnomain' has no __main__.py, so `python -m pkgnomain` cannot run it*",
    ])


def test_a_worker_class_gunicorn_cannot_find_is_not_blamed_on_the_app(
        pytester: pytest.Pytester, examples: Path) -> None:
    """gunicorn.conf.py names a worker whose package is not installed: Gunicorn says so
    before any traceback, and that is the cause given (not the traceback's last line)."""
    pytester.path.joinpath("gunicorn.conf.py").write_text(
        'worker_class = "egg:meinheld#gunicorn_worker"\n')
    result = _fails_to_start(pytester, "--flask-app=hello:app", "--flask-servers=gunicorn", lines=[
        "*cause: Gunicorn's worker class 'egg:meinheld#gunicorn_worker' was not found*"])
    assert "the app raised" not in result.stdout.str()


def test_failures_that_are_not_the_app_s_say_whose_they_are(
        pytester: pytest.Pytester, examples: Path) -> None:
    """gunicorn.conf.py raises while Gunicorn reads it; a command's program is not
    installed (the shell's exit code 127): each cause names that, not the app."""
    pytester.path.joinpath("gunicorn.conf.py").write_text(
        'import os\nbind = os.environ["BIND_FROM_THE_HOST"]\n')
    pytester.makepyfile(test_inner="""
        import pytest
        from pytest_flaskserve import ServerStartupError

        def test_config(flask_url):
            pass

        def test_missing_program(flask_server_factory):
            with pytest.raises(ServerStartupError) as info:
                flask_server_factory.command("no-such-server-program --port {port}")
            print("CAUSE", str(info.value))
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-servers=gunicorn",
                                           "-s")
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(
        ["*cause: Gunicorn could not read its config file *gunicorn.conf.py: the traceback*"])
    result.stdout.fnmatch_lines(["*cause: 'no-such-server-program' is not found on PATH*"])
    # --workers=$WEB_CONCURRENCY, the variable unset in the tests' environment
    pytester.path.joinpath("gunicorn.conf.py").unlink()
    pytester.path.joinpath("Procfile").write_text(
        "web: gunicorn --bind=0.0.0.0:$PORT --workers=$UNSET_IN_TESTS hello:app\n")
    result = pytester.runpytest_subprocess("--flask-deploy=Procfile", "-k", "config")
    result.stdout.fnmatch_lines(["*cause: Gunicorn got an empty value for --workers: the "
                                 "command takes it from an environment variable*"])
    assert "the app raised" not in result.stdout.str()


def test_gunicorn_workers_that_exit_as_they_boot_fail_the_start_at_once(
        pytester: pytest.Pytester) -> None:
    """The app exits its own import in the worker only (SERVER_SOFTWARE is Gunicorn's):
    the arbiter would boot workers for ever, so the start fails on the third exit with the
    app's last words, long before the startup timeout."""
    pytester.makepyfile(strict_app="""
        import os
        from flask import Flask
        app = Flask(__name__)
        if os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn"):
            raise SystemExit("DATABASE_URL must be set in production")
    """)
    _fails_to_start(pytester, "--flask-app=strict_app:app", "--flask-servers=gunicorn",
                    "--flask-startup-timeout=60", lines=[
        "*gunicorn failed to start*every worker exits as it boots*",
        "*cause: the app ends its own import in the Gunicorn worker*"
        "'DATABASE_URL must be set in production'*"])


def test_gunicorn_given_a_certificate_by_its_config_says_so_at_once(
        pytester: pytest.Pytester, examples: Path) -> None:
    """./gunicorn.conf.py sets certfile: Gunicorn serves TLS where the plain run asked for
    HTTP, and the start fails with that cause, not at the end of the timeout."""
    # made in a child: pytester drops the modules a test imports, and cryptography's
    # compiled core cannot be imported twice in one process (later tests would fail)
    tls_dir = pytester.path / "tls"
    subprocess.run([sys.executable, "-c", "import pathlib, sys; from pytest_flaskserve.tls "
                    "import make_tls_files; make_tls_files(pathlib.Path(sys.argv[1]))",
                    str(tls_dir)], check=True, timeout=60)
    pytester.path.joinpath("gunicorn.conf.py").write_text(
        f"certfile = {str(tls_dir / 'server.pem')!r}\nkeyfile = {str(tls_dir / 'server.key')!r}\n")
    _fails_to_start(pytester, "--flask-app=hello:app", "--flask-servers=gunicorn",
                    "--flask-startup-timeout=60", lines=[
        "*gunicorn failed to start*it serves TLS on its port, where plain HTTP was asked for*",
        "*cause: Gunicorn was given a certificate by its config*"])


def test_an_asgi_worker_class_for_a_flask_app_fails_its_start(
        pytester: pytest.Pytester, examples: Path) -> None:
    """UvicornWorker calls the app as ASGI and Gunicorn answers 500: the start fails
    saying why, instead of handing the tests a server that can only fail."""
    _fails_to_start(pytester, "--flask-app=hello:app", "--flask-servers=gunicorn",
                    "--flask-worker-class=uvicorn.workers.UvicornWorker",
                    lines=["*Gunicorn's worker class speaks ASGI*a Flask app is WSGI*"])


def test_daemonizing_server_is_killed_and_explained(pytester: pytest.Pytester,
                                                    examples: Path) -> None:
    """Gunicorn reads ./gunicorn.conf.py; with daemon = True its master leaves our session
    and process group. It is found by its marker, killed, and the cause named."""
    import psutil

    from pytest_flaskserve.lifecycle.process import OWNER_ENV

    pytester.path.joinpath("gunicorn.conf.py").write_text("daemon = True\n")
    _fails_to_start(pytester, "--flask-app=hello:app", "--flask-servers=gunicorn", "-v", lines=[
        "*Gunicorn also reads */gunicorn.conf.py (its default config file)*",
        "*gunicorn failed to start 'hello:app': exited with exit code 0*",
        "*cause: the server detached itself and kept running after its launcher exited*",
    ])
    left = []
    for p in psutil.process_iter():
        try:
            if OWNER_ENV in p.environ() and p.cwd() == str(pytester.path):
                left.append(p.pid)
        except psutil.Error:
            continue
    assert left == []


def test_app_run_at_import_under_production_servers(pytester: pytest.Pytester,
                                                    examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import requests
        def test_x(flask_url):
            assert requests.get(flask_url, timeout=10).text == "ran at import"
    """)
    result = pytester.runpytest_subprocess("--flask-app=run_at_import:app",
                                           "--flask-servers=flask-run,gunicorn,waitress",
                                           "--flask-startup-timeout=20")
    result.assert_outcomes(passed=1, errors=2)
    out = result.stdout.str()
    for server in ("gunicorn", "waitress"):  # CI=true makes pytest repeat it in the summary
        assert ("cause: the app calls app.run() at import time, so the development server "
                f"starts inside {server}") in out, out
    assert "During handling of the above exception" not in out


def test_startup_failure_reports_code_meaning_and_log(pytester: pytest.Pytester,
                                                      examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import pytest
        from pytest_flaskserve.errors import ServerStartupError

        @pytest.mark.parametrize("server,code", [("gunicorn", "exit code 3"), ("uwsgi", "exit code 22")])
        def test_broken(flask_server_factory, server, code):
            with pytest.raises(ServerStartupError) as info:
                flask_server_factory(server, "import_error:app", resolve=False)
            text = str(info.value)
            assert code in text, text
            assert "flask_extension_that_is_not_installed" in text
            assert "is not installed in" in text
            assert info.value.log_tail
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_import_error_app_is_a_usage_error(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-app=import_error:app")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-flaskserve: app spec 'import_error:app'*"
                                 "flask_extension_that_is_not_installed*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_script_serving_on_its_own_port_fails_fast(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_flaskserve.lifecycle.ports import free_port

    monkeypatch.setenv("OWN_PORT", str(free_port()))
    pytester.makepyfile(own_server="""
        import os
        from flask import Flask
        app = Flask(__name__)
        if __name__ == "__main__":
            import waitress
            waitress.serve(app, host="127.0.0.1", port=int(os.environ["OWN_PORT"]))
    """)
    result = _fails_to_start(pytester, "--flask-app=own_server:app", "--flask-servers=app-run",
                             "--flask-startup-timeout=60",
                             lines=["*app-run failed to start*it listens on port *, not the "
                                    "port * it was given after *",
                                    "*cause: the script serves on an address of its own*"])
    assert "after 6" not in result.stdout.str()  # far from the 60 s deadline


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_loopback_on_every_server(pytester: pytest.Pytester, examples: Path) -> None:
    """--flask-host=::1: each server gets the address in its own syntax ([::1]:P where
    host:port is one argument) and really listens there."""
    pytester.makepyfile(test_inner="""
        import socket

        def test_v6(flask_server):
            assert flask_server.url.startswith("http://[::1]:")
            with socket.create_connection(("::1", flask_server.port), timeout=5):
                pass
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-host=::1", "-v")
    result.assert_outcomes(passed=len(ALL))

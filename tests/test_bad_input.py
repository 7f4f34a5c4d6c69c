"""Bad input, as a user types it: each answers with one line naming the input and the fix,
exit code 4, no traceback from the plugin, and nothing left running."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import owned_processes

TWO_APPS = "from flask import Flask\nfirst = Flask('a')\nsecond = Flask('b')\n"
HANGS = "import time\nfrom flask import Flask\napp = Flask(__name__)\ntime.sleep(60)\n"

CASES = [
    # (id, command-line args, ini text, env, extra files, fragment of the one-line error)
    ("empty-attr", ["--flask-app=hello:"], "", {}, {}, "nothing after ':'"),
    ("empty-module", ["--flask-app=:app"], "", {}, {}, "names no module"),
    ("unclosed-call", ["--flask-app=hello:app("], "", {}, {}, "not an attribute name or a call"),
    ("non-literal-arg", ["--flask-app=hello:create_app(x)"], "", {}, {}, "must be Python literals"),
    ("digit-name", ["--flask-app=hello:1app"], "", {}, {}, "not an attribute name or a call"),
    ("missing-file", ["--flask-app=nope/app.py"], "", {}, {}, "does not exist"),
    ("missing-module", ["--flask-app=nosuchmod:app"], "", {}, {}, "no module 'nosuchmod'"),
    ("dir-without-app", ["--flask-app=emptydir"], "", {}, {"emptydir/readme.txt": "x"},
     "not a Python package"),
    ("two-apps", ["--flask-app=twoapps"], "", {}, {"twoapps.py": TWO_APPS}, "several Flask apps"),
    ("missing-attr", ["--flask-app=hello:nope"], "", {}, {}, "has no attribute 'nope'"),
    ("not-flask", ["--flask-app=hello:index"], "", {}, {}, "hello:index() returned a str, not a Flask application"),
    ("import-error", ["--flask-app=import_error"], "", {}, {}, "flask_extension_that_is_not_installed"),
    ("import-hangs", ["--flask-app=hangs:app", "--flask-startup-timeout=2"], "", {},
     {"hangs.py": HANGS}, "did not finish within 2 s"),
    ("unknown-server", ["--flask-app=hello:app", "--flask-servers=nginx"], "", {}, {},
     "unknown server 'nginx'; choose from: flask-run"),
    ("empty-servers", ["--flask-app=hello:app", "--flask-servers=,"], "", {}, {}, "names no server"),
    ("negative-timeout", ["--flask-app=hello:app", "--flask-startup-timeout=-1"], "", {}, {},
     "must be a positive number"),
    ("text-timeout", ["--flask-app=hello:app", "--flask-stop-timeout=soon"], "", {}, {},
     "is not a number of seconds"),
    ("nan-timeout", ["--flask-app=hello:app", "--flask-startup-timeout=nan"], "", {}, {},
     "must be a positive number"),
    ("zero-workers", ["--flask-app=hello:app", "--flask-workers=0"], "", {}, {}, "must be 1 or more"),
    ("text-threads", ["--flask-app=hello:app", "--flask-threads=many"], "", {}, {},
     "is not a whole number"),
    ("bad-scope", ["--flask-app=hello:app", "--flask-scope=forever"], "", {}, {}, "is not a scope"),
    ("bad-ready-path", ["--flask-app=hello:app", "--flask-ready-path=health"], "", {}, {},
     "must be a URL path starting with '/'"),
    ("server-args-no-equals", ["--flask-app=hello:app", "--flask-server-args=gunicorn"], "", {}, {},
     "must look like SERVER=ARGS"),
    ("server-args-unknown", ["--flask-app=hello:app", "--flask-server-args=nginx=-x"], "", {}, {},
     "unknown server 'nginx'"),
    ("warm-and-cold", ["--flask-app=hello:app", "--flask-warm"], "", {"FLASKSERVE_COLD": "1"},
     {}, "--flask-warm and FLASKSERVE_COLD contradict each other: keep one"),
    ("env-timeout", ["--flask-app=hello:app"], "", {"FLASKSERVE_STARTUP_TIMEOUT": "abc"}, {},
     "FLASKSERVE_STARTUP_TIMEOUT='abc' is not a number"),
    ("ini-workers", ["--flask-app=hello:app"], "flask_workers = two", {}, {},
     "flask_workers='two' is not a whole number"),
    ("ini-spec", [], "flask_app = hello:app(", {}, {}, "(from ini flask_app)"),
    ("env-spec", [], "", {"FLASK_APP": "hello:"}, {}, "nothing after ':'"),
    ("marker-unknown-server", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_servers('tomcat')\ndef test_x(flask_url):\n    pass\n"},
     "unknown server 'tomcat'"),
    ("marker-bad-option", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_options(workers='4')\ndef test_x(flask_url):\n    pass\n"},
     "flask_options(workers='4'): use a whole number"),
    ("unhashable-arg", ["--flask-app=factory_pkg:create_app({[]: 1})"], "", {}, {},
     "dicts with hashable keys"),
    ("infinite-arg", ["--flask-app=factory_pkg:create_app(1e999)"], "", {}, {},
     "do not survive being written out as literals"),
    ("callable-instance", ["--flask-app=inst:fac()"], "", {},
     {"inst.py": "from flask import Flask\nclass F:\n    def __call__(self):\n"
                 "        return Flask('x')\nfac = F()\n"},
     "inst:fac is a F, not a Flask application"),
    ("bad-host", ["--flask-app=hello:app", "--flask-host=not a host"], "", {}, {},
     "is not an address of this machine"),
    ("ready-path-space", ["--flask-app=hello:app", "--flask-ready-path=/a b"], "", {}, {},
     "contains a space or a control character"),
    ("huge-workers", ["--flask-app=hello:app", "--flask-workers=99999"], "", {}, {},
     "use at most 1024"),
    ("report-is-a-dir", ["--flask-app=hello:app", "--flask-report=nested"], "", {}, {},
     "is a directory; give a file path"),
    ("report-under-a-file", ["--flask-app=hello:app", "--flask-report=hello.py/sub/x.json"], "",
     {}, {}, "is not a writable directory"),
    ("env-report-under-a-file", ["--flask-app=hello:app"], "",
     {"FLASKSERVE_REPORT": "hello.py/r.json"}, {}, "is not a writable directory"),
    ("host-not-here", ["--flask-app=hello:app", "--flask-host=8.8.8.8"], "", {}, {},
     "'8.8.8.8' is not an address of this machine"),
    ("worker-class", ["--flask-app=hello:app", "--flask-worker-class=nosuch"], "", {}, {},
     "Gunicorn has no worker class 'nosuch'"),
    ("marker-worker-class", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_options(worker_class='nosuch')\n"
                   "def test_x(flask_url):\n    pass\n"},
     "worker_class='nosuch'): Gunicorn has no worker class"),
    ("ini-bool", ["--flask-app=hello:app"], "flask_debug = maybe", {}, {},
     "ini flask_debug='maybe' is not a boolean"),
    ("marker-env-not-str", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_options(env={'A': 1})\n"
                   "def test_x(flask_url):\n    pass\n"},
     "the value of A must be a string"),
    ("marker-args-not-str", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_options(extra_args=[1, 2])\n"
                   "def test_x(flask_url):\n    pass\n"},
     "is not a list of strings"),
    ("marker-missing-attr", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_app('hello:nope')\n"
                   "def test_x(flask_url):\n    pass\n"},
     "(from @pytest.mark.flask_app): module 'hello' has no attribute 'nope'"),
    ("marker-empty-servers", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_servers('')\n"
                   "def test_x(flask_url):\n    pass\n"},
     "names no server"),
    ("marker-unknown-option", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_options(wokers=4)\ndef test_x(flask_url):\n    pass\n"},
     "unexpected keyword argument 'wokers'"),
    ("marker-bad-spec", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_app('hello:app(')\ndef test_x(flask_url):\n    pass\n"},
     "not an attribute name or a call"),
    ("conflicting-markers", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_scope('module')\n"
                   "@pytest.mark.flask_scope('function')\ndef test_x(flask_url):\n    pass\n"},
     "conflicting @pytest.mark.flask_scope markers"),
    ("marker-no-servers", ["--flask-app=hello:app"], "", {},
     {"test_m.py": "import pytest\n@pytest.mark.flask_servers()\ndef test_x(flask_url):\n    pass\n"},
     "names no server"),
]


@pytest.mark.parametrize(("args", "ini", "env", "files", "fragment"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_bad_input_is_a_one_line_usage_error(pytester: pytest.Pytester, examples: Path,
                                            monkeypatch: pytest.MonkeyPatch, args: list[str],
                                            ini: str, env: dict[str, str],
                                            files: dict[str, str], fragment: str) -> None:
    monkeypatch.delenv("FLASK_APP", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not any(n.startswith("test_") for n in files):
        pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    before = {p.pid for p in owned_processes()}
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    errors = [ln for ln in result.stderr.lines if ln.startswith("ERROR: ")]
    assert len(errors) == 1, result.stderr.str()
    assert errors[0].startswith("ERROR: pytest-flaskserve: ")
    assert fragment in errors[0], errors[0]
    everything = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in everything and "INTERNALERROR" not in everything
    assert not [p for p in owned_processes() if p.pid not in before]


def test_help_works_even_with_a_broken_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nflask_app = hello:(\nflask_workers = two\n")
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*--flask-app=SPEC*", "*--flask-servers=NAMES*"])


def test_server_that_cannot_start_is_a_startup_failure_not_a_crash(
        pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-servers=gunicorn",
                                           "--flask-server-args=gunicorn=--no-such-flag")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*gunicorn failed to start 'hello:app': exited with exit code 2*",
                                 "*unrecognized arguments: --no-such-flag*"])
    assert "Traceback" not in result.stdout.str()


def test_a_bad_command_for_the_factory_shows_the_test_s_line_and_our_message(
        pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import sys

        def test_not_a_command(flask_server_factory):
            flask_server_factory.command(12345)

        def test_fixed_port(flask_server_factory):
            flask_server_factory.command([sys.executable, "-m", "http.server", "8000"])
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "12345 is not a command; give a string or a list of strings" in out, out
    assert "'python' is not a server the plugin knows" in out, out
    assert "pytest_flaskserve/" not in out and "TypeError" not in out, out

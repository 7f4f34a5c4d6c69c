"""Resolution runs Flask's discovery rules in a child interpreter: every spec form, and
every way an app can fail to load, answered as a one-line usage error."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_flaskserve.appspec import parse_spec
from pytest_flaskserve.appspec.resolve import resolve_app
from pytest_flaskserve.errors import UsageError

EXAMPLES = Path(__file__).resolve().parent.parent / "example_apps"


@pytest.mark.parametrize(
    ("raw", "target", "script"),
    [
        ("hello:app", "hello:app", ("hello.py",)),
        ("hello", "hello:app", ("hello.py",)),
        ("hello.py", "hello:app", ("hello.py",)),
        ("only_application", "only_application:application", ("only_application.py",)),
        ("factory_pkg", "factory_pkg:create_app()", ("-m", "factory_pkg")),
        ("factory_pkg:create_app", "factory_pkg:create_app()", ("-m", "factory_pkg")),
        ("factory_pkg:create_app('dev')", "factory_pkg:create_app('dev')", ("-m", "factory_pkg")),
        ("factory_pkg:create_app('test', TESTING=True)",
         "factory_pkg:create_app('test', TESTING=True)", ("-m", "factory_pkg")),
        ("wsgiproject/wsgi.py", "wsgi:app", ("wsgiproject/wsgi.py",)),
        ("run_at_import:app", "run_at_import:app", ("run_at_import.py",)),
    ],
)
def test_every_form_resolves_without_importing_into_pytest(raw: str, target: str,
                                                          script: tuple[str, ...]) -> None:
    before = set(sys.modules)
    app = resolve_app(parse_spec(raw, EXAMPLES))
    assert app.describe() == target
    assert app.script == script
    assert "flask" not in set(sys.modules) - before or "flask" in before
    assert not {"hello", "factory_pkg", "wsgi", "only_application"} & set(sys.modules)


def test_app_run_at_import_is_noticed_but_not_served() -> None:
    t0 = time.monotonic()
    app = resolve_app(parse_spec("run_at_import", EXAMPLES))
    assert app.runs_at_import is True
    assert time.monotonic() - t0 < 10


def test_no_guard_has_no_script_entry_reason() -> None:
    app = resolve_app(parse_spec("no_guard", EXAMPLES))
    assert app.script == ("no_guard.py",)
    assert "__main__" in app.script_reason


BROKEN = {
    "attr_missing.py": ("from flask import Flask\napp = Flask(__name__)\n", "attr_missing:nope",
                        "has no attribute 'nope'"),
    "not_flask.py": ("app = object()\n", "not_flask:app", "not a Flask application"),
    "factory_raises.py": ("def create_app():\n    raise RuntimeError('no database')\n",
                          "factory_raises:create_app()", "RuntimeError: no database"),
    "factory_args.py": ("from flask import Flask\ndef create_app(name):\n    return Flask(name)\n",
                        "factory_args:create_app()", "cannot be called with these arguments"),
    "raises_at_import.py": ("raise ValueError('bad config')\n", "raises_at_import",
                            "ValueError: bad config"),
    "needs_dep.py": ("import flask_extension_that_is_not_installed\n", "needs_dep",
                     "flask_extension_that_is_not_installed"),
    "syntax_bad.py": ("def broken(:\n    pass\n", "syntax_bad", "syntax error"),
    "two_apps.py": ("from flask import Flask\nfirst = Flask('a')\nsecond = Flask('b')\n",
                    "two_apps", "several Flask apps (first, second)"),
    "no_app.py": ("x = 1\n", "no_app", "no Flask app named 'app'"),
    "exits.py": ("import sys\nsys.exit(3)\n", "exits", "SystemExit: 3"),
    "plain_wsgi.py": ("def app(environ, start_response):\n    start_response('200 OK', [])\n"
                      "    return [b'hi']\n", "plain_wsgi:app", "is a plain WSGI callable"),
    "two_settings.py": ("def create_app(config, env):\n    pass\n", "two_settings:create_app",
                        "cannot be called with these arguments"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_apps_that_cannot_load_are_usage_errors(tmp_path: Path, name: str) -> None:
    text, raw, fragment = BROKEN[name]
    (tmp_path / name).write_text(text)
    with pytest.raises(UsageError) as info:
        resolve_app(parse_spec(raw, tmp_path))
    message = str(info.value)
    assert fragment in message
    assert raw in message
    assert "\n" not in message


def test_an_import_that_hangs_hits_the_deadline(tmp_path: Path) -> None:
    (tmp_path / "hangs.py").write_text(textwrap.dedent("""
        import time
        from flask import Flask
        app = Flask(__name__)
        time.sleep(60)
    """))
    t0 = time.monotonic()
    with pytest.raises(UsageError, match="did not finish within 2 s"):
        resolve_app(parse_spec("hangs:app", tmp_path), timeout=2)
    assert time.monotonic() - t0 < 8


SPAMS_FROM_A_THREAD = """
import sys, threading
from flask import Flask

app = Flask(__name__)

def spam():
    while True:
        sys.stdout.write("x" * 65536 + "\\\\n")

threading.Thread(target=spam, daemon=True).start()
"""


def test_an_app_printing_without_end_from_a_thread_still_resolves(tmp_path: Path) -> None:
    """The answer has a channel of its own: in the app's output, a thread printing
    without end split it or pushed it out of the kept tail (a usage error under load)."""
    for i in range(5):  # five modules: a spec is resolved once
        (tmp_path / f"spams{i}.py").write_text(SPAMS_FROM_A_THREAD)
        app = resolve_app(parse_spec(f"spams{i}:app", tmp_path))
        assert app.module == f"spams{i}"

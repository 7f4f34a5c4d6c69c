"""The spec parser: tables of good and bad specs in Flask's --app grammar (no imports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_flaskserve.appspec import has_main_guard, parse_spec, prepare_import, script_entry
from pytest_flaskserve.errors import UsageError

EXAMPLES = Path(__file__).resolve().parent.parent / "example_apps"


@pytest.mark.parametrize(
    ("raw", "module", "attr", "args", "kwargs", "is_call"),
    [
        ("hello:app", "hello", "app", (), (), False),
        ("hello", "hello", None, (), (), False),
        ("hello.py", "hello", None, (), (), False),
        ("hello.py:app", "hello", "app", (), (), False),
        ("./hello.py:app", "hello", "app", (), (), False),
        ("factory_pkg", "factory_pkg", None, (), (), False),
        ("factory_pkg/", "factory_pkg", None, (), (), False),
        ("factory_pkg:create_app", "factory_pkg", "create_app", (), (), False),
        ("factory_pkg:create_app()", "factory_pkg", "create_app", (), (), True),
        ("factory_pkg:create_app('dev')", "factory_pkg", "create_app", ("dev",), (), True),
        ('factory_pkg:create_app("test", TESTING=True)', "factory_pkg", "create_app",
         ("test",), (("TESTING", True),), True),
        ("factory_pkg:create_app(config_name='dev')", "factory_pkg", "create_app", (),
         (("config_name", "dev"),), True),
        ("factory_pkg:create_app([1, 2], {'a': None})", "factory_pkg", "create_app",
         ([1, 2], {"a": None}), (), True),
        ("factory_pkg.views:bp", "factory_pkg.views", "bp", (), (), False),
        ("factory_pkg/views.py:bp", "factory_pkg.views", "bp", (), (), False),
        ("factory_pkg/__init__.py", "factory_pkg", None, (), (), False),
        ("wsgiproject/wsgi.py", "wsgi", None, (), (), False),
        ("  hello:app  ", "hello", "app", (), (), False),
        ("hello: app", "hello", "app", (), (), False),
        ("flask:Flask", "flask", "Flask", (), (), False),  # an installed module resolves too
    ],
)
def test_good_specs(raw: str, module: str, attr: str | None, args: tuple, kwargs: tuple,
                    is_call: bool) -> None:
    spec = parse_spec(raw, EXAMPLES)
    assert (spec.module, spec.attr, spec.args, spec.kwargs, spec.is_call) == (
        module, attr, args, kwargs, is_call)


def test_paths_set_the_sys_path_entry_like_flask() -> None:
    assert parse_spec("wsgiproject/wsgi.py", EXAMPLES).path_entry == str(EXAMPLES / "wsgiproject")
    assert parse_spec("factory_pkg/views.py", EXAMPLES).path_entry == str(EXAMPLES)
    assert parse_spec("hello:app", EXAMPLES).path_entry == str(EXAMPLES)
    assert prepare_import(str(EXAMPLES / "factory_pkg" / "views.py")) == (
        "factory_pkg.views", str(EXAMPLES))


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("hello:", "nothing after ':'"),
        (":app", "names no module"),
        ("hello:app(", "not an attribute name or a call"),
        ("hello:1app", "not an attribute name or a call"),
        ("hello:app.run", "not an attribute name or a call"),
        ("hello:create_app(x)", "must be Python literals"),
        ("hello:create_app(os.getcwd())", "must be Python literals"),
        ("hello:create_app(*args)", "not allowed"),
        ("hello:create_app(**kw)", "not allowed"),
        ("hello:obj.factory()", "plain name"),
        ("hello:app; import os", "not an attribute name or a call"),
        ("missing.py", "does not exist"),
        ("missing.py:app", "does not exist"),
        ("nowhere/app.py", "does not exist"),
        ("no_such_module_xyz:app", "no module 'no_such_module_xyz'"),
        ("no_such_module_xyz", "no module"),
        ("bad-name!:app", "not a module name"),
        ("wsgiproject", "not a Python package"),
    ],
)
def test_bad_specs_are_one_line_usage_errors(raw: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_spec(raw, EXAMPLES)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_directory_without_init_points_at_its_entry_file() -> None:
    with pytest.raises(UsageError, match="wsgiproject/wsgi.py"):
        parse_spec("wsgiproject", EXAMPLES)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("if __name__ == '__main__':\n    app.run()\n", True),
        ('if "__main__" == __name__:\n    main()\n', True),
        ("if __name__ != '__main__':\n    pass\n", False),
        ("def f():\n    if __name__ == '__main__':\n        pass\n", False),
        ("app = 1\n", False),
        ("def broken(:\n", False),
    ],
)
def test_main_guard_detection(source: str, expected: bool) -> None:
    assert has_main_guard(source) is expected


def test_script_entry_points() -> None:
    base = str(EXAMPLES)
    assert script_entry("hello", str(EXAMPLES / "hello.py"), False, base) == (("hello.py",), "")
    assert script_entry("factory_pkg", str(EXAMPLES / "factory_pkg" / "__init__.py"), True,
                        base) == (("-m", "factory_pkg"), "")
    script, reason = script_entry("no_guard", str(EXAMPLES / "no_guard.py"), False, base)
    assert script == ("no_guard.py",) and "__main__" in reason

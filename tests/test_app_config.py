"""Config a test gives its app reaches every server: markers, the factory, the recipes of
docs/config.md as written there, and values that cannot cross a process boundary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "config.md"


def recipes() -> dict[str, str]:
    """The files of docs/config.md: each code block that starts with '# file: NAME'."""
    found = re.findall(r"```(?:python|ini)\n# file: (\S+)\n(.*?)```", DOC.read_text(), re.S)
    return dict(found)


def test_doc_recipes_run_on_every_server(pytester: pytest.Pytester, examples: Path) -> None:
    files = recipes()
    assert set(files) == {"pytest.ini", "conftest.py", "test_shared_db.py", "test_instance_path.py",
                          "test_factory_fixture.py"}
    for name, text in files.items():
        (pytester.path / name).write_text(text)
    result = pytester.runpytest_subprocess(*(name for name in files if name.startswith("test_")))
    # 5 tests, each on the 7 default servers
    result.assert_outcomes(passed=35)


def test_config_json_values_and_nesting(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import pytest, requests

        pytestmark = [pytest.mark.flask_app("notes"),
                      pytest.mark.flask_options(config={"TITLE": "module", "EXTRA": 1})]

        @pytest.mark.flask_options(config={"EXTRA": {"list": [1, 2.5, None, True], "s": "é"}})
        def test_nearest_wins_per_key(flask_url):
            got = requests.get(flask_url + "/api/settings", timeout=10).json()
            assert got["title"] == "module"
            assert got["extra"] == {"list": [1, 2.5, None, True], "s": "é"}

        def test_factory_config(flask_server_factory, flask_server_name, flask_session_dir):
            h = flask_server_factory(flask_server_name, "notes",
                                     config={"DATABASE": "{session_dir}/f.db", "TESTING": True})
            got = requests.get(h.url + "/api/settings", timeout=10).json()
            assert got["database"] == str(flask_session_dir / "f.db")
            assert got["testing"] is True and got["title"] == "Notes"
            assert "pytest_flaskserve._entry:app" in h.command or h.server == "app-run"
    """)
    result = pytester.runpytest_subprocess("test_inner.py")
    result.assert_outcomes(passed=14)


@pytest.mark.parametrize("value, problem", [
    ("(1, 2)", "(1, 2) is a builtins.tuple"),
    ("datetime.timedelta(days=1)", "datetime.timedelta(days=1) is a datetime.timedelta"),
    ("{1: 'a'}", "the key 1 is a int, not a str"),
    ("float('nan')", "nan is not a finite number"),
])
def test_values_json_cannot_carry_are_usage_errors(pytester: pytest.Pytester, examples: Path,
                                                   value: str, problem: str) -> None:
    pytester.makepyfile(test_inner=f"""
        import datetime, pytest

        @pytest.mark.flask_options(config={{"KEY": {value}}})
        def test_x(flask_url):
            pass
    """)
    result = pytester.runpytest_subprocess("test_inner.py", "--flask-app=notes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert ("@pytest.mark.flask_options(config=...): config['KEY'] cannot reach a server in "
            f"another process ({problem}") in err
    assert "servers get config as JSON: use str, int" in err
    assert "Traceback" not in err


def test_factory_rejects_what_json_cannot_carry(pytester: pytest.Pytester,
                                                examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import pytest
        from pytest_flaskserve import UsageError

        def test_x(flask_server_factory):
            with pytest.raises(UsageError, match=r"config\\['KEY'\\] cannot reach a server"):
                flask_server_factory("waitress", "notes", config={"KEY": object()})
            with pytest.raises(UsageError, match="instance_path='relative'"):
                flask_server_factory("waitress", "notes", instance_path="relative")
    """)
    result = pytester.runpytest_subprocess("test_inner.py")
    result.assert_outcomes(passed=1)

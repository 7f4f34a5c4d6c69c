"""Reloader resilience on real servers: break a copy of the app, watch what survives.

The matrix below is what these servers do on this machine; each test establishes one
cell from a working app, so a change of behaviour in Flask, Werkzeug, Gunicorn or uWSGI
shows up here as a failure that names the cell.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from pytest_flaskserve.appspec import parse_spec
from pytest_flaskserve.appspec.resolve import resolve_app
from pytest_flaskserve.errors import ServerStartupError, UsageError
from pytest_flaskserve.lifecycle.supervisor import StartConfig
from pytest_flaskserve.reloader import (
    Outcome,
    ReloaderConfig,
    ReloadError,
    ReloaderUnavailable,
    ReloadingServer,
    copy_project,
    default_starter,
    insert_statement,
    profile_for,
    relocate,
    render_reloader,
    write_bumped,
)
from pytest_flaskserve.reloader.project_copy import MAX_COPY_FILES
from pytest_flaskserve.servers import ServerOptions

EXAMPLES = Path(__file__).resolve().parent.parent / "example_apps"
APP = "example_apps/reloadable/app.py"  # app.run(debug=True) under __main__
RELOAD_ONLY = "example_apps/reloadable/reload_only.py"  # app.run(use_reloader=True)

#: id -> (server, app spec, fixture options)
VARIANTS: dict[str, tuple[str, str, dict[str, object]]] = {
    "flask-run--reload": ("flask-run", APP, {}),
    "flask-run--debug": ("flask-run", APP, {"debug": True}),
    "app-run-use_reloader": ("app-run", RELOAD_ONLY, {}),
    "app-run-debug": ("app-run", APP, {}),
    "gunicorn--reload": ("gunicorn", APP, {}),
    "uwsgi-py-autoreload": ("uwsgi", APP, {}),
}

BREAKS: dict[str, Callable[[ReloadingServer], Path]] = {
    "syntax-error": lambda s: s.break_syntax(),
    "missing-import": lambda s: s.break_import(),
    "exception-at-import": lambda s: s.raise_at_import(),
}

SURVIVES = None
#: Measured here. SURVIVES: serves HTTP 500 while broken, recovers once fixed.
#: A number: the server exits with that code and never comes back.
BEHAVIOUR: dict[str, dict[str, int | None]] = {
    "flask-run--reload": dict.fromkeys(BREAKS, SURVIVES),
    "flask-run--debug": dict.fromkeys(BREAKS, SURVIVES),
    "app-run-use_reloader": dict.fromkeys(BREAKS, 1),
    "app-run-debug": dict.fromkeys(BREAKS, 1),
    # Gunicorn's worker catches only SyntaxError under --reload (it serves the traceback);
    # any other import failure is a worker boot error, and the master halts.
    "gunicorn--reload": {"syntax-error": SURVIVES, "missing-import": 3,
                         "exception-at-import": 3},
    # py-autoreload re-execs the whole server; --need-app then ends it (22).
    "uwsgi-py-autoreload": dict.fromkeys(BREAKS, 22),
}

#: With the syntax error there before the first start: the exit code, or SURVIVES
#: (Gunicorn's worker catches the SyntaxError under --reload from the very first load).
FIRST_START: dict[str, int | None] = {
    "flask-run--reload": 1,
    "flask-run--debug": 1,
    "app-run-use_reloader": 1,
    "app-run-debug": 1,
    "gunicorn--reload": SURVIVES,
    "uwsgi-py-autoreload": 22,
}


def start(flask_reloader: Callable[..., ReloadingServer], variant: str,
          **more: object) -> ReloadingServer:
    server, app, options = VARIANTS[variant]
    return flask_reloader(server, app, **{**options, **more})


def tree(server: ReloadingServer) -> list[psutil.Process]:
    leader = psutil.Process(server.handle.pid)
    return [leader, *leader.children(recursive=True)]


def assert_gone(procs: list[psutil.Process], timeout: float = 5.0) -> None:
    """Every process of ``procs`` has exited (zombies awaiting their reaper count as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return
        if time.monotonic() >= deadline:
            pytest.fail(f"left running: {[(p.pid, p.cmdline()) for p in alive]}")
        time.sleep(0.02)


# -- the survive / die matrix -----------------------------------------------------------

@pytest.mark.parametrize("breakage", list(BREAKS))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_broken_edit(flask_reloader: Callable[..., ReloadingServer], variant: str,
                     breakage: str) -> None:
    server = start(flask_reloader, variant)
    assert server.get() == (200, "v1")
    procs = tree(server)
    edited = BREAKS[breakage](server)

    result = server.wait_for_outcome()

    assert result.detected is not None and Path(result.detected).name == edited.name, result
    expected = BEHAVIOUR[variant][breakage]
    if expected is SURVIVES:
        assert result.outcome is Outcome.SERVING_ERRORS, result
        assert result.status == 500
        server.restore()
        fixed = server.wait_for_reload()
        assert fixed.outcome is Outcome.RECOVERED, fixed
        assert server.get() == (200, "v1")
        assert fixed.restarts == 2
        procs = tree(server)  # the processes of now, after two restarts
        server.stop()
        assert_gone(procs)
    else:
        assert result.outcome is Outcome.DEAD, result
        assert result.exit_code == expected, result
        assert not server.is_running()
        assert_gone(procs)  # the reloader child or the workers did not outlive it
        server.restore()  # the fix comes too late: no process is left to notice it
        assert server.get(timeout=1) == (None, "")


def test_wait_for_reload_raises_when_the_server_dies(
        flask_reloader: Callable[..., ReloadingServer]) -> None:
    server = flask_reloader("app-run", APP)
    server.break_syntax()
    with pytest.raises(ReloadError, match=r"did not survive the edit: it exited \(exit code 1\)"
                       ) as died:
        server.wait_for_reload()
    assert died.value.exit_code == 1
    assert "SyntaxError" in died.value.log_tail
    assert died.value.result is not None and died.value.result.outcome is Outcome.DEAD


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_syntax_error_at_first_start(flask_reloader: Callable[..., ReloadingServer],
                                     variant: str) -> None:
    server = start(flask_reloader, variant, start=False)
    server.break_syntax()
    expected = FIRST_START[variant]
    if expected is SURVIVES:
        server.start()
        assert server.get()[0] == 500
        server.restore()
        assert server.wait_for_reload().outcome is Outcome.RECOVERED
        assert server.get() == (200, "v1")
        return
    with pytest.raises(ServerStartupError) as failed:
        server.start()
    assert failed.value.exit_code == expected
    assert "SyntaxError" in failed.value.log_tail


def test_a_module_of_a_package_factory(flask_reloader: Callable[..., ReloadingServer]) -> None:
    server = flask_reloader("flask-run", "example_apps/factory_pkg:create_app('dev')")
    assert server.get() == (200, "hello from dev")
    server.raise_at_import("factory_pkg/views.py")
    assert server.wait_for_outcome().outcome is Outcome.SERVING_ERRORS
    server.restore()
    assert server.wait_for_reload().outcome is Outcome.RECOVERED
    assert server.get() == (200, "hello from dev")


def test_users_files_are_never_touched(flask_reloader: Callable[..., ReloadingServer]) -> None:
    before = {p: p.read_bytes() for p in (EXAMPLES / "reloadable").iterdir() if p.is_file()}
    server = flask_reloader("flask-run", APP, start=False)
    assert server.root != EXAMPLES / "reloadable"
    server.break_syntax()
    server.replace("helpers.py", "Hello", "Howdy")
    server.edit("new_module.py", "X = 1\n")
    for outside in ("../outside.py", str(EXAMPLES / "reloadable" / "app.py")):
        with pytest.raises(UsageError, match="outside the copy"):
            server.edit(outside, "broken = (\n")
    assert {p: p.read_bytes() for p in before} == before
    assert not (EXAMPLES / "reloadable" / "new_module.py").exists()
    server.restore()
    assert server.read() == (EXAMPLES / "reloadable" / "app.py").read_text()
    assert not (server.root / "new_module.py").exists()


# -- Werkzeug's options: extra files, exclude patterns, reloader type, interval -----------

@pytest.mark.parametrize("server_name", ["flask-run", "app-run", "gunicorn"])
def test_extra_files_trigger_a_reload(flask_reloader: Callable[..., ReloadingServer],
                                      server_name: str) -> None:
    server = flask_reloader(server_name, APP, extra_files=["settings.json"])
    assert server.get("/greeting") == (200, "Hello, World!")
    server.replace("settings.json", "World", "Flask")
    result = server.wait_for_reload()
    assert result.detected is not None and result.detected.endswith("settings.json")
    assert server.get("/greeting") == (200, "Hello, Flask!")


def test_data_files_are_not_watched_by_default(
        flask_reloader: Callable[..., ReloadingServer]) -> None:
    server = flask_reloader("flask-run", APP)
    server.replace("settings.json", "World", "Flask")
    server.expect_no_reload(within=0.5)  # five polls at the fixture's 0.1 s interval
    assert server.get("/greeting") == (200, "Hello, World!")  # stale until a restart
    assert server.restarts == 0


@pytest.mark.parametrize("server_name", ["flask-run", "app-run"])
def test_exclude_patterns_silence_a_file(flask_reloader: Callable[..., ReloadingServer],
                                         server_name: str) -> None:
    server = flask_reloader(server_name, APP, exclude_patterns=["*/helpers.py"])
    server.replace("helpers.py", "Hello", "Howdy")
    server.expect_no_reload(within=0.5)
    server.replace(None, '"v1"', '"v2"')
    result = server.wait_for_reload()
    assert result.detected is not None and result.detected.endswith("app.py")
    assert server.get("/greeting") == (200, "Howdy, World!")  # loaded by the restart


@pytest.mark.parametrize("reloader_type", ["stat", "watchdog"])
def test_reloader_type(flask_reloader: Callable[..., ReloadingServer],
                       reloader_type: str) -> None:
    server = flask_reloader("app-run", APP, reloader_type=reloader_type)
    server.replace(None, '"v1"', '"v2"')
    assert server.wait_for_reload().outcome is Outcome.SERVING
    assert f"Restarting with {reloader_type}" in server.read_log()


def test_default_interval_without_the_boot_hook(
        flask_reloader: Callable[..., ReloadingServer]) -> None:
    server = flask_reloader("flask-run", APP, interval=None)
    assert "FLASKSERVE_RELOADER" not in dict(server.options.env)
    assert "_boot" not in server.handle.command
    server.replace(None, '"v1"', '"v2"')
    result = server.wait_for_reload()
    assert (result.outcome, result.status, result.restarts) == (Outcome.SERVING, 200, 1)
    assert server.get() == (200, "v2")


def test_werkzeug_options_are_refused_elsewhere(
        flask_reloader: Callable[..., ReloadingServer]) -> None:
    with pytest.raises(UsageError, match="no exclude_patterns option"):
        flask_reloader("gunicorn", APP, exclude_patterns=["*/helpers.py"])
    with pytest.raises(UsageError, match="no reloader type 'watchdog'"):
        flask_reloader("gunicorn", APP, reloader_type="watchdog")


def test_a_script_without_reloader_is_a_usage_error(
        flask_reloader: Callable[..., ReloadingServer]) -> None:
    with pytest.raises(UsageError, match=r"use_reloader=True\) or app.run\(debug=True\)"):
        flask_reloader("app-run", "example_apps/hello.py")


def test_servers_without_reloader_are_skipped_with_a_reason(
        flask_reloader: Callable[..., ReloadingServer]) -> None:
    with pytest.raises(ReloaderUnavailable, match="waitress has no reloader"):
        profile_for("waitress")
    with pytest.raises(pytest.skip.Exception, match="waitress has no reloader to test; use "
                                                    "one of: flask-run, app-run, gunicorn"):
        flask_reloader("waitress", APP)


def test_gunicorn_variants_share_gunicorns_profile() -> None:
    # measured by hand: gthread and gevent workers behave as the sync one in the matrix
    for variant in ("gunicorn-gthread", "gunicorn-gevent"):
        profile = profile_for(variant)
        assert profile.server == variant
        assert profile.detected is profile_for("gunicorn").detected


# -- teardown ------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["flask-run--reload", "app-run-debug"])
def test_reloader_child_outlives_a_hard_kill_until_stop(
        flask_reloader: Callable[..., ReloadingServer], variant: str) -> None:
    server = start(flask_reloader, variant)
    procs = tree(server)
    assert len(procs) >= 2, "the reloader runs the app in a child process"
    os.kill(server.handle.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while server.exit_code is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.exit_code == -signal.SIGKILL
    assert server.get() == (200, "v1")  # the orphaned child still serves
    server.stop()
    assert_gone(procs)
    assert server.get(timeout=1) == (None, "")


# -- the documented example, run as a user would ---------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "reloader.md"


def test_documented_example(pytester: pytest.Pytester) -> None:
    """docs/reloader.md's worked example, verbatim, in a fresh project."""
    blocks = re.findall(r"```python\n# (\S+\.py)\n(.*?)```", DOC.read_text(), re.S)
    files = dict(blocks)
    assert set(files) == {"app.py", "test_reload.py"}
    test_lines = [ln for ln in files["test_reload.py"].splitlines() if ln.strip()]
    assert len(test_lines) < 12, "the example test stays short"
    for name, text in files.items():
        pytester.path.joinpath(name).write_text(text)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*app-run: DEAD (exit code 1) * after the edit, restart #1*"])


# -- helpers of the library ----------------------------------------------------------------

def test_library_without_the_fixture(tmp_path: Path) -> None:
    """Scripts and benchmarks drive the same handle through the supervisor directly."""
    spec = parse_spec(RELOAD_ONLY, EXAMPLES.parent)
    root = copy_project(spec.path_entry, tmp_path / "copy")
    app = relocate(resolve_app(spec), spec.path_entry, root)
    server = ReloadingServer(server="app-run", app=app, options=ServerOptions(), root=root,
                             starter=default_starter("app-run", StartConfig(log_dir=tmp_path)),
                             poll_interval=1.0)
    try:
        server.start()
        server.raise_at_import()
        result = server.wait_for_outcome()
        assert (result.outcome, result.exit_code) == (Outcome.DEAD, 1)
        assert "RuntimeError: raised at import by flask_reloader" in server.read_log()
    finally:
        server.stop()


def test_werkzeug_options_render(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    root.mkdir()
    protect = ["/project", "/project/pkg", str(tmp_path)]  # tmp_path holds the copy: kept
    args, env = render_reloader(profile_for("flask-run"),
                                ReloaderConfig(extra_files=("settings.json",)), root, protect)
    assert args == ["--extra-files", str(root / "settings.json"),
                    "--exclude-patterns", "/project/*"]  # Flask's own CLI flags
    assert json.loads(env["FLASKSERVE_RELOADER"]) == {"interval": 0.1}  # no flag for it
    args, env = render_reloader(
        profile_for("app-run"),
        ReloaderConfig(interval=None, reloader_type="stat", exclude_patterns=("*/x.py",)), root)
    assert args == []
    assert json.loads(env["FLASKSERVE_RELOADER"]) == {"type": "stat",
                                                      "exclude_patterns": ["*/x.py"]}
    args, env = render_reloader(profile_for("gunicorn"), ReloaderConfig(
        extra_files=("settings.json",), reloader_type="poll"), root, protect)
    assert (args, env) == (["--reload-extra-file", str(root / "settings.json"),
                            "--reload-engine", "poll"], {})


def test_statements_go_after_docstring_and_future_imports() -> None:
    source = '"""Doc."""\nfrom __future__ import annotations\n\nimport os\n'
    out = insert_statement(source, "raise RuntimeError('x')")
    assert out.splitlines()[:3] == ['"""Doc."""', "from __future__ import annotations",
                                    "raise RuntimeError('x')"]
    compile(out, "m.py", "exec")
    assert insert_statement("x = 1", "import nope") == "import nope\nx = 1"


def test_each_write_moves_mtime_a_whole_second(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_text("a = 1\n")
    stamps = [target.stat().st_mtime]
    for i in range(3):  # faster than any file-system tick
        write_bumped(target, f"a = {i}\n".encode())
        stamps.append(target.stat().st_mtime)
    assert all(int(b) > int(a) for a, b in zip(stamps, stamps[1:], strict=False))
    assert target.read_text() == "a = 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.py"]  # no temporary left behind


def test_copy_leaves_out_virtualenvs_and_caches(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "__init__.py").write_text("")
    (src / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"")
    (src / "env-any-name").mkdir()
    (src / "env-any-name" / "pyvenv.cfg").write_text("home = /usr\n")
    (src / ".git").mkdir()
    (src / "app.py").write_text("")
    (src / "tmp" / "basetemp").mkdir(parents=True)  # pytest --basetemp inside the project
    dst = copy_project(src, src / "tmp" / "basetemp" / "copy")
    found = sorted(str(p.relative_to(dst)) for p in dst.rglob("*"))
    assert found == ["app.py", "pkg", "pkg/__init__.py"]


def test_copy_refuses_a_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pytest_flaskserve.reloader.project_copy.MAX_COPY_FILES", 3)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.csv").write_text("")
    with pytest.raises(UsageError, match="ignore="):
        copy_project(src, tmp_path / "dst")
    assert not (tmp_path / "dst").exists()
    assert MAX_COPY_FILES > 1000


def test_bad_reloader_arguments_are_usage_errors(
        flask_reloader: Callable[..., ReloadingServer]) -> None:
    """A negative interval used to report SERVING for a server that then crashed; a
    string for a list was split into one path per character."""
    for kwargs, message in (
            ({"interval": -1}, "interval=-1.*at least 0.01"),
            ({"interval": "fast"}, "interval='fast'"),
            ({"extra_files": "helpers.py"}, r"extra_files='helpers.py'.*\['helpers.py'\]"),
            ({"exclude_patterns": "*/static/*"}, "exclude_patterns=.*list of strings"),
            ({"startup_timeout": -1}, "startup_timeout=-1"),
    ):
        with pytest.raises(UsageError, match=message):
            flask_reloader("flask-run", APP, **kwargs)


def test_edits_of_missing_directory_or_binary_files_say_so(
        flask_reloader: Callable[..., ReloadingServer]) -> None:
    server = flask_reloader("flask-run", APP, start=False)
    with pytest.raises(UsageError, match="is not a file of the copy"):
        server.replace("nope.py", "a", "b")
    with pytest.raises(UsageError, match="is not a file of the copy"):
        server.break_syntax("nope.py")
    server.root.joinpath("pkgdir").mkdir()
    with pytest.raises(UsageError, match="is a directory in the copy"):
        server.edit("pkgdir", "x = 1\n")
    server.edit("blob.bin", b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="is not UTF-8 text"):
        server.break_syntax("blob.bin")


def test_restarts_count_restarts_not_detection_lines(
        flask_reloader: Callable[..., ReloadingServer]) -> None:
    """Two files changed before waiting: one restart, whatever the reloader logs."""
    server = flask_reloader("app-run", APP)
    server.replace(None, '"v1"', '"v2"')
    server.replace("helpers.py", "Hello", "Howdy")
    result = server.wait_for_reload()
    assert result.outcome is Outcome.SERVING
    assert result.restarts == server.restarts == 1, server.read_log()

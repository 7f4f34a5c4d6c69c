"""Shared helpers for the suite: example apps copied into pytester dirs, and a final
check that no server process started by any test (inner pytest runs included) survives."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import psutil
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "example_apps"
#: test folders of the examples, left out of the copy (inner runs would collect them);
#: a test that runs one copies it with copy_example_tests()
EXAMPLE_TEST_DIRS = ("tests", "live_server_tests", "browser_tests", "deploy")


def copy_example_tests(name: str, dest: Path) -> None:
    """Copy ``example_apps/NAME`` (one of EXAMPLE_TEST_DIRS) into ``dest``."""
    shutil.copytree(EXAMPLES / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))

#: Inherited by every inner pytest run and every server, so the final check looks only at
#: processes this suite started (other test runs on the machine are none of its business).
SUITE_TOKEN = uuid.uuid4().hex
os.environ["FLASKSERVE_TEST_SUITE"] = SUITE_TOKEN
# Inner pytest runs hold to the same rule as this suite: a ResourceWarning is an error.
os.environ["PYTEST_ADDOPTS"] = (os.environ.get("PYTEST_ADDOPTS", "") + " -W error::ResourceWarning").strip()


@pytest.fixture(autouse=True)
def _inner_runs_without_browser_plugins(request: pytest.FixtureRequest) -> None:
    """Inner pytest runs leave pytest-flask, pytest-playwright and pytest-base-url out:
    installed for the tests that use them (which pass ``-p flask`` / ``-p playwright -p
    base_url``), they would load Flask and Playwright into every inner run. Set after
    Pytester starts, because it clears PYTEST_ADDOPTS."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")
        request.getfixturevalue("monkeypatch").setenv(
            "PYTEST_ADDOPTS", "-p no:flask -p no:playwright -p no:base_url")


@pytest.fixture
def examples(pytester: pytest.Pytester) -> Path:
    """A copy of example_apps/ as the pytester project directory (its rootdir)."""
    for item in EXAMPLES.iterdir():
        if item.name in ("__pycache__", *EXAMPLE_TEST_DIRS) or item.name.startswith("."):
            continue
        dest = pytester.path / item.name
        if item.is_dir():
            shutil.copytree(item, dest, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(item, dest)
    return pytester.path


def owned_processes() -> list[psutil.Process]:
    """Processes pytest-flaskserve started during this suite (inner runs included)."""
    found = []
    me = os.getpid()
    for p in psutil.process_iter(["pid"]):
        if p.pid == me:
            continue
        try:
            env = p.environ()
            if ("FLASKSERVE_OWNER" in env and env.get("FLASKSERVE_TEST_SUITE") == SUITE_TOKEN
                    and p.status() != psutil.STATUS_ZOMBIE):
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="session", autouse=True)
def _no_server_left_behind() -> object:
    """After the whole suite, nothing we started may still run (checked, not assumed)."""
    before = {p.pid for p in owned_processes()}
    yield
    deadline = time.monotonic() + 5
    left = [p for p in owned_processes() if p.pid not in before]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    if left:
        details = [f"{p.pid} {' '.join(p.cmdline())}" for p in left if p.is_running()]
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        pytest.fail("server processes left behind by the suite:\n" + "\n".join(details))

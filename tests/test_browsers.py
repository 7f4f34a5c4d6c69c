"""Real browsers on every default server: Playwright's ``page.goto("/")`` reaches the
test's server, Selenium drives Debian's Chromium through ChromeDriver, both on the notes
example's page whose form posts with fetch(). One browser of each kind per session."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import copy_example_tests

from pytest_flaskserve import browsers, servers

PLAYWRIGHT = ("-p", "playwright", "-p", "base_url")


def missing(what: str) -> None:
    """Outside CI a skip with the install command; CI installs everything, so a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"CI installs the browser tools (python3 tasks.py test): {what}")
    pytest.skip(what)


@pytest.fixture
def project(pytester: pytest.Pytester, examples: Path) -> pytest.Pytester:
    for module, package in (("pytest_playwright", "pytest-playwright"),
                            ("pytest_base_url", "pytest-base-url"), ("selenium", "selenium")):
        if importlib.util.find_spec(module) is None:
            missing(f"pip install {package}")
    if browsers.chromium_executable() is None or browsers.chromedriver_executable() is None:
        missing("apt-get install chromium chromium-driver")
    (pytester.path / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    copy_example_tests("browser_tests", pytester.path)
    return pytester


@pytest.fixture
def short_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A TMPDIR of the run's own, to see what the browsers leave there: short, because
    Chromium puts a Unix socket in it (a long path is a fatal "Socket path too long")."""
    scratch = Path(tempfile.mkdtemp(prefix="fs-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(scratch))
    yield scratch
    shutil.rmtree(scratch, ignore_errors=True)


def test_playwright_and_selenium_on_every_server(project: pytest.Pytester,
                                                 short_tmpdir: Path) -> None:
    result = project.runpytest_subprocess("browser_tests", *PLAYWRIGHT, "-v",
                                          "--durations=0", "--durations-min=0")
    assert sorted(p.name for p in short_tmpdir.iterdir()) == [], "left in TMPDIR"
    default = [name for name in servers.default_names() if not servers.get(name).unavailable()]
    result.assert_outcomes(passed=2 * len(default))
    out = result.stdout.str()
    for name in default:  # the ids are [SERVER-chromium] or [chromium-SERVER]
        assert (f"test_playwright_form_posts_with_fetch[{name}-chromium] PASSED" in out
                or f"test_playwright_form_posts_with_fetch[chromium-{name}] PASSED" in out)
        assert f"test_selenium_form_posts_with_fetch[{name}] PASSED" in out


def test_launch_args_and_base_url_rules(project: pytest.Pytester) -> None:
    project.makepyfile(test_inner="""
        import os, pytest

        def test_launch_args(browser_type_launch_args):
            args = browser_type_launch_args["args"]
            for flag in ("--disable-background-networking", "--disable-component-update",
                         "--no-first-run", "--disable-dev-shm-usage"):
                assert flag in args
            assert ("--no-sandbox" in args) == (os.geteuid() == 0)
            assert browser_type_launch_args["executable_path"].endswith("chromium")

        def test_no_server_no_base_url(page):
            page.goto("data:text/html,<p>x</p>")
            assert page.locator("p").text_content() == "x"

        @pytest.mark.browser_context_args(base_url="http://127.0.0.1:9/")
        def test_own_base_url_wins(new_context, flask_url):
            page = new_context().new_page()
            assert page.evaluate("1 + 1") == 2
            with pytest.raises(Exception, match="127.0.0.1:9"):
                page.goto("/", timeout=5000)

        def test_live_server_is_the_base_url(page, live_server):
            page.goto("/ping")
            assert page.url == live_server.url("/ping")
            assert "pong" in page.content()
    """)
    result = project.runpytest_subprocess("test_inner.py", *PLAYWRIGHT, "--flask-app=hello:app",
                                          "--flask-servers=gunicorn")
    result.assert_outcomes(passed=4)


def test_https_server_certificate_is_accepted_alone(project: pytest.Pytester) -> None:
    pytest.importorskip("trustme", reason="pip install 'pytest-flaskserve[tls]'")
    project.makepyfile(test_inner="""
        import pytest

        def test_https_page(page, flask_url, browser_type_launch_args):
            assert flask_url.startswith("https://")
            assert any(a.startswith("--ignore-certificate-errors-spki-list=")
                       for a in browser_type_launch_args["args"])
            page.goto("/")
            assert page.url == flask_url + "/"
            assert "Hello, World!" in page.content()
    """)
    result = project.runpytest_subprocess("test_inner.py", *PLAYWRIGHT, "--flask-app=hello:app",
                                          "--flask-tls", "--flask-servers=flask-run,gunicorn")
    result.assert_outcomes(passed=2)

"""pytest-playwright with no glue: ``page.goto("/")`` reaches this test's server.

pytest-playwright's ``base_url`` is session-scoped (pytest-base-url), so a per-test
server cannot be it. The browser context is per test, though: ``new_context`` is wrapped
so that a test that uses one of this plugin's servers (``flask_server``, ``flask_url``,
``flask_http``, ``live_server``) gets contexts whose ``base_url`` is that server, unless
the test set one itself (``--base-url``, ``browser_context_args``, its marker, or an
argument). ``browser_type_launch_args`` gets the installed Chromium when Playwright's own
build is not there (none is downloaded) and the flags a CI machine needs
(``pytest_flaskserve.browsers``). Registered only when pytest-playwright is active.
"""

from __future__ import annotations

import pytest

#: pytest-playwright's plugin name (its ``pytest11`` entry point)
PYTEST_PLAYWRIGHT = "playwright"


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin(PYTEST_PLAYWRIGHT):
        # registered after pytest-playwright, so these fixtures wrap its own
        from pytest_flaskserve.plugin import browser_fixtures

        config.pluginmanager.register(browser_fixtures, "flaskserve-playwright")

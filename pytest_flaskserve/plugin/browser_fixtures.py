"""pytest-playwright with no glue: ``page.goto("/")`` reaches this test's server.

pytest-playwright's ``base_url`` is session-scoped (pytest-base-url), so a per-test
server cannot be it. The browser context is per test, though: ``new_context`` is wrapped
so that a test that uses one of this plugin's servers (``flask_server``, ``flask_url``,
``flask_http``, ``live_server``) gets contexts whose ``base_url`` is that server, unless
the test set one itself (``--base-url``, ``browser_context_args``, its marker, or an
argument). ``browser_type_launch_args`` gets the installed Chromium when Playwright's own
build is not there (none is downloaded) and the flags a CI machine needs
(``pytest_flaskserve.browsers``).

:mod:`.features` registers this module only when pytest-playwright is active, after it,
so that each fixture here receives pytest-playwright's own under the same name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the session module pulls in the servers: imported on first use
    from pytest_flaskserve.plugin.session import Runtime


def _server_url(request: pytest.FixtureRequest) -> str | None:
    """The URL of the test's server, if the test uses one (started here if need be)."""
    names = request.fixturenames
    if "flask_server" in names:
        return str(request.getfixturevalue("flask_server").url)
    if "live_server" in names:
        handle = request.getfixturevalue("live_server").handle
        return None if handle is None else str(handle.url)  # not started: nothing to aim at
    return None


def _needs_tls(request: pytest.FixtureRequest, rt: Runtime) -> bool:
    """Whether any test of this session serves HTTPS (``--flask-tls`` or a marker)."""
    return rt.settings.tls or any(rt.options_for(item, "").tls for item in request.session.items)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any], browser_type: Any,
                             request: pytest.FixtureRequest,
                             _flaskserve_runtime: Runtime) -> dict[str, Any]:
    """pytest-playwright's launch options, plus for Chromium the installed binary when
    Playwright's own build is absent (none is downloaded), the CI flags, and, when tests
    serve HTTPS, acceptance of the session's server certificate alone."""
    from pytest_flaskserve import browsers  # only a run that launches a browser needs it

    args = dict(browser_type_launch_args)
    if browser_type.name != "chromium":
        return args
    own_build = not args.get("channel") and os.path.exists(browser_type.executable_path)
    if not own_build and not args.get("channel") and "executable_path" not in args:
        installed = browsers.chromium_executable()
        if installed is not None:
            args["executable_path"] = installed
    extra = list(args.get("args") or ())
    if _needs_tls(request, _flaskserve_runtime):
        extra.append(browsers.spki_flag(_flaskserve_runtime.session_tls().files().cert_path))
    args["args"] = browsers.chromium_flags(extra)
    return args


@pytest.fixture
def new_context(new_context: Callable[..., Any], browser_context_args: dict[str, Any],
                request: pytest.FixtureRequest) -> Callable[..., Any]:
    """pytest-playwright's ``new_context``, with ``base_url`` set to this test's server
    when the test uses one and set no ``base_url`` of its own (``page`` and ``context``
    are made through it)."""
    marker = next(request.node.iter_markers("browser_context_args"), None)
    chosen = "base_url" in browser_context_args or (
        marker is not None and "base_url" in marker.kwargs)

    def new_context_on_this_server(**kwargs: Any) -> Any:
        if not chosen and "base_url" not in kwargs:
            url = _server_url(request)
            if url is not None:
                kwargs["base_url"] = url
        return new_context(**kwargs)

    return new_context_on_this_server

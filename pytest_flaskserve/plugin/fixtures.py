"""The plugin's fixtures, thin: each imports what it needs when a test first asks for
it, so loading the plugin costs nothing in a run that starts no server. Servers are
shared per (spec, server, options) for the session by default (see :mod:`provision`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flaskserve.errors import hide_own_errors

if TYPE_CHECKING:
    from pytest_flaskserve.lifecycle.supervisor import ServerHandle
    from pytest_flaskserve.parity.compare import Parity
    from pytest_flaskserve.plugin.provision import ServerFactory
    from pytest_flaskserve.plugin.reloader import ReloaderFactory
    from pytest_flaskserve.plugin.session import Pool, Runtime
    from pytest_flaskserve.plugin.settings import Settings

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

#: the settings of this run: loaded when pytest is configured if the run sets anything,
#: else by :func:`settings` when a test first asks for a server (absent: all defaults)
SETTINGS_KEY: pytest.StashKey[Settings] = pytest.StashKey()
#: the session's state, made when a test first asks for a server (absent: none did)
RUNTIME_KEY: pytest.StashKey[Runtime] = pytest.StashKey()
#: the servers a test used, whose logs its report shows when it fails
HANDLES_KEY: pytest.StashKey[list[ServerHandle]] = pytest.StashKey()


def settings(config: pytest.Config) -> Settings:
    """This run's :class:`~pytest_flaskserve.plugin.settings.Settings`, loaded on first use
    (raises UsageError)."""
    loaded = config.stash.get(SETTINGS_KEY, None)
    if loaded is None:
        from pytest_flaskserve.plugin.settings import configure

        loaded = configure(config)
    return loaded


def runtime(config: pytest.Config) -> Runtime:
    """The session's :class:`~pytest_flaskserve.plugin.session.Runtime`, made on first use."""
    rt = config.stash.get(RUNTIME_KEY, None)
    if rt is None:
        from pytest_flaskserve.plugin.session import Runtime

        rt = config.stash[RUNTIME_KEY] = Runtime(
            settings=settings(config), rootdir=str(config.rootpath),
            worker=os.environ.get("PYTEST_XDIST_WORKER", ""), verbose=config.get_verbosity())
    return rt


@pytest.fixture(scope="session")
def _flaskserve_runtime(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = runtime(request.config)
    if rt.log_dir is None:
        rt.log_dir = tmp_path_factory.mktemp("flaskserve", numbered=True)
        rt.session_dir = tmp_path_factory.mktemp("flaskserve-session", numbered=True)
    rt.start_warm()
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def _flaskserve_module_pool() -> Iterator[Pool]:
    from pytest_flaskserve.plugin.session import Pool

    pool = Pool()
    yield pool
    pool.close()


@pytest.fixture
def flask_server_name(request: pytest.FixtureRequest) -> str:
    """The server this test instance runs on (the id in ``test_x[gunicorn]``)."""
    return str(getattr(request, "param", "flask-run"))


@pytest.fixture
def flask_server(request: pytest.FixtureRequest, flask_server_name: str,
                 _flaskserve_runtime: Runtime) -> Iterator[ServerHandle]:
    """A running server for this test: ``.url``, ``.server``, ``.pid``, ``.command``,
    ``.log_path``, ``read_log()``, ``wait_for_log()``, ``stop()``; ``str()`` is the URL."""
    from pytest_flaskserve.plugin.provision import server_for_test

    yield from server_for_test(request, _flaskserve_runtime, flask_server_name)


@pytest.fixture
def flask_url(flask_server: ServerHandle) -> str:
    """The base URL of this test's server, e.g. ``http://127.0.0.1:38211``."""
    return flask_server.url


@pytest.fixture
def flask_http(flask_server: ServerHandle) -> Iterator[Any]:
    """A ``requests.Session`` bound to the server: ``flask_http.get("/")``; over TLS it
    trusts the session's CA (``verify=flask_server.ca_path``)."""
    from pytest_flaskserve.client import BaseUrlSession

    with BaseUrlSession(flask_server.url, ca_path=flask_server.ca_path) as session:
        yield session


@pytest.fixture
def flask_server_factory(request: pytest.FixtureRequest,
                         _flaskserve_runtime: Runtime) -> Iterator[ServerFactory]:
    """Start one-off servers: ``flask_server_factory("gunicorn", "hello:app", workers=2)``."""
    from pytest_flaskserve.plugin.provision import ServerFactory

    factory = ServerFactory(_flaskserve_runtime, request.node)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def flask_parity(request: pytest.FixtureRequest, _flaskserve_runtime: Runtime) -> Iterator[Parity]:
    """Send one request to every server and compare status, headers and body.

    ``flask_parity.get("/")``, ``.post("/upload", body=iter([b"a", b"b"]))`` (chunked),
    ``.request("PUT", "/x", headers=..., json=...)``; a difference fails the test with a
    side-by-side table. Servers: the ``flask_servers`` marker, ``--flask-servers``, or
    every available one; shared with ``flask_server`` tests of the same options.
    """
    from pytest_flaskserve.plugin.provision import parity_for_test

    yield from parity_for_test(request, _flaskserve_runtime)


@pytest.fixture
def flask_reloader(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   _flaskserve_runtime: Runtime) -> Iterator[ReloaderFactory]:
    """Start a reload-capable server on a copy of the app; edit the copy, wait for the
    outcome: ``server = flask_reloader("flask-run", "app:app"); server.break_syntax();
    assert server.wait_for_outcome().outcome is Outcome.SERVING_ERRORS``."""
    from pytest_flaskserve.plugin.reloader import ReloaderFactory

    factory = ReloaderFactory(_flaskserve_runtime, request.node, tmp_path_factory)
    try:
        yield factory
    finally:
        factory.close()


# -- state the test process and its servers share: files of this session ----------------
# Servers see the same paths as ``{session_dir}`` and ``{instance_path}`` in ``config=``
# values and with ``instance_path=True`` (see ``appspec.config`` and docs/config.md).
@pytest.fixture(scope="session")
def flask_session_dir(_flaskserve_runtime: Runtime) -> Path:
    """A temporary directory of this test session that servers see as ``{session_dir}``
    in ``config=`` values: a place for a database both the test and the servers open."""
    assert _flaskserve_runtime.session_dir is not None
    return _flaskserve_runtime.session_dir


@pytest.fixture(scope="session")
def flask_instance_path(flask_session_dir: Path) -> Path:
    """The instance folder servers give the app with ``instance_path=True``."""
    from pytest_flaskserve.appspec import config as app_config

    path = flask_session_dir / app_config.INSTANCE_DIR
    path.mkdir(exist_ok=True)
    return path

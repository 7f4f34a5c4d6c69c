"""Fixtures for state the test process and its servers share: files of this session.

Servers see the same paths as ``{session_dir}`` and ``{instance_path}`` in ``config=``
values and with ``instance_path=True`` (see ``appspec.config`` and docs/config.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_flaskserve.plugin.session import Runtime


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

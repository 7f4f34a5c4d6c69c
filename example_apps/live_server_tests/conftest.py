"""A test setup written for pytest-flask (the tutorial's pattern): an ``app`` fixture
that calls the factory with test config and a temporary database. It runs unchanged
under pytest-flask's ``live_server`` and under pytest-flaskserve's (``-p no:flask``),
where every test runs on every server."""

import os
import tempfile

import pytest

from notes import create_app, init_db


@pytest.fixture(scope="session")
def app():
    fd, path = tempfile.mkstemp(suffix=".sqlite")
    os.close(fd)
    init_db(path)
    app = create_app({"TESTING": True, "DATABASE": path})
    app.config["TITLE"] = "Live notes"
    yield app
    os.unlink(path)

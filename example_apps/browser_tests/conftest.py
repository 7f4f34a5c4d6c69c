"""Browser tests of example_apps/notes on every server: one browser per session, a fresh
database per test (both sides open the file of the session directory)."""

import sqlite3

import pytest

from notes import init_db

pytestmark = pytest.mark.flask_app("notes")


@pytest.fixture(scope="session")
def db_path(flask_session_dir):
    path = flask_session_dir / "browser.db"
    init_db(str(path))
    return path


@pytest.fixture(autouse=True)
def empty_db(db_path):
    with sqlite3.connect(db_path) as db:
        db.execute("DELETE FROM note")
    db.close()


@pytest.fixture(scope="session")
def driver():
    """Selenium on the installed Chromium and ChromeDriver, with the CI flags."""
    from pytest_flaskserve.browsers import selenium_chrome

    with selenium_chrome() as driver:
        yield driver

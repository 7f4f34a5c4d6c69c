"""The same check written for pytest-flaskserve alone: no app object in the test process;
the database is a file of the session directory that the test and the servers open."""

import sqlite3

import pytest
import requests

from notes import init_db

pytestmark = [pytest.mark.flask_app("notes"), pytest.mark.flask_options(
    config={"TESTING": True, "TITLE": "Live notes", "DATABASE": "{session_dir}/notes.db"})]


def test_server_uses_the_database(flask_url, flask_session_dir):
    init_db(str(flask_session_dir / "notes.db"))
    answer = requests.post(flask_url + "/api/notes", json={"text": "from a test"}, timeout=10)
    assert answer.status_code == 201
    with sqlite3.connect(flask_session_dir / "notes.db") as db:
        assert ("from a test",) in db.execute("SELECT text FROM note").fetchall()
    db.close()

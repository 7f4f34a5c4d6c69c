import sqlite3

import pytest
import requests


def test_page_has_the_test_config(live_server):
    html = requests.get(live_server.url("/"), timeout=10).text
    assert "<h1>Live notes</h1>" in html


def test_server_uses_the_fixture_database(live_server, app):
    answer = requests.post(live_server.url("/api/notes"), json={"text": "from a test"},
                           timeout=10)
    assert answer.status_code == 201
    with sqlite3.connect(app.config["DATABASE"]) as db:
        assert ("from a test",) in db.execute("SELECT text FROM note").fetchall()
    db.close()


@pytest.mark.options(title="Options marker")
def test_options_marker_sets_config(app):
    assert app.config["TITLE"] == "Options marker"


def test_url_host_and_port(live_server):
    assert live_server.url() == f"http://{live_server.host}:{live_server.port}"
    assert live_server.url("/api/notes").endswith(f":{live_server.port}/api/notes")

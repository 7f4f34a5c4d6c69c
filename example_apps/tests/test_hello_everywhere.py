"""What a user writes: plain tests against a base URL, run once per server.

    pytest example_apps/tests --flask-app=example_apps/hello.py -v
"""

import requests


def test_index(flask_url):
    response = requests.get(flask_url + "/", timeout=10)
    assert response.status_code == 200
    assert response.text == "Hello, World!"


def test_json(flask_http):
    assert flask_http.get("/ping").json() == {"pong": "ok"}


def test_unknown_path_is_404(flask_http):
    assert flask_http.get("/no-such-page").status_code == 404

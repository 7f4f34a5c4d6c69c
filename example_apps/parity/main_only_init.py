"""Setup that only runs under ``python main_only_init.py``.

The configuration is filled in inside the ``if __name__ == "__main__":`` block, right
before ``app.run()``. That works for whoever starts the app as a script (the app-run
server answers 200), and nowhere else: ``flask run``, Gunicorn, Waitress and uWSGI import
the module, the block never runs, and ``/greeting`` fails with 500 (KeyError). Caught by
the smoke suite: ``smoke::routes[gunicorn]`` (a 5xx) and ``smoke::same-status[app-run]``
(200 there, 500 on flask-run).
"""

from flask import Flask

app = Flask(__name__)
SETTINGS: dict[str, str] = {}


@app.get("/")
def index() -> str:
    return "GET /greeting"


@app.get("/greeting")
def greeting() -> str:
    return SETTINGS["greeting"]


if __name__ == "__main__":
    SETTINGS["greeting"] = "hello from the script"
    app.run()

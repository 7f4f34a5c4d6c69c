"""A project to break and fix under a reloader: ``flask --app app run --reload``,
``gunicorn --reload app:app``, or ``python app.py`` (the tutorial's ``debug=True``).

The reloader tests edit a copy of this folder, never this file.
"""

import json
from pathlib import Path

from flask import Flask
from helpers import greeting

SETTINGS = json.loads((Path(__file__).parent / "settings.json").read_text(encoding="utf-8"))

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "v1"


@app.get("/greeting")
def greet() -> str:
    return greeting(SETTINGS["name"])


if __name__ == "__main__":
    app.run(debug=True)

"""A small app in the style of Flask's tutorial: an application factory, a SQLite database
in the instance folder, and a page whose form posts with ``fetch()``.

``create_app(test_config)`` takes config the way the tutorial's does; ``DATABASE``
defaults to ``notes.sqlite`` in the instance folder. ``python -m notes`` runs it.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from flask import Flask, current_app, g, jsonify, request

SCHEMA = "CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"

PAGE = """<!doctype html>
<html lang="en">
<title>{title}</title>
<h1>{title}</h1>
<form id="add">
  <label for="text">Note</label> <input id="text" name="text" required>
  <button type="submit">Add</button>
</form>
<p id="status" role="status"></p>
<ul id="notes"></ul>
<script>
async function refresh() {{
  const notes = await (await fetch("api/notes")).json();
  const list = document.getElementById("notes");
  list.replaceChildren(...notes.map(n => Object.assign(
    document.createElement("li"), {{textContent: n.text}})));
}}
document.getElementById("add").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const field = document.getElementById("text");
  const answer = await fetch("api/notes", {{
    method: "POST", headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{text: field.value}}),
  }});
  document.getElementById("status").textContent =
    answer.ok ? "saved" : "error " + answer.status;
  field.value = "";
  await refresh();
}});
refresh();
</script>
"""


def get_db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"])
        g.db.execute(SCHEMA)
    db: sqlite3.Connection = g.db
    return db


def init_db(path: str) -> None:
    """Create the table (if needed) in the database at ``path``."""
    with sqlite3.connect(path) as db:
        db.execute(SCHEMA)
    db.close()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        TITLE="Notes",
        DATABASE=os.path.join(app.instance_path, "notes.sqlite"),
    )
    if test_config is not None:
        app.config.from_mapping(test_config)
    os.makedirs(os.path.dirname(app.config["DATABASE"]) or ".", exist_ok=True)

    @app.teardown_appcontext
    def close_db(error: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.get("/")
    def index() -> str:
        return PAGE.format(title=current_app.config["TITLE"])

    @app.get("/api/notes")
    def list_notes() -> Any:
        rows = get_db().execute("SELECT text FROM note ORDER BY id").fetchall()
        return jsonify([{"text": text} for (text,) in rows])

    @app.post("/api/notes")
    def add_note() -> Any:
        text = (request.get_json(silent=True) or {}).get("text", "").strip()
        if not text:
            return jsonify(error="text is required"), 400
        db = get_db()
        db.execute("INSERT INTO note (text) VALUES (?)", (text,))
        db.commit()
        return jsonify(text=text), 201

    @app.get("/api/settings")
    def settings() -> Any:
        """What the servers' config tests read back."""
        return jsonify(testing=current_app.testing, title=current_app.config["TITLE"],
                       database=current_app.config["DATABASE"],
                       instance_path=current_app.instance_path,
                       extra=current_app.config.get("EXTRA"))

    return app

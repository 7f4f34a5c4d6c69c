"""In-memory state: a hit counter kept in a module global.

Under the dev server (one process) the count goes 1, 2, 3...; under ``gunicorn -w 4``
each worker process has its own counter, so consecutive requests see diverging counts.
This is the classic bug that only shows in production.
"""

import os

from flask import Flask, jsonify

app = Flask(__name__)
HITS = {"count": 0}


@app.get("/")
def index() -> str:
    return "stateful"


@app.post("/hit")
def hit() -> object:
    HITS["count"] += 1
    return jsonify(count=HITS["count"], pid=os.getpid())


@app.get("/count")
def count() -> object:
    return jsonify(count=HITS["count"], pid=os.getpid())


if __name__ == "__main__":
    app.run()

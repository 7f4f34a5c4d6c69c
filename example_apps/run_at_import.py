"""An app that calls app.run() at import time, outside a __main__ guard.

``flask run`` ignores the call; under Gunicorn the development server starts inside the
worker; under Waitress the import never returns.
"""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "ran at import"


app.run(port=5000)

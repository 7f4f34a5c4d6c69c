"""An app with no ``if __name__ == "__main__":`` block: ``python no_guard.py`` defines the
app and exits without serving. Fine for flask run and Gunicorn; no script entry point."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "no guard"

"""The smallest app: one route, and the script entry point users run with python hello.py."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "Hello, World!"


@app.get("/ping")
def ping() -> dict[str, str]:
    return {"pong": "ok"}


if __name__ == "__main__":
    app.run()

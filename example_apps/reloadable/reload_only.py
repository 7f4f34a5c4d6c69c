"""The same kind of app with the reloader but not the debugger: ``app.run(use_reloader=True)``."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "v1"


if __name__ == "__main__":
    app.run(use_reloader=True)

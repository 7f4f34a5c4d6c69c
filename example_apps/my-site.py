"""A script whose file name is not an identifier: Flask imports it as module ``my-site``
(``flask --app my-site run``), and so must every server."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "served from my-site.py"


if __name__ == "__main__":
    app.run()

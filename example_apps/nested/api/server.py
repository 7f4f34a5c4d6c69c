"""An app deep in a package (spec ``nested.api.server:app``) using a relative import, so
its script entry point must run as ``python -m nested.api.server``."""

from flask import Flask

from .routes import register

app = Flask(__name__)
register(app)

if __name__ == "__main__":
    app.run(port=8000)

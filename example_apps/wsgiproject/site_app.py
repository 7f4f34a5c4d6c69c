from flask import Flask


def build() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        return "served through wsgi.py"

    return app

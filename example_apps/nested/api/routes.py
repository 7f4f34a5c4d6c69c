from flask import Flask


def register(app: Flask) -> None:
    @app.get("/")
    def index() -> str:
        return "nested api"

"""A module that exposes its app only as ``application`` (the WSGI convention)."""

from flask import Flask

application = Flask(__name__)


@application.get("/")
def index() -> str:
    return "served as application"


if __name__ == "__main__":
    application.run()

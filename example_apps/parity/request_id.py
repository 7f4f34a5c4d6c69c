"""A header that differs on every response (``X-Request-Id``), for configuring which
headers ``flask_parity`` ignores (``flask_parity_ignore_headers`` in the ini file)."""

import uuid

from flask import Flask, Response

app = Flask(__name__)


@app.after_request
def add_request_id(response: Response) -> Response:
    response.headers["X-Request-Id"] = uuid.uuid4().hex
    return response


@app.get("/")
def index() -> str:
    return "every response has its own X-Request-Id"


if __name__ == "__main__":
    app.run()

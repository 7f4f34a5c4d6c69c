"""A chunked upload: ``Transfer-Encoding: chunked`` with no Content-Length.

The Werkzeug dev server, Gunicorn and Waitress de-chunk the body and the view sees every
byte; uWSGI's ``--http-socket`` passes the request on without a length, so Flask reads an
empty body (``received`` is 0) and the upload is silently lost. A fixed-length upload
works everywhere. Caught by ``flask_parity.post("/upload", body=iter([...]))``.
"""

import hashlib

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "POST a file to /upload"


@app.post("/upload")
def upload() -> object:
    data = request.get_data()
    return jsonify(received=len(data), sha256=hashlib.sha256(data).hexdigest())


if __name__ == "__main__":
    app.run()

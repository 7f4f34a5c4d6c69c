"""A streamed response: a generator that yields a line every 0.1 s.

Every server delivers the lines as they are produced (the first arrives long before the
last), which ``flask_parity`` can check from each response's arrival times. HEAD is
where they differ: Waitress answers ``HEAD /events`` with ``Transfer-Encoding: chunked``
and then sends the empty chunked body ``0\\r\\n\\r\\n``, bytes a HEAD response must not
have (RFC 9110, 9.3.2). Waitress closes the connection afterwards, which keeps plain
clients working; a proxy that reuses upstream connections reads such bytes as the start
of the next response. Caught by the smoke suite's ``smoke::head[waitress]``.
"""

import time

from flask import Flask, Response

app = Flask(__name__)
LINES = 4
PAUSE = 0.1


@app.get("/")
def index() -> str:
    return "GET /events streams a few lines"


@app.get("/events")
def events() -> Response:
    def generate():  # type: ignore[no-untyped-def]
        for i in range(LINES):
            yield f"event {i}\n"
            time.sleep(PAUSE)

    return Response(generate(), mimetype="text/plain")


if __name__ == "__main__":
    app.run()

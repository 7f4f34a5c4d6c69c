"""A request longer than Gunicorn's worker timeout.

``GET /slow?seconds=2`` takes two seconds. The dev server, Waitress and uWSGI (no
harakiri by default) answer 200; under Gunicorn with ``--timeout 1`` the arbiter aborts
the sync worker mid-request ("WORKER TIMEOUT" in its log) and the client gets Gunicorn's
own "Internal Server Error" page instead of the answer. Gunicorn's default timeout is
30 s, so in production this is the report export or slow upstream call that "works on my
machine". Caught by a ``flask_parity`` test with
``@pytest.mark.flask_options(extra_args={"gunicorn": ["--timeout", "1"]})``.
Without ``seconds`` the route answers at once, so the smoke suite can request it.
"""

import time

from flask import Flask, request

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "GET /slow?seconds=N"


@app.get("/slow")
def slow() -> str:
    seconds = min(float(request.args.get("seconds", "0")), 10.0)
    time.sleep(seconds)
    return f"done after {seconds:g} s"


if __name__ == "__main__":
    app.run()

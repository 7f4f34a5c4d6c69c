"""``request.remote_addr``, ``request.scheme`` and ``url_for(..., _external=True)`` as
each server reports them, behind a reverse proxy that sends ``X-Forwarded-*`` headers.

Gunicorn (``forwarded_allow_ips`` defaults to 127.0.0.1) and uWSGI honour
``X-Forwarded-Proto`` from a local peer and report ``https``; the Werkzeug dev server and
Waitress ignore it (unless the app uses ``ProxyFix``) and report ``http``. So the same
request builds ``https://`` links in production and ``http://`` links in development,
and nobody trusts ``X-Forwarded-For`` for ``remote_addr``. Caught by
``flask_parity.get("/whoami", headers={"X-Forwarded-Proto": "https", ...})``.
"""

from flask import Flask, jsonify, request, url_for

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "GET /whoami"


@app.get("/whoami")
def whoami() -> object:
    return jsonify(
        remote_addr=request.remote_addr,
        scheme=request.scheme,
        external_url=url_for("whoami", _external=True),
    )


if __name__ == "__main__":
    app.run()

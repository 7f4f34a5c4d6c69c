"""An app whose behaviour changes behind nginx, the way deployed apps do.

``create_app()`` is the app as many are written: no ProxyFix, so behind nginx it builds
external URLs from the address nginx connects to. ``create_app(proxy_fix=True)`` applies
ProxyFix as Flask's deployment docs say. The other routes meet nginx's defaults: a 1 MB
body limit (``/upload``), response buffering (``/stream``) and ``proxy_read_timeout``
(``/slow``).
"""

import os
import time
from urllib.parse import quote

from flask import Flask, Response, redirect, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix


def create_app(proxy_fix=False):
    app = Flask(__name__)
    if proxy_fix:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)

    @app.get("/")
    def index():
        return "home"

    @app.get("/where")
    def where():
        # what a password-reset e-mail or an OAuth redirect_uri would contain
        return url_for("index", _external=True)

    @app.get("/login")
    def login():
        # off to an identity provider, which sends the user back to return_to
        back = quote(url_for("index", _external=True), safe="")
        return redirect(f"https://idp.example/authorize?return_to={back}")

    @app.post("/upload")
    def upload():
        return str(len(request.get_data()))

    @app.get("/stream")
    def stream():
        release = request.args.get("release", "")

        def generate():
            yield "first\n"
            deadline = time.monotonic() + 10
            while release and not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.01)
            yield "last\n"

        return Response(generate(), mimetype="text/plain")

    @app.get("/slow")
    def slow():
        time.sleep(float(request.args.get("seconds", "2")))
        return "slow answer"

    return app


app = create_app()

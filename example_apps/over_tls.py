"""An app deployed over TLS that gets https wrong the way deployed apps do.

``create_app()`` is the app as often written: no ProxyFix, so behind nginx terminating
TLS it builds ``http://`` external URLs; and a hand-written session interface (a sliding
session: the cookie is re-sent on every request to push its expiry) that forgets
``Secure`` although ``SESSION_COOKIE_SECURE`` is True. ``create_app(fixed=True)`` is the
correct twin: ProxyFix as Flask's deployment docs say, and the interface passes the
app's ``Secure`` setting on.
"""

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from flask import Flask, redirect, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix


class SlidingSessionInterface(SecureCookieSessionInterface):
    """Re-sends the session cookie on every response with a fresh 30-minute expiry."""

    def __init__(self, keep_secure):
        self.keep_secure = keep_secure

    def save_session(self, app, session, response):
        serializer = self.get_signing_serializer(app)
        if serializer is None or not session:
            return
        expires = datetime.now(timezone.utc) + timedelta(minutes=30)
        response.set_cookie(
            self.get_cookie_name(app), serializer.dumps(dict(session)), expires=expires,
            httponly=True, samesite="Lax", path=self.get_cookie_path(app),
            # the bug: without this line the cookie goes out without Secure
            secure=self.get_cookie_secure(app) if self.keep_secure else False)


def create_app(fixed=False):
    app = Flask(__name__)
    app.config.update(SECRET_KEY="over-tls-example", SESSION_COOKIE_SECURE=True)
    app.session_interface = SlidingSessionInterface(keep_secure=fixed)
    if fixed:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)

    @app.get("/")
    def index():
        session["visits"] = session.get("visits", 0) + 1
        return f"visit {session['visits']}"

    @app.get("/where")
    def where():
        # what a password-reset e-mail or an OAuth redirect_uri would contain
        return url_for("index", _external=True)

    @app.get("/login")
    def login():
        back = quote(url_for("index", _external=True), safe="")
        return redirect(f"https://idp.example/authorize?return_to={back}")

    return app


app = create_app()

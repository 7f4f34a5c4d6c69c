"""What an app served over TLS gets wrong in the answers it sends: URLs that name
``http://`` where the client used ``https://``, and a session cookie without ``Secure``
although the app asks for it. Nothing here sends a request: it reads responses already
received (the smoke suite's cached GETs).
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from urllib.parse import unquote, urlsplit

from pytest_flaskserve.parity.wire import Exchange

#: why a URL says http behind a TLS-terminating proxy, and the fix
BEHIND_PROXY_HINT = (
    "nginx terminates TLS and talks plain HTTP to the server, so without ProxyFix the app "
    "sees http; nginx sends X-Forwarded-Proto https: apply ProxyFix with x_proto=1 "
    "(from werkzeug.middleware.proxy_fix import ProxyFix; app.wsgi_app = "
    "ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1))")
#: why a URL says http when the server itself terminates TLS
NATIVE_HINT = (
    "the server terminates TLS itself and tells the app https (wsgi.url_scheme), so the "
    "http comes from the app: a hard-coded http:// URL, url_for(..., _scheme='http'), or a "
    "URL built outside the request from PREFERRED_URL_SCHEME='http'; build external URLs "
    "with url_for(..., _external=True) inside the request")


def http_urls(client_url: str, upstream_url: str | None,
              answers: Mapping[str, Exchange]) -> list[str]:
    """One line per answer whose ``Location`` or body names ``http://`` on the address the
    client used over https (or on the server behind the proxy, ``upstream_url``)."""
    client = urlsplit(client_url).netloc
    upstream = urlsplit(upstream_url).netloc if upstream_url else ""
    found = []
    for path, ex in answers.items():
        texts = [("Location", unquote(ex.header("Location") or ""))]
        if ex.body:
            texts.append(("body", unquote(ex.body[:65536].decode("utf-8", errors="replace"))))
        for where, text in texts:
            for authority in filter(None, (client, upstream)):
                at = text.find(f"http://{authority}")
                if at != -1:
                    found.append(f"GET {path}: its {where} names http://{authority} although "
                                 f"the client used https://{client}: {text[at:at + 100]!r}")
                    break
    return found


def cookie_flags(header: str) -> tuple[str, bool] | None:
    """(name, has Secure) of one ``Set-Cookie`` value, or None if it does not parse."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    for name, morsel in jar.items():
        return name, bool(morsel["secure"])
    return None


def session_cookies(name: str, answers: Mapping[str, Exchange]) -> list[tuple[str, str, bool]]:
    """(path, Set-Cookie value, has Secure) for every ``Set-Cookie`` of cookie ``name``."""
    found = []
    for path, ex in answers.items():
        for value in ex.header_values("Set-Cookie"):
            flags = cookie_flags(value)
            if flags is not None and flags[0] == name:
                found.append((path, value, flags[1]))
    return found

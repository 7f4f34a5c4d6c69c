"""Whether an app behind a proxy names the client-facing address in the URLs it builds.

Behind nginx the app is reached at the server's own address; without ProxyFix (or with
it configured for the wrong headers) ``url_for(..., _external=True)`` and absolute
redirects name that address, or ``http`` where the client used ``https``. Nothing here
sends a request: it reads responses already received.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from pytest_flaskserve.parity.wire import Exchange

PROXY_FIX_HINT = (
    "apply ProxyFix as Flask's deployment docs say: from werkzeug.middleware.proxy_fix "
    "import ProxyFix; app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, "
    "x_prefix=1) (one per proxy in front of the app)")


def _authority(url: str) -> str:
    return urlsplit(url).netloc


def leaks(client_url: str, upstream_url: str, answers: Mapping[str, Exchange]) -> list[str]:
    """One line per response that names the server behind the proxy, or the client-facing
    host with another scheme, in its ``Location`` or its body."""
    client = urlsplit(client_url)
    upstream = _authority(upstream_url)
    found = []
    for path, ex in answers.items():
        location = ex.header("Location") or ""
        texts = [("Location", unquote(location))]
        if ex.body:
            texts.append(("body", unquote(ex.body[:65536].decode("utf-8", errors="replace"))))
        for where, text in texts:
            if upstream and f"//{upstream}" in text:
                found.append(f"GET {path}: its {where} names {upstream_url} (the server behind "
                             f"the proxy), not {client_url}: {text[:120]!r}")
            elif where == "Location" and text.startswith("http"):
                target = urlsplit(text)
                if target.netloc == client.netloc and target.scheme != client.scheme:
                    found.append(f"GET {path}: redirects to {target.scheme}:// but the client "
                                 f"used {client.scheme}://: {text[:120]!r}")
    return found

"""The smoke suite's TLS checks end to end: inner pytest runs with --flask-smoke
--flask-tls on a real Gunicorn terminating TLS itself and a real Cheroot behind a real
nginx terminating TLS, serving example_apps/over_tls.py with its two mistakes and
its correct twin."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pytest_flaskserve.proxy import nginx

EXAMPLES = Path(__file__).resolve().parent.parent / "example_apps"
ARGS = ["--flask-smoke", "--flask-tls", "--flask-servers=gunicorn,cheroot+nginx",
        "-k", "https-urls or secure-cookie", "-p", "no:randomly", "-rA"]

pytestmark = pytest.mark.skipif(nginx.unavailable() is not None and not os.environ.get("CI"),
                                reason=nginx.unavailable() or "")


def _outcomes(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED") and rest.startswith("smoke::"):
            found[rest.split(" ")[0]] = word
    return found


def test_http_urls_and_a_cookie_without_secure_are_caught(pytester: pytest.Pytester) -> None:
    shutil.copy(EXAMPLES / "over_tls.py", pytester.path)
    result = pytester.runpytest_subprocess("--flask-app=over_tls:create_app()", *ARGS)
    out = result.stdout.str()
    assert _outcomes(out) == {
        # Gunicorn terminating TLS tells the app https: url_for is right without ProxyFix
        "smoke::https-urls[gunicorn]": "PASSED",
        "smoke::https-urls[cheroot+nginx]": "FAILED",
        "smoke::secure-cookie[gunicorn]": "FAILED",
        "smoke::secure-cookie[cheroot+nginx]": "FAILED",
    }, out
    assert "cheroot+nginx: the app builds http:// URLs although the client reached it over https://" in out
    assert "GET /where: its body names http://127.0.0.1:" in out
    assert "GET /login: its Location names http://127.0.0.1:" in out
    assert "apply ProxyFix with x_proto=1" in out
    assert "SESSION_COOKIE_SECURE is True, but 1 Set-Cookie of the session cookie 'session' on gunicorn lack Secure" in out
    assert "GET /: Set-Cookie: session=" in out
    assert "pass secure=self.get_cookie_secure(app)" in out


def test_the_correct_twin_passes(pytester: pytest.Pytester) -> None:
    shutil.copy(EXAMPLES / "over_tls.py", pytester.path)
    result = pytester.runpytest_subprocess("--flask-app=over_tls:create_app(fixed=True)", *ARGS)
    out = result.stdout.str()
    assert set(_outcomes(out).values()) == {"PASSED"} and len(_outcomes(out)) == 4, out
    assert "each with Secure" in out and "name no http:// URL of this site" in out
    result.assert_outcomes(passed=4)


def test_not_collected_without_tls(pytester: pytest.Pytester) -> None:
    shutil.copy(EXAMPLES / "over_tls.py", pytester.path)
    result = pytester.runpytest_subprocess("--flask-app=over_tls:create_app()", "--flask-smoke",
                                           "--flask-servers=gunicorn", "--collect-only", "-q")
    out = result.stdout.str()
    assert "smoke::starts[gunicorn]" in out
    assert "https-urls" not in out and "secure-cookie" not in out

"""HTTPS test servers (--flask-tls): every server that can terminates TLS itself with the
session's throwaway certificate; real handshakes with the ssl module, requests and httpx."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import parse_spec
from pytest_flaskserve.appspec.resolve import resolve_app
from pytest_flaskserve.errors import ServerStartupError, UsageError
from pytest_flaskserve.lifecycle.supervisor import StartConfig, start_server
from pytest_flaskserve.plugin.options import OPTIONS
from pytest_flaskserve.plugin.settings import load_settings
from pytest_flaskserve.servers import ServerOptions
from pytest_flaskserve.servers.waitress import Waitress
from pytest_flaskserve.tls import TLSFiles, make_tls_files

EXAMPLES = Path(__file__).resolve().parent.parent / "example_apps"

TLS_SERVERS = ["flask-run", "app-run", "gunicorn", "gunicorn-gthread", "gunicorn-gevent",
               "uwsgi", "granian", "cheroot"]

INNER_HELLO = r"""
import http.client
import json
import os
import ssl
from urllib.parse import urlsplit

import httpx
import pytest
import requests

def test_hello_over_tls(flask_server, flask_url, flask_http):
    assert flask_url.startswith("https://127.0.0.1:")
    response = flask_http.get("/")
    assert (response.status_code, response.text) == (200, "Hello, World!")
    assert response.url.startswith("https://")
    # another client, given the CA by path
    assert httpx.get(flask_url + "/", verify=flask_server.ca_path).text == "Hello, World!"
    with open(os.environ["CA_RECORD"], "a") as f:
        f.write(flask_server.ca_path + "\n")

def test_handshake_with_the_ssl_module(flask_server):
    url = urlsplit(flask_server.url)
    context = ssl.create_default_context(cafile=flask_server.ca_path)
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=10)
    try:
        conn.connect()  # the handshake, verified against the CA
        peer = conn.sock.getpeercert()
        names = {value for kind, value in peer["subjectAltName"]}
        assert {"localhost", "127.0.0.1", "0:0:0:0:0:0:0:1"} <= names
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"Hello, World!")
    finally:
        conn.close()

def test_not_trusted_without_our_ca(flask_server):
    # the system's trust store has never heard of the session's CA
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(flask_server.url + "/", timeout=10)

def test_plain_http_is_not_served(flask_server):
    plain = flask_server.url.replace("https://", "http://")
    try:
        response = requests.get(plain + "/", timeout=10)
    except requests.exceptions.ConnectionError:
        return  # closed the connection: no TLS handshake, nothing served
    # a server that answers plain HTTP on its TLS port at all says why it will not serve
    assert response.status_code == 400, response.text
"""


def test_every_tls_server_serves_hello_over_https(pytester: pytest.Pytester, examples: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    record = pytester.path / "ca-paths.txt"
    monkeypatch.setenv("CA_RECORD", str(record))
    pytester.makepyfile(test_inner=INNER_HELLO)
    result = pytester.runpytest_subprocess(
        "--flask-app=hello:app", "--flask-tls", "-v", "-rs",
        "--flask-servers=" + ",".join([*TLS_SERVERS, "waitress"]))
    result.assert_outcomes(passed=4 * len(TLS_SERVERS), skipped=4)
    for server in TLS_SERVERS:
        result.stdout.fnmatch_lines([f"*test_hello_over_tls?{server}? PASSED*"])
    result.stdout.fnmatch_lines(["*SKIPPED*Waitress has no TLS support*behind nginx*"])
    ca_paths = set(record.read_text().split())
    assert len(ca_paths) == 1, "one CA for the whole session"
    # the CA, the certificate and its key are removed when the session ends
    assert not Path(ca_paths.pop()).parent.exists()


def test_tls_from_the_marker_and_the_factory(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import httpx
        import pytest

        @pytest.mark.flask_servers("cheroot")
        @pytest.mark.flask_options(tls=True)
        def test_marker(flask_url, flask_http):
            assert flask_url.startswith("https://")
            assert flask_http.get("/").text == "Hello, World!"

        @pytest.mark.flask_servers("cheroot")
        def test_plain_by_default(flask_url, flask_server):
            assert flask_url.startswith("http://") and flask_server.ca_path is None

        def test_factory(flask_server_factory):
            handle = flask_server_factory("granian", "hello:app", tls=True)
            assert handle.url.startswith("https://")
            assert httpx.get(handle + "/", verify=handle.ca_path).text == "Hello, World!"
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "-v")
    result.assert_outcomes(passed=3)


def test_tls_option_has_ini_and_env_twins(tmp_path: Path) -> None:
    option = next(o for o in OPTIONS if o.dest == "tls")
    assert (option.flag, option.ini, option.env) == ("--flask-tls", "flask_tls", "FLASKSERVE_TLS")

    def settings(cli: dict[str, object], ini: dict[str, object], env: dict[str, str]) -> bool:
        loaded = load_settings(cli, ini.get, env, invocation_dir=str(tmp_path),
                               ini_dir=str(tmp_path), rootdir=str(tmp_path),
                               default_app=lambda _: None)
        return loaded.tls

    assert settings({}, {}, {}) is False
    assert settings({"tls": True}, {}, {}) is True
    assert settings({}, {"flask_tls": "true"}, {}) is True
    assert settings({}, {}, {"FLASKSERVE_TLS": "1"}) is True
    with pytest.raises(UsageError, match="FLASKSERVE_TLS='maybe' is not a boolean"):
        settings({}, {}, {"FLASKSERVE_TLS": "maybe"})


def test_marker_tls_must_be_a_bool(pytester: pytest.Pytester, examples: Path) -> None:
    pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.flask_options(tls="yes")
        def test_x(flask_url):
            pass
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-servers=cheroot")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*flask_options(tls='yes'): use True or False*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# -- startup failures over TLS, with start_server as a benchmark or a plugin would call it --

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSFiles]:
    files = make_tls_files(tmp_path_factory.mktemp("tls") / "session")
    yield files
    files.remove()


def _hello() -> object:
    return resolve_app(parse_spec("hello:app", str(EXAMPLES), source="test"), timeout=30)


def test_a_certificate_from_another_ca_is_a_clear_startup_failure(
        tmp_path: Path, tls_files: TLSFiles) -> None:
    stranger = make_tls_files(tmp_path / "other-ca")
    launcher = servers.get("gunicorn")
    if launcher.unavailable():
        pytest.skip(launcher.unavailable() or "")
    # the user's own certificate (say from gunicorn.conf.py) replaces the plugin's
    options = ServerOptions(tls=True, extra_args=("--certfile", str(stranger.cert_path),
                                                  "--keyfile", str(stranger.key_path)))
    with pytest.raises(ServerStartupError) as info:
        start_server(launcher, _hello(), options,  # type: ignore[arg-type]
                     StartConfig(log_dir=tmp_path, tls=tls_files, startup_timeout=20))
    report = str(info.value)
    assert "did not verify against the session's CA" in report
    assert "served a certificate other than the session's" in info.value.diagnosis[0]
    assert "failed to start 'hello:app': the server's TLS certificate" in report


class _WaitressClaimingTLS(Waitress):
    """A launcher that says it terminates TLS and renders nothing for it: the real
    Waitress then answers the handshake in plain HTTP."""

    name = "waitress-claims-tls"
    terminates_tls = True

    def tls_unsupported(self) -> str | None:
        return None


def test_a_server_answering_plain_http_fails_at_once(tmp_path: Path, tls_files: TLSFiles) -> None:
    launcher = _WaitressClaimingTLS()
    if launcher.unavailable():
        pytest.skip(launcher.unavailable() or "")
    with pytest.raises(ServerStartupError) as info:
        start_server(launcher, _hello(), ServerOptions(tls=True),  # type: ignore[arg-type]
                     StartConfig(log_dir=tmp_path, tls=tls_files, startup_timeout=20))
    assert "answers plain HTTP, not the TLS handshake" in str(info.value)
    assert "started for TLS but answered in plain HTTP" in info.value.diagnosis[0]


def test_tls_on_a_server_without_tls_is_a_usage_error(tmp_path: Path, tls_files: TLSFiles) -> None:
    with pytest.raises(UsageError, match="Waitress has no TLS support"):
        start_server(servers.get("waitress"), _hello(), ServerOptions(tls=True),  # type: ignore[arg-type]
                     StartConfig(log_dir=tmp_path, tls=tls_files))
    with pytest.raises(UsageError, match="needs the certificate"):
        start_server(servers.get("cheroot"), _hello(), ServerOptions(tls=True),  # type: ignore[arg-type]
                     StartConfig(log_dir=tmp_path))


def test_key_is_pkcs8_and_private(tls_files: TLSFiles) -> None:
    assert tls_files.key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert tls_files.key_path.stat().st_mode & 0o077 == 0
    context = ssl.create_default_context(cafile=str(tls_files.ca_path))
    assert context.cert_store_stats()["x509_ca"] == 1


def test_smoke_and_parity_speak_https_under_tls(pytester: pytest.Pytester, examples: Path) -> None:
    """The smoke checks and flask_parity send their requests over TLS, trusting the CA
    (plain HTTP to a TLS port would fail every check), workers pinned over TLS too."""
    pytester.makepyfile(test_inner="""
        def test_same_everywhere(flask_parity):
            flask_parity.get("/")
            flask_parity.head("/")
    """)
    result = pytester.runpytest_subprocess(
        "--flask-app=hello:app", "--flask-tls", "--flask-smoke",
        "--flask-servers=gunicorn,flask-run", "-v")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*smoke::routes?gunicorn? PASSED*", "*smoke::head?gunicorn? PASSED*",
                                 "*smoke::workers?gunicorn? PASSED*",
                                 "*smoke::routes?flask-run? PASSED*",
                                 "*test_same_everywhere PASSED*"])


def test_the_reloader_serves_and_is_judged_over_tls(pytester: pytest.Pytester,
                                                    examples: Path) -> None:
    """flask_reloader follows --flask-tls like every other fixture, and its own probe (the
    outcome after an edit, ``server.get``) speaks HTTPS trusting the session's CA."""
    pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.parametrize("server", ["flask-run", "gunicorn"])
        def test_reload(flask_reloader, server):
            reloading = flask_reloader(server)
            assert reloading.handle.url.startswith("https://")
            assert reloading.get("/") == (200, "Hello, World!")
            reloading.replace("hello.py", "Hello, World!", "Hello, TLS!")
            assert reloading.wait_for_reload().outcome.name == "SERVING"
            assert reloading.get("/") == (200, "Hello, TLS!")
    """)
    result = pytester.runpytest_subprocess("--flask-app=hello:app", "--flask-tls", "-v")
    result.assert_outcomes(passed=2)

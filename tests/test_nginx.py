"""Behind a real nginx: every production server as deployed (proxy_pass, uwsgi_pass to
uWSGI's native socket), the divergences users meet there (external URLs without ProxyFix,
the 1 MB body limit, buffered streams, proxy_read_timeout), the user's own site file,
nginx's own start failures, selection, the smoke check and the fault cases."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from _processes import alive, ended_at_exit

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import parse_spec
from pytest_flaskserve.appspec.resolve import resolve_app
from pytest_flaskserve.errors import ServerStartupError, UsageError
from pytest_flaskserve.lifecycle.supervisor import ServerHandle, StartConfig, start_server
from pytest_flaskserve.proxy import nginx
from pytest_flaskserve.proxy.site_file import user_server_block
from pytest_flaskserve.servers import ServerOptions

EXAMPLES = Path(__file__).resolve().parent.parent / "example_apps"
PROXIED = ["gunicorn+nginx", "waitress+nginx", "uwsgi+nginx", "granian+nginx", "cheroot+nginx"]

pytestmark = pytest.mark.skipif(nginx.unavailable() is not None and not os.environ.get("CI"),
                                reason=nginx.unavailable() or "")


def _app(spec: str) -> object:
    return resolve_app(parse_spec(spec, str(EXAMPLES)), timeout=30)


def _start(name: str, spec: str, log_dir: Path, **config: object) -> ServerHandle:
    launcher = servers.get(name)
    why = launcher.unavailable()
    if why and not os.environ.get("CI"):
        pytest.skip(why)
    return start_server(launcher, _app(spec), ServerOptions(),  # type: ignore[arg-type]
                        StartConfig(log_dir=log_dir, **config))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerHandle]]:
    """Every production server behind nginx, and bare, serving behind_proxy.py without
    ProxyFix; started once for the module."""
    log_dir = tmp_path_factory.mktemp("nginx")
    handles: dict[str, ServerHandle] = {}
    try:
        for name in [*PROXIED, "gunicorn"]:
            handles[name] = _start(name, "behind_proxy:create_app()", log_dir)
        yield handles
    finally:
        for handle in handles.values():
            handle.stop()


@pytest.mark.parametrize("name", PROXIED)
def test_every_server_serves_behind_nginx(proxied: dict[str, ServerHandle], name: str) -> None:
    handle = proxied[name]
    response = requests.get(handle.url + "/", timeout=10)
    assert response.status_code == 200 and response.text == "home"
    assert response.headers["Server"].startswith("nginx/")
    assert handle.url != handle.upstream_url and handle.upstream.port != handle.port  # type: ignore[attr-defined]
    assert f"127.0.0.1:{handle.port}" in handle.nginx.config_path.read_text()  # type: ignore[attr-defined]
    # the request really went through nginx: its access log has it
    assert '"GET / HTTP/1.1" 200' in handle.nginx.access_log_path.read_text()  # type: ignore[attr-defined]


def test_uwsgi_behind_nginx_speaks_its_native_protocol(proxied: dict[str, ServerHandle]) -> None:
    handle = proxied["uwsgi+nginx"]
    assert "--socket" in handle.argv and "--http-socket" not in handle.argv
    assert "uwsgi_pass" in handle.nginx.config_path.read_text()  # type: ignore[attr-defined]
    # not HTTP: a plain HTTP request to the uwsgi socket gets no HTTP answer
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        requests.get(handle.upstream_url + "/", timeout=5)


def test_external_urls_name_the_server_behind_nginx_without_proxyfix(
        proxied: dict[str, ServerHandle]) -> None:
    """url_for(_external=True), and a redirect carrying it, name the address nginx
    connects to; uWSGI is the exception: uwsgi_pass hands it the client's Host."""
    for name in ("gunicorn+nginx", "waitress+nginx", "granian+nginx", "cheroot+nginx"):
        handle = proxied[name]
        assert requests.get(handle.url + "/where", timeout=10).text == handle.upstream_url + "/"
        login = requests.get(handle.url + "/login", allow_redirects=False, timeout=10)
        assert login.status_code == 302
        assert handle.upstream_url.replace(":", "%3A").replace("/", "%2F") in login.headers["Location"]
    uwsgi = proxied["uwsgi+nginx"]
    assert requests.get(uwsgi.url + "/where", timeout=10).text == uwsgi.url + "/"
    bare = proxied["gunicorn"]
    assert requests.get(bare.url + "/where", timeout=10).text == bare.url + "/"


def test_proxyfix_makes_external_urls_client_facing(tmp_path: Path) -> None:
    handle = _start("gunicorn+nginx", "behind_proxy:create_app(proxy_fix=True)", tmp_path)
    try:
        assert requests.get(handle.url + "/where", timeout=10).text == handle.url + "/"
    finally:
        handle.stop()


def test_upload_over_one_megabyte_is_refused_by_nginx(proxied: dict[str, ServerHandle]) -> None:
    body = b"x" * (1024 * 1024 + 1)
    bare = requests.post(proxied["gunicorn"].url + "/upload", data=body, timeout=30)
    assert bare.status_code == 200 and bare.text == str(len(body))
    for name in ("gunicorn+nginx", "uwsgi+nginx"):
        behind = requests.post(proxied[name].url + "/upload", data=body, timeout=30)
        assert behind.status_code == 413, name
        assert "client intended to send too large body" in proxied[name].nginx.log_path.read_text()  # type: ignore[attr-defined]
    # under the limit nothing changes
    small = requests.post(proxied["gunicorn+nginx"].url + "/upload", data=b"y" * 1000, timeout=10)
    assert small.text == "1000"


def _first_line(url: str, release: Path, wait: float) -> bool:
    """Whether the stream's first line reaches the client within ``wait`` s, while its
    end is held back; then releases the end and checks the whole body arrives."""
    host, port = url.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(f"GET /stream?release={release} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        deadline = time.monotonic() + wait
        while b"first" not in data and time.monotonic() < deadline:
            try:
                data += sock.recv(65536)
            except TimeoutError:
                break
        seen = b"first" in data
        release.touch()
        sock.settimeout(10)
        while chunk := sock.recv(65536):
            data += chunk
    assert b"first" in data and b"last" in data, data
    return seen


def test_streamed_response_arrives_only_at_the_end_under_buffering(
        proxied: dict[str, ServerHandle], tmp_path: Path) -> None:
    assert _first_line(proxied["gunicorn"].url, tmp_path / "bare", 5.0)
    for name in ("gunicorn+nginx", "uwsgi+nginx"):
        assert not _first_line(proxied[name].url, tmp_path / name, 0.5), name


def test_request_slower_than_proxy_read_timeout_is_a_504(tmp_path: Path) -> None:
    site = tmp_path / "site.conf"
    site.write_text("server {\n    listen 80;\n    listen [::]:80;\n    server_name example.com;\n"
                    "    location / {\n        proxy_pass http://127.0.0.1:8000;\n"
                    "        proxy_read_timeout 1s;\n    }\n}\n")
    handle = _start("waitress+nginx", "behind_proxy:create_app()", tmp_path, nginx_conf=site)
    try:
        assert requests.get(handle.upstream_url + "/slow?seconds=1.5", timeout=10).status_code == 200
        slow = requests.get(handle.url + "/slow?seconds=1.5", timeout=10)
        assert slow.status_code == 504
        assert "upstream timed out" in handle.nginx.log_path.read_text()  # type: ignore[attr-defined]
        assert any("site.conf (the server block of line 1; listen, upstream rewritten)" in n
                   for n in handle.notes), handle.notes
    finally:
        handle.stop()


def test_site_file_rewrites_only_listen_and_upstream(tmp_path: Path) -> None:
    site = tmp_path / "flask.conf"
    site.write_text("upstream app_server {\n    server 10.0.0.5:8000 fail_timeout=0;\n"
                    "    server 10.0.0.6:8000;\n}\n"
                    "server {\n    listen 443 ssl default_server;  # https\n    listen [::]:443 ssl;\n"
                    "    ssl_certificate /etc/ssl/site.pem;\n    client_max_body_size 4G;\n"
                    "    error_log /var/log/nginx/site.error.log warn;\n"
                    "    location / {\n        proxy_pass http://app_server;\n"
                    "        include uwsgi_params;\n    }\n"
                    "    location /u { uwsgi_pass unix:/run/app.sock; access_log off; }\n"
                    "    access_log /var/log/nginx/site.access.log;\n}\n")
    block = user_server_block(site, "127.0.0.1:5000", "127.0.0.1:6000", tls=("c.pem", "k.pem"))
    assert "listen 127.0.0.1:5000 ssl default_server;" in block and "[::]:443" not in block
    assert "ssl_certificate c.pem;" in block and "/etc/ssl/site.pem" not in block
    assert "server 127.0.0.1:6000;" in block and "10.0.0" not in block
    assert "proxy_pass http://app_server;" in block and "client_max_body_size 4G;" in block
    assert "uwsgi_pass 127.0.0.1:6000;" in block
    assert "/var/log" not in block and "access_log off;" in block
    assert "include /etc/nginx/uwsgi_params;" in block or "include uwsgi_params" not in block


#: the layout certbot leaves: a port-80 block that only redirects, and the HTTPS block
CERTBOT_SITE = """\
server {
    listen 80;
    listen [::]:80 ipv6only=on;
    server_name example.com;
    return 301 https://$host$request_uri;
}
server {
    listen [::]:443 ssl ipv6only=on http2;
    listen 443 ssl;
    server_name example.com;
    ssl_certificate /etc/letsencrypt/live/example.com/fullchain.pem;
    ssl_certificate_key /etc/letsencrypt/live/example.com/privkey.pem;
    include /etc/letsencrypt/options-ssl-nginx.conf;
    ssl_dhparam /etc/letsencrypt/ssl-dhparams.pem;
    location / {
        proxy_pass http://localhost:8000;
        proxy_set_header Host $host;
    }
}
server {
    server_name _;
    return 444;
}
"""


def test_of_several_server_blocks_the_one_that_serves_the_app_is_run(tmp_path: Path) -> None:
    """Only the block that passes requests on is run: the others would listen on the
    host's ports (the last one, with no listen at all, on nginx's default *:80)."""
    site = tmp_path / "certbot.conf"
    site.write_text(CERTBOT_SITE)
    block = user_server_block(site, "127.0.0.1:5000", "127.0.0.1:6000", tls=("c.pem", "k.pem"))
    assert [line.strip() for line in block.splitlines() if "listen" in line] == [
        "listen 127.0.0.1:5000 ssl http2;"]
    assert "return" not in block and "letsencrypt" not in block
    assert "proxy_pass http://127.0.0.1:6000;" in block and "proxy_set_header Host $host;" in block
    # the HTTPS block needs --flask-tls: it says so, naming its line
    with pytest.raises(UsageError) as info:
        user_server_block(site, "127.0.0.1:5000", "127.0.0.1:6000")
    assert f"{site}:7:" in str(info.value) and "--flask-tls" in str(info.value)


@pytest.mark.parametrize(("target", "expected"), [
    ("http://unix:/run/gunicorn.sock", "http://127.0.0.1:6000"),
    ("http://unix:/run/gunicorn.sock:/api/", "http://127.0.0.1:6000/api/"),
])
def test_proxy_pass_to_a_unix_socket_is_pointed_at_the_server(tmp_path: Path, target: str,
                                                               expected: str) -> None:
    """The layout of the common Gunicorn-behind-nginx tutorials: the socket is replaced,
    the URI after it kept."""
    site = tmp_path / "unix.conf"
    site.write_text(f"server {{\n  listen 80;\n  location / {{\n    include proxy_params;\n"
                    f"    proxy_pass {target};\n  }}\n}}\n")
    block = user_server_block(site, "127.0.0.1:5000", "127.0.0.1:6000")
    assert f"proxy_pass {expected};" in block, block


def test_a_block_without_listen_gets_the_test_port(tmp_path: Path) -> None:
    site = tmp_path / "bare.conf"
    site.write_text("server {\n  location / { proxy_pass http://127.0.0.1:8000; }\n}\n")
    block = user_server_block(site, "127.0.0.1:5000", "127.0.0.1:6000")
    assert "listen 127.0.0.1:5000;" in block and "proxy_pass http://127.0.0.1:6000;" in block


@pytest.mark.parametrize("text, line, words", [
    ("location / { proxy_pass http://127.0.0.1:8000; }\n", 1, "no server { } block"),
    ("server {\n  listen 80;\n  location / {\n    proxy_pass $backend;\n  }\n}\n", 4, "variable"),
    ("http {\n  server { listen 80; }\n}\n", 1, "whole nginx.conf"),
    ("server {\n  listen 80;\n}\n", 1, "no proxy_pass"),
    ("server {\n  listen;\n  location / { proxy_pass http://a:1; }\n}\n", 2, "without an address"),
    ("server {\n  listen 80;\n  include /etc/nginx/no-such-snippet.conf;\n"
     "  location / { proxy_pass http://a:1; }\n}\n", 3, "no such file on this machine"),
    ("server {\n  listen 80;\n  location / {\n    proxy_pass http://a:1\n    proxy_set_header "
     "Host $host;\n  }\n}\n", 4, "is the ';' after http://a:1 missing?"),
])
def test_site_file_that_cannot_be_rewritten_is_a_usage_error(tmp_path: Path, text: str,
                                                              line: int, words: str) -> None:
    site = tmp_path / "bad.conf"
    site.write_text(text)
    with pytest.raises(UsageError) as info:
        user_server_block(site, "127.0.0.1:5000", "127.0.0.1:6000")
    assert f"{site}:{line}:" in str(info.value) and words in str(info.value)


def test_a_certbot_site_file_serves_https_behind_real_nginx(tmp_path: Path) -> None:
    """The whole file as certbot leaves it, run with the session's certificate: nginx
    listens on the test port alone, and the app answers over HTTPS."""
    pytest.importorskip("trustme")
    from pytest_flaskserve.tls import make_tls_files

    site = tmp_path / "certbot.conf"
    site.write_text(CERTBOT_SITE)
    files = make_tls_files(tmp_path / "tls")
    launcher = servers.get("gunicorn+nginx")
    handle = start_server(launcher, _app("behind_proxy:create_app()"),  # type: ignore[arg-type]
                          ServerOptions(tls=True),
                          StartConfig(log_dir=tmp_path, tls=files, nginx_conf=site))
    try:
        assert handle.url.startswith("https://")
        answer = requests.get(handle.url + "/", verify=handle.ca_path, timeout=10)
        assert answer.status_code == 200 and answer.text == "home"
        config = handle.nginx.config_path.read_text()  # type: ignore[attr-defined]
        assert re.findall(r"listen (\S+)", config) == [f"127.0.0.1:{handle.port}"], config
        assert any("blocks of lines 1, 20 left out" in n for n in handle.notes), handle.notes
    finally:
        handle.stop()
        files.remove()


def test_a_site_file_that_passes_to_uwsgi_fronts_only_uwsgi(tmp_path: Path) -> None:
    """uwsgi_pass speaks uWSGI's protocol: in front of Gunicorn it is a usage error that
    says so at once (not a startup timeout); a proxy_pass file runs uWSGI over HTTP."""
    uwsgi_site = tmp_path / "uwsgi.conf"
    uwsgi_site.write_text("server {\n  listen 80;\n  location / {\n    include uwsgi_params;\n"
                          "    uwsgi_pass 127.0.0.1:3031;\n  }\n}\n")
    with pytest.raises(UsageError) as info:
        _start("gunicorn+nginx", "hello.py", tmp_path, nginx_conf=uwsgi_site)
    assert f"{uwsgi_site}:1:" in str(info.value) and "uwsgi+nginx" in str(info.value)
    http_site = tmp_path / "http.conf"
    http_site.write_text("server {\n  listen 80;\n  location / { proxy_pass http://a:1; }\n}\n")
    handle = _start("uwsgi+nginx", "hello.py", tmp_path, nginx_conf=http_site)
    try:
        assert requests.get(handle.url + "/", timeout=10).status_code == 200
        assert "proxy_pass http://" in handle.nginx.config_path.read_text()  # type: ignore[attr-defined]
    finally:
        handle.stop()


def test_nginx_config_error_is_a_startup_failure_in_nginx_s_own_words(tmp_path: Path) -> None:
    site = tmp_path / "typo.conf"
    site.write_text("server {\n    listen 80;\n    proxy_bufering off;\n"
                    "    location / { proxy_pass http://127.0.0.1:8000; }\n}\n")
    with pytest.raises(ServerStartupError) as info:
        _start("gunicorn+nginx", "hello.py", tmp_path, nginx_conf=site)
    message = str(info.value)
    assert 'nginx says: unknown directive "proxy_bufering" in ' in message, message
    assert info.value.server == "gunicorn+nginx" and "nginx exited with exit code 1" in message
    # the server behind it was stopped too: its arbiter ("Listening at: URL (PID)") is gone
    log = next(tmp_path.glob("gunicorn-*.log")).read_text()
    arbiter = int(re.search(r"Listening at: \S+ \((\d+)\)", log).group(1))  # type: ignore[union-attr]
    assert not alive(arbiter), log


# -- the plugin: selection, options, skip, smoke -------------------------------------------
SELECTION_TEST = """
import pytest

def test_hello(flask_server, flask_http):
    response = flask_http.get("/")
    assert response.status_code == 200
    behind = "+nginx" in flask_server.server
    assert response.headers.get("Server", "").startswith("nginx/") == behind
    assert (flask_server.url != flask_server.upstream_url) == behind

@pytest.mark.flask_servers("uwsgi+nginx")
def test_marked(flask_server):
    assert flask_server.server == "uwsgi+nginx"
"""


def test_proxied_ids_are_chosen_like_any_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=SELECTION_TEST)
    shutil_copy(pytester.path)
    result = pytester.runpytest_subprocess("--flask-app=hello.py", "-v", "-p", "no:randomly",
                                           "--flask-servers=gunicorn,uwsgi,flask-run",
                                           "--flask-proxy=nginx")
    result.assert_outcomes(passed=6)
    out = result.stdout.str()
    for name in ("gunicorn", "gunicorn+nginx", "uwsgi", "uwsgi+nginx", "flask-run"):
        assert f"test_hello[{name}] PASSED" in out, out
    assert "flask-run+nginx" not in out  # a development server is never put behind nginx
    # -k and the environment twin
    result = pytester.runpytest_subprocess("--flask-app=hello.py", "-v", "-k", "gunicorn+nginx",
                                           "--flask-servers=gunicorn", "-p", "no:randomly",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=0, deselected=2)
    os.environ["FLASKSERVE_PROXY"] = "nginx"
    try:
        result = pytester.runpytest_subprocess("--flask-app=hello.py", "-v", "-k",
                                               "hello and gunicorn+nginx",
                                               "--flask-servers=gunicorn", "-p", "no:randomly")
    finally:
        del os.environ["FLASKSERVE_PROXY"]
    result.assert_outcomes(passed=1, deselected=2)


def shutil_copy(dest: Path) -> None:
    (dest / "hello.py").write_text((EXAMPLES / "hello.py").read_text())
    (dest / "behind_proxy.py").write_text((EXAMPLES / "behind_proxy.py").read_text())


def test_bad_proxy_options_are_usage_errors(pytester: pytest.Pytester) -> None:
    shutil_copy(pytester.path)
    pytester.makepyfile(test_inner="def test_x(flask_server):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-app=hello.py", "--flask-proxy=apache")
    assert result.ret == 4 and "--flask-proxy='apache' is not a proxy" in result.stderr.str()
    (pytester.path / "site.conf").write_text("server {\n  location / { return 200; }\n}\n")
    result = pytester.runpytest_subprocess("--flask-app=hello.py", "--flask-nginx-conf=site.conf")
    assert result.ret == 4
    assert f"{pytester.path / 'site.conf'}:1: no proxy_pass" in result.stderr.str()


def test_missing_nginx_is_a_skip_naming_the_install_command(pytester: pytest.Pytester) -> None:
    shutil_copy(pytester.path)
    pytester.makepyfile(test_inner="def test_x(flask_server):\n    pass\n")
    os.environ["FLASKSERVE_NGINX"] = str(pytester.path / "no-nginx-here")
    try:
        result = pytester.runpytest_subprocess("--flask-app=hello.py", "-rs",
                                               "--flask-servers=gunicorn+nginx")
    finally:
        del os.environ["FLASKSERVE_NGINX"]
    result.assert_outcomes(skipped=1)
    assert "nginx is not installed (apt-get install nginx" in result.stdout.str()


def test_smoke_proxy_check_names_proxyfix(pytester: pytest.Pytester) -> None:
    shutil_copy(pytester.path)
    args = ["--flask-smoke", "--flask-servers=gunicorn", "--flask-proxy=nginx", "-k", "proxy",
            "-p", "no:randomly"]
    result = pytester.runpytest_subprocess("--flask-app=behind_proxy:create_app()", *args)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "smoke::proxy[gunicorn+nginx]" in out or "proxy[gunicorn+nginx]" in out
    assert "GET /where: its body names http://127.0.0.1:" in out
    assert "app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1" in out
    result = pytester.runpytest_subprocess("--flask-app=behind_proxy:create_app(proxy_fix=True)",
                                           *args)
    result.assert_outcomes(passed=1)


# -- faults: nothing of nginx outlives pytest --------------------------------------------
FAULT_TEST = """
import json, os, time
import psutil

def test_hold(flask_server):
    front = flask_server.nginx
    pids = [front.pid, *(p.pid for p in psutil.Process(front.pid).children(recursive=True))]
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps({"pids": pids, "port": flask_server.port,
                            "server_pid": flask_server.pid}) + "\\n")
    if os.environ["MODE"] == "server_killed":
        os.kill(flask_server.pid, 9)
        deadline = time.monotonic() + 5
        while flask_server.is_running() and time.monotonic() < deadline:
            time.sleep(0.01)
        return
    open(os.environ["RECORD_FILE"] + ".ready", "w").close()
    time.sleep(120)
"""




@pytest.mark.parametrize("mode", ["sigkill", "sigterm", "sigint", "server_killed"])
def test_no_nginx_left_behind(pytester: pytest.Pytester, mode: str) -> None:
    shutil_copy(pytester.path)
    pytester.makepyfile(test_inner=FAULT_TEST)
    record = pytester.path / "record.jsonl"
    env = {**os.environ, "RECORD_FILE": str(record), "MODE": mode}
    log = pytester.path / "inner.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
             "--flask-app=hello.py", "--flask-servers=gunicorn+nginx"],
            cwd=pytester.path, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    with ended_at_exit(proc):
        deadline = time.monotonic() + 60
        ready = Path(str(record) + ".ready")
        while mode != "server_killed" and not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        if mode != "server_killed":
            proc.send_signal({"sigkill": signal.SIGKILL, "sigterm": signal.SIGTERM,
                              "sigint": signal.SIGINT}[mode])
        code = proc.wait(timeout=60)
    output = log.read_text()
    rec = json.loads(record.read_text().splitlines()[0])
    assert len(rec["pids"]) >= 2, rec  # master and worker
    left: list[int] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [pid for pid in [*rec["pids"], rec["server_pid"]] if alive(pid)]
        with socket.socket() as s:
            listening = s.connect_ex(("127.0.0.1", rec["port"])) == 0
        if not left and not listening:
            break
        time.sleep(0.05)
    assert not left and not listening, f"left behind after {mode}: {left}\n{output}"
    if mode == "server_killed":
        assert code == 1 and "gunicorn+nginx died during the test (killed by SIGKILL)" in output
        assert "nginx error log" in output, output
    elif mode == "sigint":
        assert code == 2 and "KeyboardInterrupt" in output, output
    else:
        assert code == (-signal.SIGKILL if mode == "sigkill" else -signal.SIGTERM), output


# -- TLS: nginx terminates it in front of the servers ------------------------------------
@pytest.mark.parametrize("name", ["waitress+nginx", "uwsgi+nginx"])
def test_nginx_terminates_tls_in_front_of_the_server(tmp_path: Path, name: str) -> None:
    """Waitress has no TLS of its own: behind nginx it serves HTTPS as it is deployed.
    X-Forwarded-Proto is https, so a ProxyFix app builds https URLs (where the server
    passes the headers on); the server behind speaks plain HTTP (or uwsgi) on loopback."""
    pytest.importorskip("trustme")
    from pytest_flaskserve.tls import make_tls_files

    files = make_tls_files(tmp_path / "tls")
    launcher = servers.get(name)
    if launcher.unavailable() and not os.environ.get("CI"):
        pytest.skip(launcher.unavailable() or "")
    handle = start_server(launcher, _app("behind_proxy:create_app(proxy_fix=True)"),  # type: ignore[arg-type]
                          ServerOptions(tls=True), StartConfig(log_dir=tmp_path, tls=files))
    try:
        assert handle.url.startswith("https://") and handle.upstream_url.startswith("http://")
        assert handle.ca_path == str(files.ca_path)
        answer = requests.get(handle.url + "/where", verify=handle.ca_path, timeout=10)
        if name == "waitress+nginx":
            # Waitress drops X-Forwarded-* from a proxy it was not told to trust
            # (clear_untrusted_proxy_headers): ProxyFix sees none, and the URL is the
            # upstream's, until Waitress gets --trusted-proxy
            assert answer.text == handle.upstream_url + "/"
        else:
            assert answer.text == handle.url + "/"  # https, the proxy's port
        assert "ssl;" in handle.nginx.config_path.read_text()  # type: ignore[attr-defined]
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(handle.url + "/", timeout=10)  # not trusted without our CA
    finally:
        handle.stop()
        files.remove()


def test_a_site_file_that_cannot_front_a_server_fails_its_tests_in_one_line(
        pytester: pytest.Pytester) -> None:
    """Per test (TLS can be a test's own option): the test fails with the file, the line
    and the fix, and no traceback of ours."""
    shutil_copy(pytester.path)
    (pytester.path / "site.conf").write_text(
        "server {\n  listen 443 ssl;\n  location / { proxy_pass http://127.0.0.1:8000; }\n}\n")
    pytester.makepyfile(test_inner="def test_x(flask_server):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-app=hello.py", "--flask-nginx-conf=site.conf",
                                           "--flask-servers=gunicorn+nginx")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert f"{pytester.path / 'site.conf'}:1: this server block serves TLS" in out, out
    assert "proxied.py" not in out and "Traceback" not in out, out


DEPLOYED_TEST = """
def test_served(flask_server, flask_http):
    response = flask_http.get("/")
    assert response.status_code == 200
    behind = flask_server.server.endswith("+nginx")
    assert response.headers.get("Server", "").startswith("nginx/") == behind
    assert flask_server.url.startswith("https://" if {tls} else "http://")
"""


@pytest.mark.parametrize("tls", [False, True], ids=["http", "tls"])
def test_a_deployment_file_runs_behind_nginx_too(pytester: pytest.Pytester, tls: bool) -> None:
    """--flask-proxy=nginx puts the file's own command behind nginx (ID+nginx), and over
    TLS nginx terminates it for the command, which gets no certificate of its own."""
    shutil_copy(pytester.path)
    (pytester.path / "Procfile").write_text("web: gunicorn hello:app --bind 0.0.0.0:$PORT\n")
    pytester.makepyfile(test_inner=DEPLOYED_TEST.format(tls=tls))
    result = pytester.runpytest_subprocess("--flask-deploy=Procfile", "--flask-proxy=nginx",
                                           "-v", "-rs", "-p", "no:randomly",
                                           *(["--flask-tls"] if tls else []))
    out = result.stdout.str()
    assert "test_served[procfile:web+nginx] PASSED" in out, out
    if tls:
        result.assert_outcomes(passed=1, skipped=1)
        assert "procfile:web+nginx (--flask-proxy=nginx) serves HTTPS in front of it" in out, out
    else:
        result.assert_outcomes(passed=2)


def test_a_bad_site_file_for_the_factory_names_its_argument(pytester: pytest.Pytester) -> None:
    shutil_copy(pytester.path)
    pytester.makepyfile(test_inner="""
        def test_x(flask_server_factory, tmp_path):
            site = tmp_path / "x.conf"
            site.write_text("server { listen 80; location / { proxy_pass $up; } }")
            flask_server_factory("gunicorn+nginx", "hello.py", nginx_conf=str(site))
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "UsageError: nginx_conf=" in out and "uses a variable" in out, out
    assert "site_file.py" not in out and "checks.py" not in out, out

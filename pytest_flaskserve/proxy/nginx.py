"""nginx's configuration, as Flask's "nginx" deployment page writes it.

The generated ``server`` block passes every request to the upstream with the forwarded
headers Flask's page sets (``X-Forwarded-For``, ``-Proto``, ``-Host``, ``-Prefix``) and
leaves everything else at nginx's defaults, because those are what a deployed app meets:
a 1 MB ``client_max_body_size`` (413 above it), response buffering on (a streamed
response reaches the client as nginx's buffers fill or the upstream finishes), and a
60 s ``proxy_read_timeout`` (504 for a slower answer).

``X-Forwarded-Host`` is ``$http_host``, not the ``$host`` of Flask's page: ``$host`` has
no port, which is harmless on port 80/443 but on a test port would make an app with the
recommended ``ProxyFix(x_host=1)`` build ``http://127.0.0.1/...``, a failure that only
exists in the test. ``X-Forwarded-Port`` is sent too, for apps that use ``x_port=1``.

uWSGI is deployed with ``uwsgi_pass`` to its native protocol socket; nginx's
``uwsgi_params`` are written out here (so no file of the system's nginx is needed) and the
forwarded headers go as ``uwsgi_param HTTP_X_FORWARDED_*``, which is how the app sees
them (nginx also passes the client's own request headers, ``Host`` included).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pytest_flaskserve.lifecycle.process import OWNER_ENV

#: Debian's package puts nginx in /usr/sbin, which is not on a normal user's PATH
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin")

INSTALL_HINT = "apt-get install nginx (Debian/Ubuntu), dnf install nginx or brew install nginx"

#: the forwarded headers Flask's nginx page sets (see the module docstring for the host)
FORWARDED = (
    ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
    ("X-Forwarded-Proto", "$scheme"),
    ("X-Forwarded-Host", "$http_host"),
    ("X-Forwarded-Port", "$server_port"),
    ("X-Forwarded-Prefix", "/"),
)

#: nginx's own ``uwsgi_params`` file: the CGI variables uWSGI builds the WSGI environ from
UWSGI_PARAMS = (
    ("QUERY_STRING", "$query_string"), ("REQUEST_METHOD", "$request_method"),
    ("CONTENT_TYPE", "$content_type"), ("CONTENT_LENGTH", "$content_length"),
    ("REQUEST_URI", "$request_uri"), ("PATH_INFO", "$document_uri"),
    ("DOCUMENT_ROOT", "$document_root"), ("SERVER_PROTOCOL", "$server_protocol"),
    ("REQUEST_SCHEME", "$scheme"), ("HTTPS", "$https if_not_empty"),
    ("REMOTE_ADDR", "$remote_addr"), ("REMOTE_PORT", "$remote_port"),
    ("SERVER_PORT", "$server_port"), ("SERVER_NAME", "$server_name"),
)


def find_nginx() -> str | None:
    """The nginx binary: ``FLASKSERVE_NGINX``, then PATH, then the usual sbin directories."""
    explicit = os.environ.get("FLASKSERVE_NGINX")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which("nginx")
    if found:
        return found
    for directory in _SBIN_DIRS:
        candidate = os.path.join(directory, "nginx")
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def unavailable() -> str | None:
    """Why nginx cannot run here (with the install command), or None."""
    if find_nginx() is None:
        return f"nginx is not installed ({INSTALL_HINT})"
    return None


@dataclass(frozen=True)
class Site:
    """What one nginx instance serves: where it listens and what it passes to."""

    listen: str  # host:port, IPv6 hosts in brackets
    upstream: str  # host:port of the server behind it
    protocol: str  # "http" (proxy_pass) or "uwsgi" (uwsgi_pass)
    #: directives added to the server block (a test's own proxy_read_timeout, ...)
    extra: tuple[str, ...] = ()
    #: a certificate and key: nginx terminates TLS (``listen ... ssl``)
    tls: tuple[str, str] | None = None


def location_block(site: Site) -> list[str]:
    """The ``location /`` block that passes requests to the upstream."""
    if site.protocol == "uwsgi":
        lines = [f"uwsgi_pass {site.upstream};"]
        lines += [f"uwsgi_param {name} {value};" for name, value in UWSGI_PARAMS]
        lines += [f"uwsgi_param HTTP_{header.upper().replace('-', '_')} {value};"
                  for header, value in FORWARDED]
    else:
        lines = [f"proxy_pass http://{site.upstream}/;"]
        lines += [f"proxy_set_header {header} {value};" for header, value in FORWARDED]
    return ["location / {", *(f"    {line}" for line in lines), "}"]


def server_block(site: Site) -> str:
    """The generated ``server { ... }`` (what ``--flask-nginx-conf`` replaces)."""
    listen = f"listen {site.listen}" + (" ssl" if site.tls else "") + ";"
    body = [listen, "server_name localhost;"]
    if site.tls:
        body += [f"ssl_certificate {site.tls[0]};", f"ssl_certificate_key {site.tls[1]};"]
    body += list(site.extra)
    body += location_block(site)
    return "server {\n" + "".join(f"    {line}\n" for line in body) + "}\n"


def main_config(prefix: Path, server: str, *, as_root: bool, keep_env: tuple[str, ...] = ()) -> str:
    """The whole ``nginx.conf``: everything nginx writes stays inside ``prefix``.

    ``keep_env``: variables the workers keep (nginx clears all but ``TZ`` for them);
    our owner marker must survive, so a sweep can find a worker that outlived its master.
    """
    # As root the workers would switch to "nobody", who cannot enter the session's
    # temporary directory (mode 0700) to buffer request bodies; a worker as root can.
    user = "user root root;\n" if as_root else ""
    temp = "".join(f"    {kind}_temp_path {prefix / 'temp' / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (
        "daemon off;\n"
        "master_process on;\n"
        "worker_processes 1;\n"
        f"{user}"
        + "".join(f"env {name};\n" for name in keep_env)
        + f"pid {prefix / 'nginx.pid'};\n"
        "error_log stderr notice;\n"
        "events {\n    worker_connections 256;\n}\n"
        "http {\n"
        f"    access_log {prefix / 'access.log'};\n"
        f"{temp}"
        + "".join(f"    {line}\n" for line in server.rstrip("\n").splitlines())
        + "}\n"
    )


def write_prefix(prefix: Path, server: str) -> Path:
    """Create the prefix directory with its ``nginx.conf``; returns the config's path."""
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "temp" / kind).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    keep = tuple(sorted(name for name in os.environ if name.startswith("FLASKSERVE_")))
    conf.write_text(main_config(prefix, server, as_root=os.geteuid() == 0,
                                keep_env=(*keep, OWNER_ENV)), encoding="utf-8")
    return conf

"""The checks of the options in :data:`.options.OPTIONS`, each named there: a raw value
(and the name of where it came from, for the message) in, the setting out, or a one-line
:class:`~pytest_flaskserve.errors.UsageError` that says how to fix it. Imported only when
settings are loaded, not with the plugin.
"""

from __future__ import annotations

import math
import os
import shlex
from pathlib import Path

from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.plugin.options import MAX_COUNT, SCOPES

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


def seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number of seconds; use e.g. {name}=30") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{name}={raw!r} must be a positive number of seconds, e.g. {name}=30")
    return value


def count(name: str, raw: str) -> int | None:
    if raw in ("", None):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a whole number; use e.g. {name}=2") from None
    if value < 1:
        raise UsageError(f"{name}={raw!r} must be 1 or more")
    if value > MAX_COUNT:
        raise UsageError(f"{name}={raw!r} is more than a test server can use; use at most "
                         f"{MAX_COUNT}")
    return value


def boolean(name: str, raw: str | bool) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"{name}={raw!r} is not a boolean; use true or false")


def scope(name: str, raw: str) -> str:
    if raw not in SCOPES:
        raise UsageError(f"{name}={raw!r} is not a scope; use one of {', '.join(SCOPES)}")
    return raw


def server_names(name: str, raw: str) -> tuple[str, ...]:
    items = tuple(s.strip() for s in raw.replace(" ", ",").split(",") if s.strip())
    if not items:
        raise UsageError(f"{name}={raw!r} names no server; use e.g. {name}=gunicorn,waitress")
    return tuple(dict.fromkeys(items))  # a name given twice runs once


def url_path(name: str, raw: str) -> str:
    if not raw.startswith("/"):
        raise UsageError(f"{name}={raw!r} must be a URL path starting with '/', e.g. /health")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in raw):
        raise UsageError(f"{name}={raw!r} contains a space or a control character; "
                         "percent-encode it, e.g. /a%20b")
    return raw


def host(name: str, raw: str) -> str:
    """An address every server can bind: an IP literal, or a name resolved to its first
    address here (Granian, for one, takes only IP literals)."""
    import ipaddress
    import socket

    host = raw.strip().strip("[]")
    if not host:
        raise UsageError(f"{name} is empty; use 127.0.0.1")
    not_here = UsageError(f"{name}={raw!r} is not an address of this machine; use 127.0.0.1 "
                          "(or ::1, or 0.0.0.0 to listen on every interface)")
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            infos = []
        if not infos:
            raise not_here from None
        address = str(infos[0][4][0])
    # one bind now says what every server would find out at each start
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except OSError:
        raise not_here from None
    return address


def server_args(name: str, raw: str | list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    lines = raw if isinstance(raw, list) else [raw]
    out: list[tuple[str, tuple[str, ...]]] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        server, sep, args = line.partition("=")
        if not sep or not server.strip():
            raise UsageError(
                f"{name} {line!r} must look like SERVER=ARGS, e.g. 'gunicorn=--timeout 5'"
            )
        try:
            out.append((server.strip(), tuple(shlex.split(args))))
        except ValueError as exc:
            raise UsageError(f"{name} {line!r}: {exc}") from None
    return tuple(out)


def worker_class(name: str, raw: str) -> str:
    from pytest_flaskserve import servers

    servers.check_worker_class(f"{name}={raw!r}", raw)
    return raw


def patterns(name: str, raw: str | list[str]) -> tuple[str, ...]:
    lines = raw if isinstance(raw, list) else [raw]
    out = tuple(p.strip() for line in lines for p in line.split(",") if p.strip())
    for p in out:
        if not p.startswith(("/", "*")):
            raise UsageError(f"{name} {p!r} must be a URL path or glob starting with '/', "
                             "e.g. /admin/*")
    return out


def header_names(name: str, raw: str) -> tuple[str, ...]:
    return tuple(h.strip() for h in raw.replace(" ", ",").split(",") if h.strip())


def files(name: str, raw: list[str]) -> tuple[str, ...]:
    """Paths, each once (whether they exist is checked where they are read)."""
    return tuple(dict.fromkeys(p for p in raw if p.strip()))


def writable_file(name: str, raw: str) -> Path:
    """A file to write at the end of the run, checked now (missing directories are made
    then): found out after every test ran, a bad path was easy to miss."""
    text = str(raw).strip()
    if not text or os.path.isdir(text) or text.endswith(("/", os.sep)):
        what = "is empty" if not text else f"={text!r} is a directory"
        raise UsageError(f"{name} {what}; give a file path, e.g. "
                         f"{os.path.join(text, 'flaskserve.json')}")
    path = Path(text)
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise UsageError(f"{name} {path}: {existing} is not a writable directory, so the "
                         "file cannot be written there; choose another path")
    return path


def proxy(name: str, raw: str) -> str:
    from pytest_flaskserve.servers.proxied import PROXIES

    if raw not in PROXIES:
        raise UsageError(f"{name}={raw!r} is not a proxy the plugin runs; use {name}=nginx")
    return raw


def nginx_conf(name: str, raw: str) -> Path:
    """An nginx site file, checked: readable, and rewritable (listen, upstream address)."""
    from pytest_flaskserve.proxy.site_file import read_site_file

    path = Path(raw).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"{name}={raw!r}: no such file; give the path of an nginx site file "
                         "(a server { ... } block)")
    # errors name the option, or the factory's argument (flask_server_factory(...)):
    # "nginx_conf=PATH:LINE: ..."
    read_site_file(path, "nginx_conf" if name.startswith("flask_server_factory") else name)
    return path

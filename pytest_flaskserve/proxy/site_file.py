"""A user's own nginx site file in place of the generated server block.

The file is used as written except for what must change to run it here: every
``listen`` becomes our loopback port (the first keeps its parameters, the others, which
would bind the host's real ports, are dropped), the address in ``proxy_pass``,
``uwsgi_pass`` and ``upstream { server ...; }`` becomes the server we started, and a
relative ``include`` (``include uwsgi_params;``) is made absolute (next to the file,
else nginx's own configuration directory). Anything else that cannot be rewritten is a
:class:`UsageError` naming the file and line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pytest_flaskserve.errors import UsageError

_COMMENT = re.compile(r"\s*#.*$")
_HTTP_URL = re.compile(r"^(https?://)([^/]+)(.*)$")
_UPSTREAM_OPEN = re.compile(r"^upstream (\S+) \{$")
_NGINX_CONF_DIRS = ("/etc/nginx", "/usr/local/etc/nginx", "/usr/local/nginx/conf")


def _fail(path: Path, number: int, why: str) -> UsageError:
    return UsageError(f"--flask-nginx-conf={path}:{number}: {why}")


def _statements(text: str) -> list[tuple[int, str]]:
    """``(line number, statement)`` for each directive (``name args;``), block opening
    (``name args {``) and block end (``}``), comments dropped, whatever the layout."""
    found: list[tuple[int, str]] = []
    current, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        for piece in re.split(r"([{};])", _COMMENT.sub("", raw)):
            if not piece.strip() and piece not in "{};":
                continue
            if not current.strip():
                start = number
            current += piece
            if piece in ("{", "}", ";") and piece:
                found.append((start, " ".join(current.split())))
                current = ""
    if current.strip():
        found.append((start, " ".join(current.split())))
    return found


def user_server_block(path: Path, listen: str, upstream: str) -> str:
    """The site file with ``listen`` and the upstream address rewritten (module docstring)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--flask-nginx-conf={path}: cannot read it ({exc.strerror})") from None
    statements = _statements(text)
    upstreams = {m.group(1) for _, st in statements if (m := _UPSTREAM_OPEN.match(st))}
    out: list[str] = []
    depth = 0
    in_upstream: int | None = None  # the depth of the upstream block we are in
    upstream_written = False
    listens = passes = 0
    for number, statement in statements:
        indent = "    " * depth
        words = statement.rstrip(";{").split()
        name = words[0] if words else ""
        if statement.endswith("{"):
            if name in ("http", "events") and depth == 0:
                raise _fail(path, number, "this is a whole nginx.conf; give the site file, "
                            "the server { ... } block that goes inside http { }")
            if name == "upstream":
                in_upstream, upstream_written = depth, False
            out.append(indent + statement)
            depth += 1
            continue
        if statement == "}":
            depth = max(depth - 1, 0)
            if in_upstream is not None and depth == in_upstream:
                in_upstream = None
            out.append("    " * depth + "}")
            continue
        if in_upstream is not None and name == "server":
            if not upstream_written:  # one upstream server: the one we started
                out.append(f"{indent}server {upstream};")
                upstream_written = True
            continue
        if name == "listen":
            listens += 1
            if len(words) < 2:
                raise _fail(path, number, "a listen directive without an address")
            if listens == 1:
                out.append(f"{indent}listen {' '.join([listen, *words[2:]])};")
            continue
        if name in ("proxy_pass", "uwsgi_pass"):
            if len(words) != 2:
                raise _fail(path, number, f"{name} takes one address, e.g. "
                            f"'{name} 127.0.0.1:8000;'")
            out.append(f"{indent}{name} {_retarget(path, number, name, words[1], upstream, upstreams)};")
            passes += 1
            continue
        if name == "include" and len(words) == 2:
            out.append(f"{indent}include {_absolute_include(path, number, words[1])};")
            continue
        out.append(indent + statement)
    if listens == 0:
        raise _fail(path, 1, "no 'listen' directive to point at the test port; the file "
                    "must hold a server { listen ...; location / { proxy_pass ...; } } block")
    if passes == 0:
        raise _fail(path, 1, "no proxy_pass or uwsgi_pass to point at the server under test")
    return "\n".join(out) + "\n"


def _retarget(path: Path, number: int, directive: str, target: str, upstream: str,
              upstreams: set[str]) -> str:
    if "$" in target:
        raise _fail(path, number, f"{directive} {target} uses a variable; the address of the "
                    "server under test cannot be put in it: write the address itself")
    if directive == "uwsgi_pass":
        bare = target.removeprefix("uwsgi://")
        return upstream if bare not in upstreams else bare
    match = _HTTP_URL.match(target)
    if match is None:
        raise _fail(path, number, f"proxy_pass {target}: expected http://HOST:PORT[/path]")
    scheme, host, rest = match.groups()
    if host in upstreams:
        return target
    if scheme == "https://":
        raise _fail(path, number, f"proxy_pass {target}: the server under test speaks plain "
                    "HTTP behind nginx; use http://")
    return f"http://{upstream}{rest}"


def _absolute_include(path: Path, number: int, name: str) -> str:
    if os.path.isabs(name) or "*" in name:
        return name
    for directory in (path.parent, *map(Path, _NGINX_CONF_DIRS)):
        candidate = directory / name
        if candidate.is_file():
            return str(candidate)
    raise _fail(path, number, f"include {name}: no such file next to the site file or in "
                f"{', '.join(_NGINX_CONF_DIRS)}")

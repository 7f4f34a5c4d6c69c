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
_LISTEN = re.compile(r"^(\s*)listen\s+(\S+)([^;]*);\s*$")
_PASS = re.compile(r"^(\s*)(proxy_pass|uwsgi_pass)\s+([^;\s]+)\s*;\s*$")
_HTTP_URL = re.compile(r"^(https?://)([^/]+)(.*)$")
_UPSTREAM_OPEN = re.compile(r"^\s*upstream\s+(\S+)\s*\{\s*$")
_UPSTREAM_SERVER = re.compile(r"^(\s*)server\s+(\S+)([^;]*);\s*$")
_INCLUDE = re.compile(r"^(\s*)include\s+([^;\s]+)\s*;\s*$")
_WHOLE_CONF = re.compile(r"^\s*(http|events)\s*\{")
_NGINX_CONF_DIRS = ("/etc/nginx", "/usr/local/etc/nginx", "/usr/local/nginx/conf")


def _fail(path: Path, number: int, why: str) -> UsageError:
    return UsageError(f"--flask-nginx-conf={path}:{number}: {why}")


def user_server_block(path: Path, listen: str, upstream: str) -> str:
    """The site file with ``listen`` and the upstream address rewritten (module docstring)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--flask-nginx-conf={path}: cannot read it ({exc.strerror})") from None
    out: list[str] = []
    upstreams: set[str] = set()
    in_upstream = False
    listens = passes = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw)
        if _WHOLE_CONF.match(line):
            raise _fail(path, number, "this is a whole nginx.conf; give the site file, the "
                        "server { ... } block that goes inside http { }")
        if match := _UPSTREAM_OPEN.match(line):
            upstreams.add(match.group(1))
            in_upstream = True
            out.append(line)
            continue
        if in_upstream:
            if line.strip() == "}":
                in_upstream = False
            elif match := _UPSTREAM_SERVER.match(line):
                if "server " in out[-1] and not _UPSTREAM_OPEN.match(out[-1]):
                    continue  # one upstream server: the one we started
                line = f"{match.group(1)}server {upstream};"
            out.append(line)
            continue
        if match := _LISTEN.match(line):
            listens += 1
            if listens == 1:
                out.append(f"{match.group(1)}listen {listen}{match.group(3)};")
            continue
        if "listen" in line.split():
            raise _fail(path, number, "a listen directive this rewrite cannot read; "
                        "write it on one line as 'listen PORT;'")
        if match := _PASS.match(line):
            indent, directive, target = match.groups()
            out.append(f"{indent}{directive} {_retarget(path, number, directive, target, upstream, upstreams)};")
            passes += 1
            continue
        if re.search(r"\b(proxy_pass|uwsgi_pass)\b", line):
            raise _fail(path, number, "a proxy_pass/uwsgi_pass this rewrite cannot read; "
                        "write it on one line as 'proxy_pass http://127.0.0.1:8000;'")
        if match := _INCLUDE.match(line):
            out.append(f"{match.group(1)}include {_absolute_include(path, number, match.group(2))};")
            continue
        out.append(line)
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

"""A user's own nginx site file in place of the generated server block.

The file is used as written except for what must change to run it here. Of its
``server { }`` blocks, the one that passes requests to the app (``proxy_pass``,
``uwsgi_pass``) is run; the others (a port-80 block that only redirects to HTTPS, a
catch-all ``return 444``) are left out: they would listen on the host's real ports, and
one with no ``listen`` at all would take nginx's default, ``*:80``. In the block run,
every ``listen`` becomes our loopback port (the first keeps its parameters, the others are
dropped; a block without one gets it), the address in ``proxy_pass``, ``uwsgi_pass`` and
``upstream { server ...; }`` becomes the server we started, a relative ``include``
(``include uwsgi_params;``) is made absolute (next to the file, else nginx's own
configuration directory), ``access_log`` and ``error_log`` paths give way to the session's
logs, and over TLS ``ssl_certificate`` and ``ssl_certificate_key`` name the session's
throwaway certificate (certbot's settings and DH parameters for its own certificate, in
``/etc/letsencrypt``, are left out where this machine has none). Anything else that
cannot be rewritten is a :class:`UsageError` naming the file and line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pytest_flaskserve.errors import UsageError, hide_own_errors

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

_COMMENT = re.compile(r"\s*#.*$")
_HTTP_URL = re.compile(r"^(https?://)([^/]+)(.*)$")
_UPSTREAM_OPEN = re.compile(r"^upstream (\S+) \{$")
_CERTBOT_DIR = "/etc/letsencrypt/"
_NGINX_CONF_DIRS = ("/etc/nginx", "/usr/local/etc/nginx", "/usr/local/nginx/conf")
#: the directive that passes requests on -> the protocol it speaks to the server
PASSES = {"proxy_pass": "http", "uwsgi_pass": "uwsgi"}
_CERTIFICATE = ("ssl_certificate", "ssl_certificate_key")
#: logs the file sends to this machine's paths; the session's own logs take their place,
#: so the ones attached to a failing test have the requests
_LOGS = ("access_log", "error_log")


#: how the option is named in errors (a check made for the factory's argument names that)
_WHERE = "--flask-nginx-conf"


def _fail(path: Path, number: int, why: str, where: str = _WHERE) -> UsageError:
    return UsageError(f"{where}={path}:{number}: {why}")


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


def _words(statement: str) -> list[str]:
    return statement.rstrip(";{").split()


@dataclass
class ServerBlock:
    """One top-level ``server { }`` block of the file, as read."""

    line: int
    statements: list[tuple[int, str]] = field(default_factory=list)

    def directives(self, name: str) -> list[list[str]]:
        return [w for _, st in self.statements if (w := _words(st)) and w[0] == name]

    @property
    def protocols(self) -> set[str]:
        """What its passes speak to the server: {"http"}, {"uwsgi"}, both, or none."""
        return {PASSES[name] for name in PASSES if self.directives(name)}

    @property
    def serves_tls(self) -> bool:
        return any("ssl" in w[2:] for w in self.directives("listen")) or \
            bool(self.directives("ssl_certificate"))

    @property
    def is_default(self) -> bool:
        return any("default_server" in w[2:] for w in self.directives("listen"))


@dataclass
class SiteFile:
    """A site file, read and checked: its server blocks and what surrounds them."""

    path: Path
    #: the top-level statements outside the server blocks (upstream, map, ...) and the
    #: server blocks, in file order
    layout: list[tuple[int, str] | ServerBlock]

    @property
    def blocks(self) -> list[ServerBlock]:
        return [b for b in self.layout if isinstance(b, ServerBlock)]

    def block_to_run(self, tls: bool) -> ServerBlock:
        """The server block that serves the app: one that passes requests on, serving TLS
        if and only if ``tls`` where there is a choice, ``default_server`` first, else the
        first in the file (raises UsageError when the only ones serve TLS and ``tls`` is
        off)."""
        serving = [b for b in self.blocks if b.protocols]
        matching = [b for b in serving if b.serves_tls == tls] or \
            ([b for b in serving if not b.serves_tls] if tls else [])
        if not matching:
            raise _fail(self.path, serving[0].line, "this server block serves TLS (listen ... "
                        "ssl): run with --flask-tls, whose throwaway certificate takes the "
                        "place of ssl_certificate, or give a block that serves plain HTTP")
        return next((b for b in matching if b.is_default), matching[0])

    def render(self, listen: str, upstream: str,
               tls: tuple[str, str] | None = None) -> str:
        """The file to run, with ``listen``, the upstream address and (with ``tls``, a
        certificate and key) the certificate rewritten (module docstring)."""
        run = self.block_to_run(tls is not None)
        upstreams = self._upstream_names()
        out: list[str] = []
        depth = 0
        in_upstream: int | None = None  # the depth of the upstream block we are in
        upstream_written = False
        for item in self.layout:
            if isinstance(item, ServerBlock):
                if item is run:
                    out += self._render_block(item, listen, upstream, upstreams, tls)
                continue
            number, statement = item
            name = (_words(statement) or [""])[0]
            if statement.endswith("{"):
                if name == "upstream":
                    in_upstream, upstream_written = depth, False
                out.append("    " * depth + statement)
                depth += 1
            elif statement == "}":
                depth = max(depth - 1, 0)
                if in_upstream is not None and depth == in_upstream:
                    in_upstream = None
                out.append("    " * depth + "}")
            elif in_upstream is not None and name == "server":
                if not upstream_written:  # one upstream server: the one we started
                    out.append(f"{'    ' * depth}server {upstream};")
                    upstream_written = True
            else:
                out.append("    " * depth + self._rewrite_include(number, statement))
        return "\n".join(out) + "\n"

    def check(self) -> None:
        """Raise the UsageError that rendering any block would raise (a pass to a
        variable, an include that is nowhere), before anything starts."""
        upstreams = self._upstream_names()
        for block in self.blocks:
            if block.protocols:
                self._render_block(block, "127.0.0.1:1", "127.0.0.1:2", upstreams, None)
        for item in self.layout:
            if isinstance(item, tuple):
                self._rewrite_include(*item)

    def _upstream_names(self) -> set[str]:
        return {m.group(1) for item in self.layout if isinstance(item, tuple)
                if (m := _UPSTREAM_OPEN.match(item[1]))}

    def _render_block(self, block: ServerBlock, listen: str, upstream: str,
                      upstreams: set[str], tls: tuple[str, str] | None) -> list[str]:
        listens = block.directives("listen")
        # what only the original address takes goes with it (ipv6only= on 127.0.0.1 is an
        # nginx error); ssl is ours to say
        params = [p for p in (listens[0][2:] if listens else [])
                  if p != "ssl" and not p.startswith("ipv6only=")]
        ssl = ["ssl"] if tls is not None else []
        out = ["server {", f"    listen {' '.join([listen, *ssl, *params])};"]
        if tls is not None:
            out += [f"    ssl_certificate {tls[0]};", f"    ssl_certificate_key {tls[1]};"]
        depth = 1
        for number, statement in block.statements:
            words = _words(statement)
            name = words[0] if words else ""
            if statement == "}":
                depth -= 1
                out.append("    " * depth + "}")
                continue
            indent = "    " * depth
            if statement.endswith("{"):
                out.append(indent + statement)
                depth += 1
            elif name == "listen" or name in _CERTIFICATE:
                continue  # written above
            elif name in _LOGS and words[1:2] != ["off"]:
                continue  # a machine's own path (/var/log/nginx/...): the session's logs
            elif _certbots(words):
                continue  # goes with the certificate it made, which the session's replaces
            elif name in PASSES:
                if len(words) != 2:
                    missing = (f" (is the ';' after {words[1]} missing?)"
                               if len(words) > 2 else "")
                    raise _fail(self.path, number, f"{name} takes one address, e.g. "
                                f"'{name} 127.0.0.1:8000;'{missing}")
                out.append(f"{indent}{name} "
                           f"{_retarget(self.path, number, name, words[1], upstream, upstreams)};")
            else:
                out.append(indent + self._rewrite_include(number, statement))
        return out

    def _rewrite_include(self, number: int, statement: str) -> str:
        words = _words(statement)
        if len(words) == 2 and words[0] == "include":
            return f"include {_absolute_include(self.path, number, words[1])};"
        return statement


def read_site_file(path: Path, where: str = _WHERE) -> SiteFile:
    """The site file at ``path``, checked (raises UsageError naming ``where``, the file and
    the line)."""
    try:
        return _read(path)
    except UsageError as exc:
        if where == _WHERE:
            raise
        raise UsageError(str(exc).replace(_WHERE, where, 1)) from None


def _read(path: Path) -> SiteFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{_WHERE}={path}: cannot read it ({exc.strerror})") from None
    layout: list[tuple[int, str] | ServerBlock] = []
    depth = 0
    block: ServerBlock | None = None
    for number, statement in _statements(text):
        words = _words(statement)
        if statement.endswith("{"):
            if words and words[0] in ("http", "events") and depth == 0:
                raise _fail(path, number, "this is a whole nginx.conf; give the site file, "
                            "the server { ... } block that goes inside http { }")
            if depth == 0 and words == ["server"]:
                block = ServerBlock(number)
                layout.append(block)
                depth += 1
                continue
            depth += 1
        elif statement == "}":
            depth = max(depth - 1, 0)
            if depth == 0 and block is not None:
                block.statements.append((number, statement))
                block = None
                continue
        if block is not None:
            block.statements.append((number, statement))
        else:
            layout.append((number, statement))
    site = SiteFile(path, layout)
    if not site.blocks:
        raise _fail(path, 1, "no server { } block; the file must hold a server { listen ...; "
                    "location / { proxy_pass ...; } } block")
    serving = [b for b in site.blocks if b.protocols]
    if not serving:
        raise _fail(path, 1, "no proxy_pass or uwsgi_pass to point at the server under test")
    for b in site.blocks:
        for number, statement in b.statements:
            if _words(statement) == ["listen"]:
                raise _fail(path, number, "a listen directive without an address")
    site.check()
    return site


def user_server_block(path: Path, listen: str, upstream: str,
                      tls: tuple[str, str] | None = None) -> str:
    """The site file at ``path`` rewritten to run here (see :meth:`SiteFile.render`)."""
    return read_site_file(path).render(listen, upstream, tls)


def _retarget(path: Path, number: int, directive: str, target: str, upstream: str,
              upstreams: set[str]) -> str:
    if "$" in target:
        raise _fail(path, number, f"{directive} {target} uses a variable; the address of the "
                    "server under test cannot be put in it: write the address itself")
    if directive == "uwsgi_pass":
        bare = target.removeprefix("uwsgi://")
        return upstream if bare not in upstreams else bare
    if target.startswith("http://unix:"):
        # nginx's socket form, http://unix:/run/app.sock[:/uri]: the URI follows a colon
        _, _, uri = target.removeprefix("http://unix:").partition(":")
        return f"http://{upstream}{uri}"
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


def _certbots(words: list[str]) -> bool:
    """Certbot's own TLS settings and DH parameters for the certificate it made
    (``include /etc/letsencrypt/options-ssl-nginx.conf;``, ``ssl_dhparam
    /etc/letsencrypt/ssl-dhparams.pem;``), where this machine has none."""
    return len(words) == 2 and words[0] in ("include", "ssl_dhparam") \
        and words[1].startswith(_CERTBOT_DIR) and not os.path.exists(words[1])


def _absolute_include(path: Path, number: int, name: str) -> str:
    if "*" in name:
        return name
    if os.path.isabs(name):
        if not os.path.exists(name):
            raise _fail(path, number, f"include {name}: no such file on this machine; copy it "
                        "next to the site file and include it by a relative name")
        return name
    for directory in (path.parent, *map(Path, _NGINX_CONF_DIRS)):
        candidate = directory / name
        if candidate.is_file():
            return str(candidate)
    raise _fail(path, number, f"include {name}: no such file next to the site file or in "
                f"{', '.join(_NGINX_CONF_DIRS)}")

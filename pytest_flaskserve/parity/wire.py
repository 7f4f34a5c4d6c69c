"""One HTTP exchange on a fresh connection, with a deadline, recorded byte for byte.

The smoke suite and ``flask_parity`` need more than a client library shows: when each
part of a streamed body arrived, what a server sent after the headers of a HEAD response
(clients skip it, but it corrupts the next response on a kept-alive connection), and a
missing response as a value to compare rather than an exception. Every exchange uses its
own connection with ``Connection: close``, so it reaches whichever worker accepts it.
"""

from __future__ import annotations

import functools
import http.client
import json as _json
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Body = bytes | str | Iterable[bytes] | None

DEFAULT_HEADERS = {"Connection": "close", "User-Agent": "pytest-flaskserve"}


@dataclass(frozen=True)
class Exchange:
    """A request and what came back; ``error`` says why no complete response came."""

    method: str
    path: str
    status: int | None
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    #: (seconds after the request was sent, bytes) for each read that returned data
    chunks: tuple[tuple[float, int], ...] = ()
    seconds: float = 0.0
    error: str | None = None
    #: HEAD only: bytes the server sent after the header block (must be none)
    after_headers: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)

    def header_values(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.body)

    @property
    def first_byte_seconds(self) -> float | None:
        """When the first body bytes arrived (None for an empty body)."""
        return self.chunks[0][0] if self.chunks else None

    def describe(self) -> str:
        """``200 OK`` or ``no response (connection closed by the server)``."""
        if self.status is None:
            return f"no response ({self.error})"
        text = f"{self.status} {self.reason}".strip()
        return f"{text} (incomplete: {self.error})" if self.error else text


#: characters a request target may carry as they are (RFC 3986 unreserved, sub-delims,
#: ':', '@', '/', '?' and '%' so existing escapes and the query stay as written)
_TARGET_SAFE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%")


def request_target(path: str) -> str:
    """``path`` as it goes on the request line: non-ASCII (UTF-8), spaces and other
    characters HTTP does not allow there percent-encoded, as a browser or ``requests``
    would send ``/café`` (``/caf%C3%A9``); what is already encoded stays as written."""
    if all(c in _TARGET_SAFE for c in path):
        return path
    return "".join(c if c in _TARGET_SAFE else
                   "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in path)


def _encode(body: Body) -> tuple[bytes | list[bytes] | None, bool]:
    """Bytes for a fixed-length body, or a list of chunks sent with chunked encoding."""
    if body is None:
        return None, False
    if isinstance(body, str):
        return body.encode("utf-8"), False
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), False
    return [bytes(c) for c in body], True


@functools.lru_cache(maxsize=8)
def _trusting(ca_path: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_path)


def connection_to(host: str, port: int, *, timeout: float,
                  ca_path: str | None = None) -> http.client.HTTPConnection:
    """A connection (not yet connected) to the server: HTTPS trusting ``ca_path`` when
    one is given (a handle's ``ca_path`` under ``--flask-tls``), plain HTTP otherwise."""
    if ca_path is None:
        return http.client.HTTPConnection(host, port, timeout=timeout)
    return http.client.HTTPSConnection(host, port, timeout=timeout, context=_trusting(ca_path))


def send(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Body = None,
    timeout: float = 10.0,
    connection: http.client.HTTPConnection | None = None,
    ca_path: str | None = None,
) -> Exchange:
    """Send one request and read the whole response within ``timeout`` seconds.

    ``body``: bytes or str (sent with Content-Length), or an iterable of bytes (sent with
    ``Transfer-Encoding: chunked``, one chunk per item). ``connection``: an already
    connected connection to use (and close), e.g. one a chosen worker accepted.
    ``ca_path``: speak HTTPS, trusting that CA (the handle's ``ca_path``). Never
    raises for network errors: they come back as :attr:`Exchange.error`.
    """
    method = method.upper()
    path = request_target(path)
    merged = {**DEFAULT_HEADERS, **(headers or {})}
    if method == "HEAD" and connection is None:
        return _head(host, port, path, merged, timeout, ca_path)
    payload, chunked = _encode(body)
    conn = connection or connection_to(host, port, timeout=timeout, ca_path=ca_path)
    t0 = time.monotonic()
    deadline = t0 + timeout
    status: int | None = None
    reason = ""
    got_headers: tuple[tuple[str, str], ...] = ()
    parts: list[bytes] = []
    chunks: list[tuple[float, int]] = []
    error: str | None = None
    unsent: str | None = None
    try:
        try:
            if chunked:
                merged.setdefault("Transfer-Encoding", "chunked")
                parts_out: list[bytes] = payload if isinstance(payload, list) else []
                conn.request(method, path, body=iter(parts_out), headers=merged,
                             encode_chunked=True)
            else:
                conn.request(method, path, body=payload, headers=merged)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The server answered (or gave up) before it read the whole body: its answer
            # may already be here, and it is what a client would get.
            if conn.sock is None:
                raise
            unsent = ("the server closed the connection before the whole request was "
                      f"sent ({type(exc).__name__})")
        response = conn.getresponse()
        status, reason = response.status, response.reason
        got_headers = tuple(response.getheaders())
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                error = f"the body did not end within {timeout:g} s"
                break
            if conn.sock is not None:
                conn.sock.settimeout(remaining)
            data = response.read1(65536)
            if not data:
                break
            chunks.append((time.monotonic() - t0, len(data)))
            parts.append(data)
    except http.client.RemoteDisconnected:
        error = unsent or "connection closed by the server"
    except http.client.IncompleteRead as exc:
        parts.append(exc.partial)
        error = "connection closed before the body ended"
    except TimeoutError:
        error = f"nothing within {timeout:g} s"
    except ConnectionRefusedError:
        error = "connection refused"
    except (OSError, http.client.HTTPException) as exc:
        error = unsent or (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    finally:
        conn.close()
    return Exchange(method=method, path=path, status=status, reason=reason, headers=got_headers,
                    body=b"".join(parts), chunks=tuple(chunks),
                    seconds=time.monotonic() - t0, error=error)


def _head(host: str, port: int, path: str, headers: Mapping[str, str], timeout: float,
          ca_path: str | None) -> Exchange:
    """HEAD on a raw socket, read to the end, so bytes after the headers are seen."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    lines = [f"HEAD {request_target(path)} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    raw = b""
    error: str | None = None
    try:
        with socket.create_connection((host, port), timeout=timeout) as plain, \
                (_trusting(ca_path).wrap_socket(plain, server_hostname=host)
                 if ca_path is not None else plain) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    error = f"the connection stayed open {timeout:g} s after a HEAD request"
                    break
                sock.settimeout(remaining)
                data = sock.recv(65536)
                if not data:
                    break
                raw += data
    except TimeoutError:
        error = f"nothing more within {timeout:g} s"
    except ConnectionRefusedError:
        error = "connection refused"
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - t0
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return Exchange(method="HEAD", path=path, status=None,
                        error=error or "connection closed by the server", seconds=seconds)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return Exchange(method="HEAD", path=path, status=None, seconds=seconds,
                        error=f"malformed status line {status_line!r}")
    parsed = tuple((k.strip(), v.strip()) for k, _, v in
                   (ln.partition(":") for ln in header_lines if ln))
    return Exchange(method="HEAD", path=path, status=status,
                    reason=parts[2] if len(parts) > 2 else "", headers=parsed,
                    seconds=seconds, error=error, after_headers=rest)

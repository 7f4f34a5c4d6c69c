"""Wait until a server really serves HTTP: never a sleep, never a bare TCP connect.

A reloader parent, a Gunicorn master and a uWSGI master accept TCP connections before
the app is loaded, so only an HTTP response counts. Each probe uses a fresh connection
(uWSGI resets reused keep-alive connections) and its own timeout; before each probe the
process is checked, so an early exit fails at once; one deadline bounds the whole wait.

Over TLS each probe is an HTTPS request that trusts the session's CA alone and checks
the host name. A certificate that does not verify, or a plain-HTTP answer where TLS was
expected, ends the wait at once: waiting longer cannot change what the server presents.
"""

from __future__ import annotations

import enum
import functools
import http.client
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from pytest_flaskserve.parity.wire import request_target

#: bodies up to this size (with a Content-Length) are read to the end by a probe
_READ_LIMIT = 1 << 20


@dataclass(frozen=True)
class Ready:
    status: int
    seconds: float
    probes: int


class NotReadyKind(enum.Enum):
    """Why a wait for a server ended without it serving: what the retry and the
    diagnosis decide on (the reason text is for people)."""

    #: the server exited before it answered HTTP
    EXITED = "exited"
    #: it stayed up and never answered within the startup timeout
    TIMEOUT = "timeout"
    #: something answered on the port, but the socket is not our process tree's
    FOREIGN_PORT = "foreign port"
    #: it announced, or listens on, a port other than the one it was given
    WRONG_PORT = "wrong port"
    #: a production server's log shows the development server's banner (app.run() at import)
    DEV_SERVER_INSIDE = "dev server inside"
    #: it serves, but answers 5xx because the app did not load (its launcher's
    #: ``load_failure`` read that in the log)
    APP_NOT_LOADED = "app not loaded"
    #: a proxy in front answered 502/504: the server behind it failed or is gone
    UPSTREAM_FAILED = "upstream failed"
    #: started for TLS, it presented a certificate the session's CA did not sign
    TLS_CERTIFICATE = "tls certificate"
    #: started for TLS, it speaks plain HTTP on its port
    TLS_PLAIN_HTTP = "tls plain http"
    #: it stays up, but its log shows it cannot serve (its launcher read a crash loop)
    CANNOT_SUCCEED = "cannot succeed"


class NotReady(Exception):
    """The wait ended without an HTTP answer: ``kind`` says why, ``reason`` in words."""

    def __init__(self, kind: NotReadyKind, reason: str, *, exit_code: int | None = None,
                 seconds: float) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.exit_code = exit_code
        self.seconds = seconds

    @property
    def exited(self) -> bool:
        return self.kind is NotReadyKind.EXITED


class HandshakeRejected(Exception):
    """A TLS handshake that failed for good: ``kind`` is TLS_CERTIFICATE or TLS_PLAIN_HTTP."""

    def __init__(self, kind: NotReadyKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


#: OpenSSL's reasons for a handshake answered by a server that does not speak TLS
_PLAIN_HTTP_REASONS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG",
                                 "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL"})
_PLAIN_HTTP = "the server answers plain HTTP, not the TLS handshake: it is not serving TLS"


def handshake_verdict(exc: ssl.SSLError) -> HandshakeRejected | None:
    """Whether a failed handshake means the start failed, or None for a passing failure
    (a connection closed mid-handshake while a server restarts is one)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return HandshakeRejected(NotReadyKind.TLS_CERTIFICATE, (
            f"the server's TLS certificate did not verify against the session's CA "
            f"({exc.verify_message}): it is not the certificate it was given"))
    if exc.reason in _PLAIN_HTTP_REASONS:
        return HandshakeRejected(NotReadyKind.TLS_PLAIN_HTTP, _PLAIN_HTTP)
    return None


def probe_tls(host: str, port: int, path: str, timeout: float,
              tls: ssl.SSLContext) -> int | None:
    """One HTTPS GET verified by ``tls``: the status, or None if nothing answered yet.

    A handshake that can never succeed raises :class:`HandshakeRejected`. One that gets
    no answer at all is followed by a plain-HTTP probe: a server that answers that one
    (Waitress reads a ClientHello as the start of a request line and waits for its end)
    is not serving TLS.
    """
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
    try:
        conn.connect()
    except TimeoutError:
        conn.close()
        if probe(host, port, path, timeout) is not None:
            raise HandshakeRejected(NotReadyKind.TLS_PLAIN_HTTP, _PLAIN_HTTP) from None
        return None
    except ssl.SSLError as exc:
        conn.close()
        verdict = handshake_verdict(exc)
        if verdict is not None:
            raise verdict from None
        return None
    except OSError:
        conn.close()
        return None
    return _get(conn, path)


def probe(host: str, port: int, path: str, timeout: float) -> int | None:
    """One HTTP GET on a fresh connection: the status, or None if nothing answered."""
    return _get(http.client.HTTPConnection(host, port, timeout=timeout), path)


def _get(conn: http.client.HTTPConnection, path: str) -> int | None:
    try:
        conn.request("GET", request_target(path),
                     headers={"Connection": "close", "User-Agent": "pytest-flaskserve"})
        response = conn.getresponse()
        # The status line is the answer. A small body of known length is read so the
        # server finishes its write cleanly; a streamed or large one is not waited for
        # (an endless stream on the ready path held the probe past every deadline).
        if response.length is not None and response.length <= _READ_LIMIT:
            response.read()
        return response.status
    except (TimeoutError, OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def probe_uwsgi(host: str, port: int, path: str, timeout: float) -> int | None:
    """One request in uWSGI's native protocol (what nginx's ``uwsgi_pass`` speaks): the
    status of the HTTP response the app sends back, or None if nothing answered."""
    path_info, _, query = path.partition("?")
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path_info, "QUERY_STRING": query,
           "REQUEST_URI": path, "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": host,
           "SERVER_PORT": str(port), "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": f"{host}:{port}",
           "HTTP_USER_AGENT": "pytest-flaskserve", "wsgi.url_scheme": "http"}
    body = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
                    for k, v in ((k.encode(), v.encode()) for k, v in env.items()))
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack("<BHB", 0, len(body), 0) + body)
            head = b""
            while b"\r\n" not in head and len(head) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        parts = head.split(b" ", 2)
        return int(parts[1]) if len(parts) >= 2 and parts[0].startswith(b"HTTP/") else None
    except (TimeoutError, OSError, ValueError):
        return None


#: how a server on a port is asked whether it serves, by the protocol it speaks there
PROBES: dict[str, Callable[[str, int, str, float], int | None]] = {
    "http": probe, "uwsgi": probe_uwsgi,
}


def wait_until_serving(
    host: str,
    port: int,
    path: str,
    *,
    poll_exit: Callable[[], int | None],
    timeout: float,
    owns_port: Callable[[], bool] | None = None,
    fail_fast: Callable[[], tuple[NotReadyKind, str] | None] | None = None,
    probe_timeout: float = 5.0,
    protocol: str = "http",
    tls: ssl.SSLContext | None = None,
) -> Ready:
    """Probe ``http://host:port/path`` until it answers or ``timeout`` seconds pass.

    ``poll_exit`` returns the server's exit code once it has exited. ``owns_port``, when
    given, confirms the answering socket belongs to our process tree, so a stranger on
    the port is never taken for our server. ``fail_fast`` may return a kind and a reason to
    stop waiting early (evidence, such as a log line, that the start cannot succeed).
    ``tls`` makes every probe an HTTPS request verified by that context.
    """
    ask = PROBES[protocol] if tls is None else functools.partial(probe_tls, tls=tls)
    t0 = time.monotonic()
    deadline = t0 + timeout
    probes = 0
    # A master that accepted the connection but has no worker yet holds a probe until
    # it times out; start short so exits and fail-fast hints are seen promptly, and grow
    # so an app whose ready path is slow still gets a probe long enough to answer.
    this_timeout = min(0.25, probe_timeout)
    while True:
        code = poll_exit()
        if code is not None:
            raise NotReady(NotReadyKind.EXITED, "exited before serving", exit_code=code,
                           seconds=time.monotonic() - t0)
        if fail_fast is not None:
            found = fail_fast()
            if found is not None:
                kind, reason = found
                raise NotReady(kind, reason, seconds=time.monotonic() - t0)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NotReady(NotReadyKind.TIMEOUT, f"no HTTP answer on {path} within {timeout:g} s",
                           seconds=time.monotonic() - t0)
        probes += 1
        started = time.monotonic()
        try:
            status = ask(host, port, path, min(this_timeout, max(remaining, 0.05)))
        except HandshakeRejected as rejected:
            raise NotReady(rejected.kind, rejected.reason,
                           seconds=time.monotonic() - t0) from None
        if status is None and time.monotonic() - started >= this_timeout * 0.9:
            this_timeout = min(this_timeout * 2, probe_timeout)
        if status is not None:
            code = poll_exit()
            if code is not None:
                raise NotReady(NotReadyKind.EXITED, "exited before serving", exit_code=code,
                               seconds=time.monotonic() - t0)
            if owns_port is None or owns_port():
                return Ready(status=status, seconds=time.monotonic() - t0, probes=probes)
            raise NotReady(NotReadyKind.FOREIGN_PORT,
                           f"another process already answers on {host}:{port}; it is not ours",
                           seconds=time.monotonic() - t0)
        # Connection refused comes back at once (a refused probe costs ~0.1 ms of CPU).
        # The pause between probes is the delay we add to a start, so it stays a small
        # fraction of the time already waited (3 %, between 2 and 50 ms): a 150 ms start
        # is seen within ~4 ms, a slow one does not spin.
        now = time.monotonic()
        time.sleep(min(_pause(now - t0), max(deadline - now, 0)))


def _pause(elapsed: float) -> float:
    """Seconds to wait before the next probe after ``elapsed`` seconds of waiting."""
    return min(max(0.002, elapsed * 0.03), 0.05)

"""A throwaway certificate authority and a server certificate for TLS test servers.

Made with `trustme <https://trustme.readthedocs.io>`_ (the library for exactly this):
one CA per session, one certificate signed by it for ``localhost``, ``127.0.0.1`` and
``::1`` (and the bind address, when that is another one). Nothing here trusts the CA
system-wide: clients are given :attr:`TLSFiles.ca_path` (``requests``' ``verify=``,
``httpx``' ``verify=``, ``curl --cacert``, :func:`client_context`).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_flaskserve.errors import UsageError

#: the names every TLS test server's certificate is valid for
IDENTITIES = ("localhost", "127.0.0.1", "::1")
INSTALL_HINT = "pip install 'pytest-flaskserve[tls]' (it adds trustme)"


@dataclass(frozen=True)
class TLSFiles:
    """PEM files on disk: the CA to trust, and the server's certificate and key.

    ``key_path`` is an unencrypted PKCS#8 key (Granian reads no other format; every
    OpenSSL-based server reads it too). ``cert_path`` holds the leaf certificate alone.
    """

    directory: Path
    ca_path: Path
    cert_path: Path
    key_path: Path

    def remove(self) -> None:
        """Delete the files (the end of a session)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def make_tls_files(directory: Path, host: str | None = None) -> TLSFiles:
    """Write a new CA and a certificate it signed into ``directory`` (created, mode 0700).

    ``host`` (the servers' bind address) is added to the certificate's names when it is a
    specific address other than the loopback ones; a wildcard address (``0.0.0.0``,
    ``::``) is nobody's name, so clients reach such a server as ``127.0.0.1``.
    A :class:`UsageError` says how to install trustme when it is missing.
    """
    try:
        import trustme
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
            load_pem_private_key,
        )
    except ImportError:
        raise UsageError(f"TLS test servers need trustme: {INSTALL_HINT}") from None
    identities = list(IDENTITIES)
    if host and host not in identities and not _is_wildcard(host):
        identities.append(host)
    ca = trustme.CA(organization_name="pytest-flaskserve")
    leaf = ca.issue_cert(*identities, organization_name="pytest-flaskserve")
    key = load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = TLSFiles(directory=directory, ca_path=directory / "ca.pem",
                     cert_path=directory / "server.pem", key_path=directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca_path))
    leaf.cert_chain_pems[0].write_to_path(str(files.cert_path))
    fd = os.open(files.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pkcs8)
    return files


def client_context(ca_path: str | Path) -> ssl.SSLContext:
    """A client context that trusts ``ca_path`` alone and checks the host name."""
    return ssl.create_default_context(cafile=str(ca_path))


def client_host(host: str) -> str:
    """The name a client uses for a server bound to ``host`` (a wildcard bind is reached
    on loopback, which the certificate names)."""
    if _is_wildcard(host):
        return "::1" if ":" in host else "127.0.0.1"
    return host


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


class SessionTLS:
    """The session's CA and certificate, made on first use (a run without TLS servers
    never pays for key generation) and removed by :meth:`close`. Thread-safe: servers
    of a module start in parallel threads."""

    def __init__(self, directory: Callable[[], Path], host: str) -> None:
        self._directory = directory
        self._host = host
        self._files: TLSFiles | None = None
        self._lock = threading.Lock()

    def files(self) -> TLSFiles:
        with self._lock:
            if self._files is None:
                self._files = make_tls_files(self._directory() / "tls", self._host)
            return self._files

    def close(self) -> None:
        with self._lock:
            if self._files is not None:
                self._files.remove()
                self._files = None

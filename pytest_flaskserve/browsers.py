"""Chromium for browser tests: the distribution's binary and the flags a CI machine needs.

One place for both, used by the Playwright integration (``plugin/browser_fixtures.py``, which
applies them where pytest-playwright launches the browser) and by :func:`selenium_chrome`
for Selenium. No browser is downloaded: Debian's ``chromium`` and ``chromium-driver``
packages provide ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

#: Chromium's names on Linux distributions, in the order they are looked up
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Flags for a machine without a display, a GPU or a network beyond loopback. Without the
#: background-networking ones Chromium keeps connecting to Google's hosts, which a closed
#: CI network refuses, at every start; a small /dev/shm (containers) crashes tabs.
CI_FLAGS = (
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-quic",
    "--no-first-run",
)
#: Chromium refuses to start as root without it (CI runs as root)
ROOT_FLAGS = ("--no-sandbox",)


def chromium_executable() -> str | None:
    """The installed Chromium (``/usr/bin/chromium`` on Debian), or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromedriver_executable() -> str | None:
    """The installed ChromeDriver (``/usr/bin/chromedriver`` on Debian), or None."""
    return shutil.which("chromedriver")


def chromium_flags(existing: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``existing`` plus the CI flags it lacks (and ``--no-sandbox`` when running as root)."""
    wanted = [*CI_FLAGS, *(ROOT_FLAGS if os.geteuid() == 0 else ())]
    return [*existing, *(flag for flag in wanted if flag not in existing)]


def spki_flag(cert_path: str | os.PathLike[str]) -> str:
    """Chromium's flag that accepts exactly this certificate (by the SHA-256 of its public
    key) although no trusted CA signed it: the TLS test servers' certificate is accepted,
    and certificate errors of every other site still fail."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return ("--ignore-certificate-errors-spki-list="
            + base64.b64encode(hashlib.sha256(spki).digest()).decode())


def selenium_chrome(*, headless: bool = True, arguments: tuple[str, ...] = (),
                    trust_cert: str | os.PathLike[str] | None = None) -> Any:
    """A Selenium ``webdriver.Chrome`` on the installed Chromium and ChromeDriver, with the
    CI flags; use it as a context manager (``with selenium_chrome() as driver:``) so the
    browser is quit. Nothing is downloaded: a missing binary is a RuntimeError that says
    what to install. ``trust_cert``: a server certificate to accept (see :func:`spki_flag`),
    e.g. the TLS test servers' certificate (``pytest_flaskserve.tls.TLSFiles.cert_path``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = chromium_executable(), chromedriver_executable()
    if binary is None or driver is None:
        raise RuntimeError("Selenium needs Chromium and ChromeDriver: apt-get install "
                           "chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    if trust_cert is not None:
        arguments = (*arguments, spki_flag(trust_cert))
    for flag in chromium_flags([*(("--headless=new",) if headless else ()), *arguments]):
        options.add_argument(flag)
    # Chromium under ChromeDriver leaves its process-singleton directory
    # (org.chromium.Chromium.XXXXXX) in TMPDIR when the driver quits it: it gets a TMPDIR
    # of its own, removed with the browser.
    scratch = tempfile.mkdtemp(prefix="flaskserve-chromium-")
    service = Service(executable_path=driver, env={**os.environ, "TMPDIR": scratch})

    class Chrome(webdriver.Chrome):
        def quit(self) -> None:
            try:
                super().quit()
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    try:
        return Chrome(options=options, service=service)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise

"""A ``requests.Session`` that resolves relative URLs against the server's base URL."""

from __future__ import annotations

from typing import Any

import requests


class BaseUrlSession(requests.Session):
    """``session.get("/path")`` requests ``base_url + "/path"``; absolute URLs pass through.

    ``ca_path`` (a PEM file) is the CA its HTTPS requests trust instead of the system's.
    """

    def __init__(self, base_url: str, ca_path: str | None = None) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        if ca_path is not None:
            self.verify = ca_path

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if isinstance(url, bytes):
            url = url.decode()
        if not url.startswith(("http://", "https://")):
            url = self.base_url + "/" + url.lstrip("/")
        kwargs.setdefault("timeout", 30)
        if isinstance(self.verify, str):
            # given per request: requests lets REQUESTS_CA_BUNDLE override a session's verify
            kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)

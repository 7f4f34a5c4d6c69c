"""A ``requests.Session`` that resolves relative URLs against the server's base URL."""

from __future__ import annotations

from typing import Any

import requests


class BaseUrlSession(requests.Session):
    """``session.get("/path")`` requests ``base_url + "/path"``; absolute URLs pass through."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if isinstance(url, bytes):
            url = url.decode()
        if not url.startswith(("http://", "https://")):
            url = self.base_url + "/" + url.lstrip("/")
        kwargs.setdefault("timeout", 30)
        return super().request(method, url, *args, **kwargs)

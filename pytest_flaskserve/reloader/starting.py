"""How a :class:`~pytest_flaskserve.reloader.server.ReloadingServer` starts its server
(:data:`Starter`, :func:`default_starter`) and probes it (:func:`fetch`)."""

from __future__ import annotations

import http.client
from collections.abc import Callable

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.lifecycle.supervisor import ServerHandle, StartConfig, start_server
from pytest_flaskserve.servers import ServerOptions

Starter = Callable[[ResolvedApp, ServerOptions], ServerHandle]


def default_starter(server: str, config: StartConfig) -> Starter:
    """Start through the supervisor directly (scripts and benchmarks; the fixture passes
    its own starter so servers are recorded and reported with the test)."""
    launcher = servers.get(server)

    def start(app: ResolvedApp, options: ServerOptions) -> ServerHandle:
        return start_server(launcher, app, options, config)

    return start


def fetch(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int | None, str]:
    """One GET on a fresh connection: (status, body), or (None, "") if nothing answered."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close",
                                           "User-Agent": "pytest-flaskserve-reloader"})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    except (TimeoutError, OSError, http.client.HTTPException):
        return None, ""
    finally:
        conn.close()

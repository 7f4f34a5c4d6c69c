"""How a :class:`~pytest_flaskserve.reloader.server.ReloadingServer` starts its server
(:data:`Starter`, :func:`default_starter`) and probes it (:func:`fetch`)."""

from __future__ import annotations

from collections.abc import Callable

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.lifecycle.supervisor import ServerHandle, StartConfig, start_server
from pytest_flaskserve.parity.wire import send
from pytest_flaskserve.servers import ServerOptions

Starter = Callable[[ResolvedApp, ServerOptions], ServerHandle]


def default_starter(server: str, config: StartConfig) -> Starter:
    """Start through the supervisor directly (scripts and benchmarks; the fixture passes
    its own starter so servers are recorded and reported with the test)."""
    launcher = servers.get(server)

    def start(app: ResolvedApp, options: ServerOptions) -> ServerHandle:
        return start_server(launcher, app, options, config)

    return start


def fetch(host: str, port: int, path: str, timeout: float = 5.0, *,
          ca_path: str | None = None) -> tuple[int | None, str]:
    """One GET on a fresh connection (HTTPS trusting ``ca_path`` if given): (status, body),
    or (None, "") if nothing answered within ``timeout`` seconds."""
    exchange = send(host, port, "GET", path, timeout=timeout, ca_path=ca_path)
    if exchange.status is None or exchange.error is not None:
        return None, ""
    return exchange.status, exchange.text

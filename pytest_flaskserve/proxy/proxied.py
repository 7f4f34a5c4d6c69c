"""Start a server and nginx in front of it; one handle for both.

The server starts first and must serve (in the protocol nginx will speak to it) before
nginx starts, so a failure is always named after the part that failed. The handle's
``url`` is nginx's, ``upstream_url`` the server's; ``pid``, ``read_log()`` and
``wait_for_log()`` are the server's (that is where the app runs), ``log_tail()`` adds
nginx's error and access logs, and ``stop()`` stops nginx first (gracefully: requests
under way finish), then the server.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.lifecycle.handle import ServerHandle
from pytest_flaskserve.lifecycle.supervisor import StartConfig, start_server
from pytest_flaskserve.proxy import nginx
from pytest_flaskserve.proxy.front import NginxFront, start_front
from pytest_flaskserve.servers import Launcher, ServerOptions

_counter = itertools.count(1)


@dataclass
class ProxiedHandle(ServerHandle):
    """A server behind nginx (see the module docstring for which end each field is)."""

    upstream: ServerHandle | None = None
    front: NginxFront | None = None

    @property
    def upstream_url(self) -> str:
        assert self.upstream is not None
        return self.upstream.url

    @property
    def nginx(self) -> NginxFront:
        assert self.front is not None
        return self.front

    def is_running(self) -> bool:
        assert self.upstream is not None
        return self.upstream.is_running() and self.nginx.is_running()

    @property
    def exit_code(self) -> int | None:
        assert self.upstream is not None
        code = self.upstream.exit_code
        return code if code is not None else self.nginx.process.poll()

    def log_tail(self, lines: int = 40) -> str:
        assert self.upstream is not None
        return f"{self.upstream.log_tail(lines)}\n{self.nginx.log_tail(lines // 2)}"

    def stop(self) -> int | None:
        assert self.upstream is not None
        try:
            self.nginx.stop()
        finally:
            code = self.upstream.stop()
            self.stop_result = self.upstream.stop_result
            self._stopped()
        return code


def start_proxied(launcher: Launcher, app: ResolvedApp, options: ServerOptions,
                  config: StartConfig) -> ProxiedHandle:
    """Start ``launcher.behind`` and nginx in front of it (``launcher`` is ``X+nginx``)."""
    from pytest_flaskserve.proxy.site_file import user_server_block

    behind = launcher.behind
    assert behind is not None and behind.proxy_protocol is not None
    protocol = behind.proxy_protocol
    site_file = config.nginx_conf
    if site_file is not None:
        user_server_block(site_file, "127.0.0.1:1", "127.0.0.1:2")  # a usage error first
    tls = config.tls if options.tls else None
    # nginx terminates TLS; the server behind it speaks plain HTTP (or uwsgi) on loopback
    upstream = start_server(behind, app, dataclasses.replace(options, tls=False), config,
                            protocol=protocol)
    prefix = config.log_dir / f"{launcher.name}-{next(_counter)}"
    upstream_address = f"{upstream.host}:{upstream.port}" if ":" not in upstream.host \
        else f"[{upstream.host}]:{upstream.port}"

    def server_block(listen: str) -> str:
        if site_file is not None:
            return user_server_block(site_file, listen, upstream_address)
        return nginx.server_block(nginx.Site(
            listen=listen, upstream=upstream_address, protocol=protocol,
            tls=(str(tls.cert_path), str(tls.key_path)) if tls is not None else None))

    try:
        front = start_front(server_block=server_block, prefix=prefix,
                            log_path=prefix / "error.log", host=config.host,
                            ready_path=config.ready_path,
                            startup_timeout=config.startup_timeout,
                            stop_timeout=config.stop_timeout,
                            upstream_alive=upstream.is_running, name=launcher.name,
                            ca_path=str(tls.ca_path) if tls is not None else None)
    except BaseException:
        upstream.stop()
        raise
    passes = "uwsgi_pass" if protocol == "uwsgi" else "proxy_pass"
    notes = (*upstream.notes, f"behind nginx ({passes} to {upstream.url}), config "
             f"{front.config_path}" + (f" from {site_file} (listen and upstream rewritten)"
                                       if site_file is not None else ""))
    fields = {f.name: getattr(upstream, f.name) for f in dataclasses.fields(ServerHandle)
              if f.name not in ("_on_stop", "_on_stop_lock")}  # its own callbacks
    fields.update(server=launcher.name, url=front.url, host=front.host, port=front.port,
                  ready_seconds=upstream.ready_seconds + front.ready_seconds, notes=notes,
                  stop_result=None, ca_path=str(tls.ca_path) if tls is not None else None)
    return ProxiedHandle(**fields, upstream=upstream, front=front)


__all__ = ["ProxiedHandle", "start_proxied"]

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
from typing import TYPE_CHECKING

from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.lifecycle.handle import ServerHandle
from pytest_flaskserve.lifecycle.supervisor import StartConfig, start_server
from pytest_flaskserve.proxy import nginx
from pytest_flaskserve.proxy.front import NginxFront, start_front
from pytest_flaskserve.servers import Launcher, ServerOptions

if TYPE_CHECKING:
    from pytest_flaskserve.proxy.site_file import SiteFile

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

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
    from pytest_flaskserve.proxy.site_file import read_site_file

    behind = launcher.behind
    assert behind is not None and behind.proxy_protocol is not None
    tls = config.tls if options.tls else None
    site = read_site_file(config.nginx_conf) if config.nginx_conf is not None else None
    protocol = behind.proxy_protocol
    if site is not None:  # the site file says what nginx speaks to the server
        protocol = _protocol_for(site, behind, tls is not None)
    # nginx terminates TLS; the server behind it speaks plain HTTP (or uwsgi) on loopback
    upstream = start_server(behind, app, dataclasses.replace(options, tls=False), config,
                            protocol=protocol)
    prefix = config.log_dir / f"{launcher.name}-{next(_counter)}"
    upstream_address = f"{upstream.host}:{upstream.port}" if ":" not in upstream.host \
        else f"[{upstream.host}]:{upstream.port}"
    certificate = (str(tls.cert_path), str(tls.key_path)) if tls is not None else None

    def server_block(listen: str) -> str:
        if site is not None:
            return site.render(listen, upstream_address, certificate)
        return nginx.server_block(nginx.Site(
            listen=listen, upstream=upstream_address, protocol=protocol, tls=certificate))

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
    notes = (*upstream.notes, f"behind nginx ({passes} to {upstream_address}), config "
             f"{front.config_path}" + (_site_note(site, tls is not None) if site else ""))
    fields = {f.name: getattr(upstream, f.name) for f in dataclasses.fields(ServerHandle)
              if f.name not in ("_on_stop", "_on_stop_lock")}  # its own callbacks
    fields.update(server=launcher.name, url=front.url, host=front.host, port=front.port,
                  ready_seconds=upstream.ready_seconds + front.ready_seconds, notes=notes,
                  stop_result=None, ca_path=str(tls.ca_path) if tls is not None else None)
    return ProxiedHandle(**fields, upstream=upstream, front=front)


def _protocol_for(site: SiteFile, behind: Launcher, tls: bool) -> str:
    """What nginx speaks to ``behind``, as the site file's block passes requests: every
    server speaks HTTP, only a server deployed behind ``uwsgi_pass`` speaks uwsgi."""
    block = site.block_to_run(tls)
    if behind.proxy_protocol in block.protocols:
        return behind.proxy_protocol or "http"
    if "http" in block.protocols:
        return "http"
    raise UsageError(f"--flask-nginx-conf={site.path}:{block.line}: this server block passes "
                     f"requests with uwsgi_pass (uWSGI's own protocol), which {behind.name} "
                     "does not speak; run it with uwsgi+nginx, or give a block that uses "
                     "proxy_pass http://...")


def _site_note(site: SiteFile, tls: bool) -> str:
    run = site.block_to_run(tls)
    left_out = [b.line for b in site.blocks if b is not run]
    return (f" from {site.path} (the server block of line {run.line}; "
            "listen, upstream" + (" and certificate" if tls else "") + " rewritten"
            + (f"; {'blocks of lines' if len(left_out) > 1 else 'the block of line'} "
               f"{', '.join(map(str, left_out))} left out: "
               f"{'they do' if len(left_out) > 1 else 'it does'} not serve the app here"
               if left_out else "") + ")")


__all__ = ["ProxiedHandle", "start_proxied"]

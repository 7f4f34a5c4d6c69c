"""``SERVER+nginx``: a production server behind a real nginx, as it is deployed.

Not a server of its own: one variant is made for every launcher whose
``proxy_protocol`` says how it sits behind a proxy (``proxy_pass`` over HTTP, or
``uwsgi_pass`` to uWSGI's native socket). Everything about the server itself is asked
of the launcher behind; starting one starts that server, then nginx in front of it.
Opt-in: by name (``--flask-servers``, the marker) or with ``--flask-proxy=nginx``.
"""

from __future__ import annotations

import dataclasses

from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.proxy import nginx
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest

#: the proxies a server can be put behind, by the suffix of its variant's name
PROXIES = ("nginx",)


class Proxied(Launcher):
    """The base of every ``SERVER+nginx`` variant (made by :func:`variant`)."""

    name = "proxied"
    description = "a server behind nginx"
    default = False
    needs_app_to_decide = True
    install_hint = nginx.INSTALL_HINT
    #: nginx terminates TLS (``listen ... ssl``) and passes plain HTTP to the server,
    #: so a server without TLS of its own (Waitress) serves HTTPS behind it
    terminates_tls = True

    @property
    def upstream(self) -> Launcher:
        assert self.behind is not None
        return self.behind

    def unavailable(self) -> str | None:
        return nginx.unavailable() or self.upstream.unavailable()

    def warm_refusal(self) -> str | None:
        """The server's (nginx, a C program, always starts cold)."""
        return self.upstream.warm_refusal()

    def worker_class_problem(self, worker_class: str) -> str | None:
        return self.upstream.worker_class_problem(worker_class)

    def unsupported(self, app: ResolvedApp) -> str | None:
        return self.upstream.unsupported(app)

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        """The command of the server behind nginx, speaking what nginx passes to it."""
        protocol = self.upstream.proxy_protocol or "http"
        plan = self.upstream.plan(dataclasses.replace(request, protocol=protocol, tls=None,
                                                      options=dataclasses.replace(
                                                          request.options, tls=False)))
        passes = "uwsgi_pass" if protocol == "uwsgi" else "proxy_pass"
        return dataclasses.replace(plan, notes=(
            *plan.notes, f"behind nginx ({passes} to {request.address})"))

    def explain_exit(self, code: int | None) -> str | None:
        return self.upstream.explain_exit(code)

    def load_failure(self, log: str) -> str | None:
        return self.upstream.load_failure(log)

    def start_cannot_succeed(self, log: str, *, tls: bool) -> tuple[str, str] | None:
        return self.upstream.start_cannot_succeed(log, tls=tls)

    def own_app(self) -> ResolvedApp | None:
        """A deployment file's command serves its own app behind nginx too."""
        return self.upstream.own_app()

    def refuses_server_args(self) -> str | None:
        return self.upstream.refuses_server_args()


def variant(upstream: Launcher, proxy: str = "nginx") -> Launcher:
    """The ``NAME+proxy`` launcher for ``upstream``."""
    attrs = {
        "name": f"{upstream.name}+{proxy}",
        "description": f"{upstream.description}, behind {proxy}",
        "behind": upstream,
        "stop_signal": upstream.stop_signal,
        "exit_codes": upstream.exit_codes,
        # a reloader is for development, which nobody runs behind nginx
        "supports_reload": False,
        "needs_app_to_decide": upstream.needs_app_to_decide,
        "__module__": __name__,
    }
    cls = type(f"{type(upstream).__name__}Behind{proxy.title()}", (Proxied,), attrs)
    return cls()  # type: ignore[no-any-return]

"""What the smoke checks share in one session: each server started once, the app's URL
map read once, and every route's GET answer cached for the cross-server comparison. No
pytest here (see :mod:`pytest_flaskserve.parity.smoke`)."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.errors import ServerStartupError, UsageError
from pytest_flaskserve.lifecycle.supervisor import ServerHandle
from pytest_flaskserve.parity.app_facts import AppFacts, Route, read_facts
from pytest_flaskserve.parity.wire import Exchange, send
from pytest_flaskserve.servers import ServerOptions

#: told of each server a check uses
Used = Callable[[ServerHandle], None]

#: A path no app routes: it must answer 404 everywhere.
UNKNOWN_PATH = "/flaskserve-smoke/no-such-route-7f3a"
#: Seconds one smoke request may take; exclude slower routes with --flask-smoke-exclude.
REQUEST_TIMEOUT = 10.0


class SmokeFailure(Exception):
    """A failed smoke check; its message is the whole report (no traceback)."""


class SkipCheck(Exception):
    """The check does not apply to this server; the message says why."""


@dataclass(frozen=True)
class SmokeSettings:
    """What the suite takes from the run's settings."""

    workers: int
    exclude: tuple[str, ...]
    ready_path: str
    stop_timeout: float
    startup_timeout: float
    load_dotenv: bool


@dataclass(frozen=True)
class SmokePlan:
    """What to check, fixed at collection: the app, the servers, the baseline."""

    app: ResolvedApp
    servers: tuple[str, ...]
    baseline: str | None
    skip: dict[str, str] = field(default_factory=dict)
    tls: bool = False  # served over TLS (--flask-tls): the TLS checks are collected


class SmokeState:
    """Servers, URL map and responses shared by the smoke checks of one session.

    ``start(server, options)`` starts a server for the suite (the pytest layer records
    it); ``base_options(server)`` is what the run gives that server, before the suite's
    worker count.
    """

    def __init__(self, plan: SmokePlan, *, start: Callable[[str, ServerOptions], ServerHandle],
                 base_options: Callable[[str], ServerOptions], settings: SmokeSettings) -> None:
        self.plan = plan
        self.settings = settings
        self._start = start
        self._base_options = base_options
        self._handles: dict[str, ServerHandle] = {}
        self._failed: dict[str, str] = {}
        self._facts: AppFacts | None = None
        self._gets: dict[str, dict[str, Exchange]] = {}

    # -- what the checks share -------------------------------------------------------
    def options(self, server: str) -> ServerOptions:
        """The server's options for this run, with the smoke suite's worker count."""
        return dataclasses.replace(self._base_options(server), workers=self.settings.workers)

    def handle(self, server: str, used: Used) -> ServerHandle:
        """The running smoke server for ``server``, started on first use; ``used`` is
        told of it (the pytest layer attaches its log to the check's report)."""
        known = self._handles.get(server)
        if known is not None and known.stop_result is None and known.is_running():
            used(known)
            return known
        if server in self._failed:
            raise SmokeFailure(f"{server} did not start (smoke::starts[{server}] has the "
                               f"report): {self._failed[server]}")
        try:
            handle = self._start(server, self.options(server))
        except ServerStartupError as exc:
            self._failed[server] = str(exc).splitlines()[0]
            raise SmokeFailure(str(exc)) from None
        self._handles[server] = handle
        used(handle)
        return handle

    def facts(self) -> AppFacts:
        if self._facts is None:
            try:
                # the environment every server gets (debug, env from markers); the
                # per-server parts of the options (workers, extra args) do not matter here
                self._facts = read_facts(self.plan.app, self._base_options(""),
                                         load_dotenv=self.settings.load_dotenv,
                                         timeout=self.settings.startup_timeout)
            except UsageError as exc:
                raise SmokeFailure(str(exc)) from None
        return self._facts

    def routes(self) -> list[Route]:
        return [r for r in self.facts().routes
                if not any(fnmatch.fnmatchcase(r.path, pat) for pat in self.settings.exclude)]

    def gets(self, server: str, used: Used) -> dict[str, Exchange]:
        """One GET of every route and of the unknown path, sent once per server."""
        cached = self._gets.get(server)
        if cached is None:
            handle = self.handle(server, used)
            paths = [r.path for r in self.routes()] + [UNKNOWN_PATH]
            cached = {p: get(handle, p) for p in paths}
            self._gets[server] = cached
        return cached

    def stopped(self, server: str) -> None:
        self._handles.pop(server, None)

    def close(self) -> None:
        """Stop what the stop checks did not (deselected, or a check failed first)."""
        handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            handle.stop()


def get(handle: ServerHandle, path: str) -> Exchange:
    return send(handle.host, handle.port, "GET", path, timeout=REQUEST_TIMEOUT,
                ca_path=handle.ca_path)

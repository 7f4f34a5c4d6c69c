"""The built-in smoke suite's checks (``--flask-smoke``): what works under the dev
server and breaks in production, checked with no test written. No pytest here: the
items that run the checks are in :mod:`pytest_flaskserve.plugin.smoke`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.errors import ServerStartupError, UsageError
from pytest_flaskserve.lifecycle.diagnose import DEV_SERVER_BANNER
from pytest_flaskserve.lifecycle.process import describe_exit
from pytest_flaskserve.lifecycle.supervisor import ServerHandle
from pytest_flaskserve.parity import proxy_urls
from pytest_flaskserve.parity.app_facts import AppFacts, Route, read_facts
from pytest_flaskserve.parity.wire import Exchange, send
from pytest_flaskserve.parity.workers import PinError, send_to, wait_for_workers
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
class Check:
    name: str
    summary: str
    production_only: bool = False
    compares: bool = False  # compared with the baseline server: not collected for it
    proxied_only: bool = False  # collected only for a server behind a proxy (SERVER+nginx)
    #: not collected behind a proxy: it must reach the server itself (a chosen worker)
    bare_only: bool = False


CHECKS: tuple[Check, ...] = (
    Check("starts", "the app starts and its ready path answers 2xx or 3xx"),
    Check("routes", "every GET route without URL parameters answers, without a 5xx"),
    Check("same-status", "every route answers with the same status as on the baseline "
                         "(development) server", compares=True),
    Check("not-found", "an unknown path answers 404"),
    Check("head", "HEAD answers like GET, without a body"),
    Check("workers", "every worker process gives the same answer: no per-process state",
          production_only=True, bare_only=True),
    Check("debug-off", "debug mode is off and the Werkzeug debugger cannot be reached",
          production_only=True),
    Check("no-dev-banner", "the development server's banner never appears in the log",
          production_only=True),
    Check("proxy", "behind the proxy, external URLs and redirects name the client-facing "
                   "scheme, host and port", proxied_only=True),
    Check("stop", "the server stops cleanly on its graceful signal"),
)


@dataclass(frozen=True)
class SmokePlan:
    """What to check, fixed at collection: the app, the servers, the baseline."""

    app: ResolvedApp
    servers: tuple[str, ...]
    baseline: str | None
    skip: dict[str, str] = field(default_factory=dict)


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
    return send(handle.host, handle.port, "GET", path, timeout=REQUEST_TIMEOUT)


def _body(ex: Exchange, width: int = 70) -> str:
    text = repr(ex.body[:width])[2:-1]
    return text + ("..." if len(ex.body) > width else "")


def _answer(ex: Exchange) -> str:
    return f"{ex.describe()} {_body(ex)}".rstrip()


# -- the checks: each returns notes for the report, or raises SmokeFailure -------------
Runner = Callable[[SmokeState, Used, str], list[str]]


def check_starts(state: SmokeState, used: Used, server: str) -> list[str]:
    handle = state.handle(server, used)
    path = state.settings.ready_path
    if handle.ready_status >= 400:
        raise SmokeFailure(
            f"{server} started, but its ready path {path} answered {handle.ready_status}: "
            "the smoke suite needs a path that answers 2xx or 3xx; point --flask-ready-path "
            "at one (e.g. /health)")
    return [f"{server} answered {handle.ready_status} on {path} "
            f"{handle.ready_seconds * 1000:.0f} ms after start: {handle.command}"]


def check_routes(state: SmokeState, used: Used, server: str) -> list[str]:
    gets = state.gets(server, used)
    routes = state.routes()
    bad = [f"  GET {r.path}: {_answer(gets[r.path])}" for r in routes
           if (gets[r.path].status or 599) >= 500]
    if bad:
        slow = [r.path for r in routes if gets[r.path].status is None
                and "within" in (gets[r.path].error or "")]
        hint = ("\n  a route that is slow or streams by design can be left out: "
                + " ".join(f"--flask-smoke-exclude={p}" for p in slow[:3])) if slow else ""
        raise SmokeFailure(f"{len(bad)} of {len(routes)} GET routes failed on {server} "
                           "(the server log is below):\n" + "\n".join(bad) + hint)
    notes = [f"GET {r.path}: {gets[r.path].describe()}" for r in routes]
    notes += [f"not requested: {rule} ({why})" for rule, why in state.facts().skipped]
    if not routes:
        notes.append("the app has no GET route without URL parameters")
    return notes


def check_same_status(state: SmokeState, used: Used, server: str) -> list[str]:
    base = state.plan.baseline
    assert base is not None and base != server
    try:
        theirs = state.gets(base, used)
    except SmokeFailure as exc:
        raise SmokeFailure(f"cannot compare with the baseline {base}: "
                           f"{str(exc).splitlines()[0]}") from None
    mine = state.gets(server, used)
    diffs = [f"  GET {path}: {theirs[path].describe()} on {base}, "
             f"{mine[path].describe()} on {server}"
             for path in mine if theirs[path].status != mine[path].status]
    if diffs:
        raise SmokeFailure(f"{len(diffs)} route(s) answer with another status on {server} "
                           f"than on {base}:\n" + "\n".join(diffs))
    return [f"{len(mine)} paths answer with the same status on {server} and {base}"]


def check_not_found(state: SmokeState, used: Used, server: str) -> list[str]:
    ex = state.gets(server, used)[UNKNOWN_PATH]
    if ex.status != 404:
        raise SmokeFailure(
            f"GET {UNKNOWN_PATH} (no such route) answered {_answer(ex)} on {server}, not 404: "
            "a catch-all route or an error handler hides unknown paths; let them answer 404, "
            "or deselect this check with -k 'not not-found'")
    return [f"GET {UNKNOWN_PATH}: 404 on {server}"]


def check_head(state: SmokeState, used: Used, server: str) -> list[str]:
    handle = state.handle(server, used)
    gets = state.gets(server, used)
    problems = []
    for route in state.routes():
        head = send(handle.host, handle.port, "HEAD", route.path, timeout=REQUEST_TIMEOUT)
        got = gets[route.path]
        if head.status is None:
            problems.append(f"  HEAD {route.path}: {head.describe()}")
            continue
        if head.status != got.status:
            problems.append(f"  HEAD {route.path}: {head.status}, but GET answered {got.describe()}")
        if got.header("Content-Type") != head.header("Content-Type"):
            problems.append(f"  HEAD {route.path}: Content-Type {head.header('Content-Type')!r}, "
                            f"GET {got.header('Content-Type')!r}")
        if head.after_headers:
            problems.append(
                f"  HEAD {route.path}: {len(head.after_headers)} bytes after the headers "
                f"({head.after_headers[:40]!r}): a HEAD response has no body (RFC 9110), and a "
                "client or proxy that reuses the connection reads them as the start of the "
                "next response")
    if problems:
        raise SmokeFailure(f"HEAD does not answer like GET without a body on {server}:\n"
                           + "\n".join(problems))
    return [f"HEAD matches GET on {len(state.routes())} routes"]


def check_workers(state: SmokeState, used: Used, server: str) -> list[str]:
    handle = state.handle(server, used)
    workers = wait_for_workers(handle, state.settings.workers)
    if not workers.several:
        raise SkipCheck(f"{server} serves every request from one process (pid "
                    f"{(workers.pids or (handle.pid,))[0]}): in-memory state is shared, there "
                    "are no workers to compare")
    pids = workers.pids
    how = ("paused the others" if workers.shared_socket
           else "reconnected until it accepted (a socket per worker)")
    notes = [f"{server} workers: {', '.join(map(str, pids))}; each request went to one chosen "
             f"worker ({how})"]
    divergent: list[str] = []

    def ask(pid: int, path: str) -> Exchange:
        try:
            return send_to(handle, pid, "GET", path, timeout=REQUEST_TIMEOUT, workers=workers)
        except PinError as exc:
            raise SmokeFailure(f"could not send GET {path} to one chosen worker: {exc}") from None

    for route in state.routes():
        first = {pid: ask(pid, route.path) for pid in pids}
        if len({(e.status, e.body) for e in first.values()}) == 1:
            continue
        again = {pid: ask(pid, route.path) for pid in pids}
        if any((first[p].status, first[p].body) != (again[p].status, again[p].body) for p in pids):
            notes.append(f"GET {route.path} changes from one request to the next even on one "
                         "worker (time, randomness): not judged")
            continue
        lines = [f"    worker pid {pid}: {_answer(ex)}" for pid, ex in first.items()]
        divergent.append(f"  GET {route.path}:\n" + "\n".join(lines))
    if divergent:
        raise SmokeFailure(
            f"{len(divergent)} route(s) answer differently depending on which of the "
            f"{len(pids)} {server} worker processes serves them:\n" + "\n".join(divergent) + "\n"
            "Each worker repeats its own answer, so the difference is memory private to each "
            "process (module globals, in-process caches, counters, per-process secrets): what "
            "one worker stores the others never see, and clients get a different answer from "
            "request to request. The development server runs one process and cannot show this. "
            "Keep shared state outside the process (a database, Redis, a fixed SECRET_KEY), or, "
            "if the value is per-process on purpose, exclude the route with "
            "--flask-smoke-exclude=PATH.")
    return notes


def check_debug_off(state: SmokeState, used: Used, server: str) -> list[str]:
    facts = state.facts()
    handle = state.handle(server, used)
    problems = []
    if facts.debug:
        problems.append(
            f"  app.debug is True in the environment {server} runs with (FLASK_DEBUG=1, "
            "--flask-debug, or DEBUG set by the app's own config): turn debug off for "
            "production")
    if facts.debugger_wrapped:
        problems.append("  app.wsgi_app is wrapped in Werkzeug's DebuggedApplication "
                        f"(middleware chain: {' -> '.join(facts.wrappers)}): remove it")
    js = get(handle, "/?__debugger__=yes&cmd=resource&f=debugger.js")
    if js.status == 200 and "javascript" in (js.header("Content-Type") or ""):
        problems.append(f"  GET /?__debugger__=yes&cmd=resource&f=debugger.js on {server} "
                        "served the Werkzeug debugger's script: the debugger is reachable")
    console = get(handle, "/console")
    if console.status == 200 and b"__debugger__" in console.body:
        problems.append(f"  GET /console on {server} served the Werkzeug debugger console, "
                        "which runs Python code for whoever can reach it")
    if problems:
        raise SmokeFailure(f"debug mode is on or the Werkzeug debugger is reachable under "
                           f"{server}:\n" + "\n".join(problems))
    return [f"app.debug is False; the debugger's script and console are not served by {server}"]


def check_no_dev_banner(state: SmokeState, used: Used, server: str) -> list[str]:
    handle = state.handle(server, used)
    log = handle.read_log()
    match = DEV_SERVER_BANNER.search(log)
    if match:
        start = log.rfind("\n", 0, match.start()) + 1
        end = log.find("\n", match.start())
        line = log[start:end if end != -1 else None].strip()
        raise SmokeFailure(
            f"{server}'s log shows the development server's banner ({line!r}): the app calls "
            f"app.run() when it is imported, so the dev server runs inside {server}; move the "
            "call under `if __name__ == '__main__':`")
    return [f"no development-server banner in {handle.log_path}"]


def check_stop(state: SmokeState, used: Used, server: str) -> list[str]:
    handle = state.handle(server, used)
    launcher = servers.get(server)
    sig = signal.Signals(launcher.stop_signal)
    code = handle.stop()
    state.stopped(server)
    result = handle.stop_result
    assert result is not None
    timeout = state.settings.stop_timeout
    if result.already_exited:
        raise SmokeFailure(f"{server} had already exited ({describe_exit(code)}) before it "
                           "was asked to stop (the log is below)")
    if result.forced:
        raise SmokeFailure(
            f"{server} did not exit within {timeout:g} s of {sig.name} and was killed with "
            "SIGKILL: something in the app (a non-daemon thread, an atexit handler, a "
            "blocking shutdown hook) keeps it alive; a process manager would do the same")
    if code not in (0, -sig.value):
        meaning = launcher.explain_exit(code)
        raise SmokeFailure(f"{server} exited with {describe_exit(code)} on {sig.name}"
                           + (f" ({meaning})" if meaning else "")
                           + ", not 0: the log below says why")
    how = "exit code 0" if code == 0 else f"the default action of {sig.name}"
    return [f"{server} stopped {result.seconds * 1000:.0f} ms after {sig.name} ({how})"]


def check_proxy(state: SmokeState, used: Used, server: str) -> list[str]:
    handle = state.handle(server, used)
    answers = state.gets(server, used)
    found = proxy_urls.leaks(handle.url, handle.upstream_url, answers)
    if found:
        raise SmokeFailure("\n".join([f"{server}: the app builds URLs from the address the "
                                      "proxy connects to, not the one the client used:",
                                      *(f"  {line}" for line in found),
                                      proxy_urls.PROXY_FIX_HINT]))
    return [f"{len(answers)} answers through {handle.url} name no other address"]


RUNNERS: dict[str, Runner] = {
    "starts": check_starts,
    "routes": check_routes,
    "same-status": check_same_status,
    "not-found": check_not_found,
    "head": check_head,
    "workers": check_workers,
    "debug-off": check_debug_off,
    "no-dev-banner": check_no_dev_banner,
    "proxy": check_proxy,
    "stop": check_stop,
}

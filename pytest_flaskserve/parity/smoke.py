"""The built-in smoke suite's checks (``--flask-smoke``): what works under the dev
server and breaks in production, checked with no test written. No pytest here: the
items that run the checks are in :mod:`pytest_flaskserve.plugin.smoke`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass

from pytest_flaskserve import servers
from pytest_flaskserve.lifecycle.diagnose import DEV_SERVER_BANNER
from pytest_flaskserve.lifecycle.process import describe_exit
from pytest_flaskserve.parity import https_answers, proxy_urls
from pytest_flaskserve.parity.smoke_state import (
    REQUEST_TIMEOUT,
    UNKNOWN_PATH,
    SkipCheck,
    SmokeFailure,
    SmokeState,
    Used,
    get,
)
from pytest_flaskserve.parity.wire import Exchange, send
from pytest_flaskserve.parity.workers import PinError, send_to, wait_for_workers


@dataclass(frozen=True)
class Check:
    name: str
    summary: str
    production_only: bool = False
    compares: bool = False  # compared with the baseline server: not collected for it
    proxied_only: bool = False  # collected only for a server behind a proxy (SERVER+nginx)
    #: not collected behind a proxy: it must reach the server itself (a chosen worker)
    bare_only: bool = False
    tls_only: bool = False  # collected only when the run serves over TLS (--flask-tls)


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
    Check("https-urls", "over TLS, external URLs and redirects name https", tls_only=True),
    Check("secure-cookie", "over TLS, the session cookie carries Secure when "
                           "SESSION_COOKIE_SECURE is set", tls_only=True),
    Check("stop", "the server stops cleanly on its graceful signal"),
)


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
    if handle.ready_status >= 500:  # the app's own error: no other path would mend it
        raise SmokeFailure(
            f"{server} started, but the app failed on its ready path {path} "
            f"({handle.ready_status}; its traceback is in the server log below): if it needs "
            "setting up first (a database, say), do that in its factory or a session fixture")
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
        head = send(handle.host, handle.port, "HEAD", route.path, timeout=REQUEST_TIMEOUT,
                    ca_path=handle.ca_path)
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
            f"  app.debug is True in the environment {server} runs with (FLASK_DEBUG=1 in "
            "the environment, or in .flaskenv/.env given to every server by "
            "--flask-load-dotenv although a production server never reads those files; "
            "--flask-debug; or DEBUG set by the app's own config): turn debug off for "
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


def check_https_urls(state: SmokeState, used: Used, server: str) -> list[str]:
    handle = state.handle(server, used)
    answers = state.gets(server, used)
    behind = servers.get(server).behind is not None
    found = https_answers.http_urls(handle.url, handle.upstream_url if behind else None,
                                    answers)
    if found:
        hint = https_answers.BEHIND_PROXY_HINT if behind else https_answers.NATIVE_HINT
        raise SmokeFailure("\n".join([f"{server}: the app builds http:// URLs although the "
                                      "client reached it over https://:",
                                      *(f"  {line}" for line in found), hint]))
    return [f"{len(answers)} answers over {handle.url} name no http:// URL of this site"]


def check_secure_cookie(state: SmokeState, used: Used, server: str) -> list[str]:
    facts = state.facts()
    name = facts.session_cookie_name
    cookies = https_answers.session_cookies(name, state.gets(server, used))
    if not cookies:
        raise SkipCheck(f"no GET route set the session cookie {name!r} on {server}: "
                        "nothing to judge")
    bare = [f"  GET {path}: Set-Cookie: {value[:160]}" for path, value, secure in cookies
            if not secure]
    if not facts.session_cookie_secure:
        # Not a failure: most apps set SESSION_COOKIE_SECURE only in their production
        # config, and the cookie works the same over https either way.
        return [f"SESSION_COOKIE_SECURE is not set: the session cookie {name!r} goes without "
                "Secure, so a browser also sends it over plain http; set "
                "SESSION_COOKIE_SECURE=True in production"]
    if bare:
        raise SmokeFailure("\n".join([
            f"SESSION_COOKIE_SECURE is True, but {len(bare)} Set-Cookie of the session cookie "
            f"{name!r} on {server} lack Secure:", *bare,
            "the code that sets the cookie (a custom SessionInterface.save_session, or an "
            "after_request/set_cookie that re-sets it) drops the flag: pass "
            "secure=self.get_cookie_secure(app) (or app.config['SESSION_COOKIE_SECURE']) to "
            "response.set_cookie"]))
    return [f"{len(cookies)} Set-Cookie of {name!r} on {server}, each with Secure"]


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
    "https-urls": check_https_urls,
    "secure-cookie": check_secure_cookie,
    "stop": check_stop,
}

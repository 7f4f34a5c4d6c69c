"""Turn a failed start (exit code, log, what we know of the app) into causes and fixes.

Pure functions over text: they never change an outcome, they only explain it. Each rule
looks for the evidence a user would look for in the log and says what to do next.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from pytest_flaskserve import servers
from pytest_flaskserve.lifecycle.readiness import NotReadyKind

DEV_SERVER_BANNER = re.compile(r"\* (Running on http|Serving Flask app)")
_NO_MODULE = re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '?([\w.]+)'?")
_SYNTAX = re.compile(r'File "([^"]+)", line (\d+)[^\n]*\n(?:.*\n){0,4}?\s*SyntaxError: (.*)')
#: Python's own words for a missing attribute (group 2: the name); each server's own
#: wording is on its launcher
_PYTHON_ATTR = (re.compile(r"module '([\w.]+)' has no attribute '(\w+)'"), 2)
#: the operating system's words for a port in use, whatever the server
_OS_PORT_TAKEN = r"Address already in use|Errno 98|EADDRINUSE"
#: announcements no one server owns
_COMMON_LISTENING = ("Listening on", "listening on")
_ALWAYS_THERE = ("flask", "werkzeug", "pytest_flaskserve")


@dataclass(frozen=True)
class _Wordings:
    """Every registered launcher's log wordings, merged: a log is read with all of them,
    since a script can start another server than the one it was run under."""

    attribute: tuple[tuple[re.Pattern[str], int], ...]
    port_taken: re.Pattern[str]
    announce: re.Pattern[str]
    packages: tuple[str, ...]
    daemon_hints: tuple[str, ...]
    failures: tuple[tuple[re.Pattern[str], str], ...]


@functools.cache
def _wordings() -> _Wordings:
    launchers = [servers.get(name) for name in servers.names()]
    attribute = [w for launcher in launchers for w in launcher.missing_attribute_wordings]
    attribute.insert(min(1, len(attribute)), _PYTHON_ATTR)
    port = [_OS_PORT_TAKEN, *(p.pattern for launcher in launchers
                              for p in launcher.port_in_use_wordings)]
    words = dict.fromkeys(w for launcher in launchers for w in launcher.listening_wordings)
    words.update(dict.fromkeys(_COMMON_LISTENING))
    packages = dict.fromkeys(_ALWAYS_THERE)
    packages.update(dict.fromkeys(launcher.requires.split(".")[0] for launcher in launchers
                                  if launcher.requires))
    return _Wordings(
        attribute=tuple(attribute),
        port_taken=re.compile("|".join(dict.fromkeys(port))),
        announce=re.compile(r"(?:" + "|".join(map(re.escape, words)) + r")"
                            r"\s+(?:https?://)?\[?[\w.:-]*?\]?:(\d{2,5})\b"),
        packages=tuple(packages),
        daemon_hints=tuple(dict.fromkeys(launcher.daemon_hint for launcher in launchers
                                         if launcher.daemon_hint)),
        failures=tuple(dict.fromkeys(w for launcher in launchers
                                     for w in launcher.failure_wordings)),
    )
_NO_PACKAGE_MAIN = re.compile(
    r"No module named ([\w.]+)\.__main__; '([\w.]+)' is a package and cannot be directly executed")
#: the shell's words for a program it cannot find (dash: "exec: NAME: not found")
_NOT_FOUND = re.compile(r"(?:^|\s)([\w.+/-]+): (?:command )?not found\s*$", re.M)
_EXCEPTION = re.compile(r"^(\w+(?:\.\w+)*(?:Error|Exception|Exit)): (.*)$", re.M)


@dataclass(frozen=True)
class Failure:
    """Everything known about one failed start."""

    server: str
    production: bool
    exit_code: int | None
    #: why the wait ended (what the rules decide on)
    kind: NotReadyKind
    #: the same in words
    reason: str
    log: str
    app_module: str | None = None
    app_attr: str | None = None
    timeout: float | None = None
    script_entry: bool = False
    #: the launcher's advice when the script it runs serves on a port of its own
    wrong_port_hint: str | None = None
    runs_at_import: bool = False
    #: processes of the server that had detached (daemonized) and were killed
    detached: int = 0
    #: the launcher's cause when it read in the log that the start cannot succeed
    launcher_cause: str | None = None


Rule = Callable[[Failure], "str | None"]


def _no_package_main(f: Failure) -> str | None:
    m = _NO_PACKAGE_MAIN.search(f.log)
    if not m:
        return None
    return (f"package {m.group(2)!r} has no __main__.py, so `python -m {m.group(2)}` cannot "
            "run it: add a __main__.py that calls app.run() to test that entry point, or "
            f"leave {f.server} out of the servers (it is skipped on its own unless named)")


def _detached(f: Failure) -> str | None:
    if not f.detached:
        return None
    return (f"the server detached itself and kept running after its launcher exited (daemon "
            f"mode: {', '.join(_wordings().daemon_hints) or 'its own setting'}): "
            f"{f.detached} such process(es) were killed; turn daemon mode off for tests "
            "(a server must stay in the foreground under a supervisor)")


def _missing_module(f: Failure) -> str | None:
    if _NO_PACKAGE_MAIN.search(f.log):
        return None
    m = _NO_MODULE.search(f.log)
    if not m:
        return None
    missing = m.group(1)
    top = missing.split(".")[0]
    if f.app_module and (f.app_module == missing or f.app_module.startswith(missing + ".")):
        return (f"the app module {missing!r} was not found by the server: run pytest from the "
                "project directory or install the project (pip install -e .)")
    if top in _wordings().packages:
        return (f"{top!r} is missing from the server's environment ({sys.executable}): "
                f"install it there (pip install {top}) or run pytest from the environment "
                "that has it")
    return (f"the app imports {missing!r}, which is not installed in {sys.executable} "
            "(often the wrong virtual environment, or a dependency missing from your "
            f"requirements): pip install the package that provides {top!r}")


def _syntax_error(f: Failure) -> str | None:
    m = _SYNTAX.search(f.log)
    if m:
        return (f"syntax error in {m.group(1)}, line {m.group(2)}: {m.group(3).strip()}; "
                "fix the file (python -m py_compile shows it too)")
    if "SyntaxError" in f.log:
        return "the app has a syntax error (see the log): fix the file"
    return None


def _attribute(f: Failure) -> str | None:
    for pattern, group in _wordings().attribute:
        m = pattern.search(f.log)
        if m:
            name = m.group(group)
            where = f" in {f.app_module!r}" if f.app_module else ""
            return (f"the server could not find {name!r}{where}: check the name after ':' "
                    "in the app spec (or give the factory as 'module:create_app()')")
    return None


def _runs_at_import(f: Failure) -> str | None:
    if f.production and (f.runs_at_import or DEV_SERVER_BANNER.search(f.log)):
        return ("the app calls app.run() at import time, so the development server starts "
                f"inside {f.server} instead of the app being served by it: move the call under "
                "`if __name__ == '__main__':`")
    return None


def _port_taken(f: Failure) -> str | None:
    if _wordings().port_taken.search(f.log):
        return ("the port is already in use by another process: stop it, or let the plugin "
                "choose (do not pass a fixed port in extra arguments)")
    if f.kind is NotReadyKind.FOREIGN_PORT:
        return "another process answered on the port chosen for this server: it was not ours"
    return None


def _exited_without_serving(f: Failure) -> str | None:
    if not f.script_entry or f.exit_code != 0:
        return None
    if "Ignoring a call to 'app.run()'" in f.log:
        return ("app.run() was ignored because FLASK_RUN_FROM_CLI=true is set in the "
                "environment: unset it")
    return ("the script exited without serving: it needs an `if __name__ == '__main__':` "
            "block that calls app.run() (python hello.py must start the server)")


def _timeout(f: Failure) -> str | None:
    if f.kind is not NotReadyKind.TIMEOUT:
        return None
    return (f"the server stayed up but never answered HTTP within {f.timeout:g} s: the app may "
            "block at import (waiting on a service, app.run() or serve_forever() at import), "
            "listen on another address, or need longer (--flask-startup-timeout)")


def _server_says(f: Failure) -> str | None:
    for pattern, cause in _wordings().failures:
        found = pattern.search(f.log)
        if found:
            return cause.format(*found.groups())
    return None


def _cannot_succeed(f: Failure) -> str | None:
    return f.launcher_cause if f.kind is NotReadyKind.CANNOT_SUCCEED else None


def _command_not_found(f: Failure) -> str | None:
    if f.exit_code != 127:
        return None
    found = _NOT_FOUND.findall(f.log)
    name = found[-1] if found else "the command"
    return (f"{name!r} is not found on PATH ({sys.executable}'s environment): install it "
            "there, or fix the command's spelling")


def _last_exception(f: Failure) -> str | None:
    found = _EXCEPTION.findall(f.log)
    if not found:
        return None
    name, text = found[-1]
    return f"the app raised {name}: {text.strip()} (traceback in the log below)"


def other_port(log: str, port: int) -> int | None:
    """A port the log says the server listens on that is not ``port``, if any."""
    for m in _wordings().announce.finditer(log):
        found = int(m.group(1))
        if found != port:
            return found
    return None


def _other_port(f: Failure) -> str | None:
    if f.kind is not NotReadyKind.WRONG_PORT:
        return None
    if f.script_entry and f.wrong_port_hint:
        return f.wrong_port_hint
    return ("the script serves on an address of its own: the plugin moves app.run() and "
            "Werkzeug's run_simple() to its port, not other servers started by the script; "
            "call app.run() under `if __name__ == '__main__':`, or test that server by name")


def _tls_handshake(f: Failure) -> str | None:
    if f.kind is NotReadyKind.TLS_CERTIFICATE:
        return (f"{f.server} served a certificate other than the session's: a certificate "
                "set by the app or its config (app.run(ssl_context=...), certfile in "
                "gunicorn.conf.py, extra server arguments) replaced the one the plugin gave; "
                "remove it for tests, or trust that certificate's CA in your own client")
    if f.kind is NotReadyKind.TLS_PLAIN_HTTP:
        return (f"{f.server} was started for TLS but answered in plain HTTP: its TLS options "
                "were overridden (extra server arguments or its config file) or this build "
                "of the server has no TLS")
    return None


RULES: tuple[Rule, ...] = (
    _tls_handshake,
    _detached,
    _cannot_succeed,
    _server_says,
    _command_not_found,
    _no_package_main,
    _runs_at_import,
    _other_port,
    _syntax_error,
    _missing_module,
    _attribute,
    _port_taken,
    _exited_without_serving,
    _timeout,
)


def diagnose(failure: Failure) -> list[str]:
    """Plain-words causes, most specific first; never empty."""
    causes = [c for c in (rule(failure) for rule in RULES) if c]
    if not causes:
        generic = _last_exception(failure)
        if generic:
            causes.append(generic)
    if not causes:
        last = next((ln.strip() for ln in reversed(failure.log.splitlines()) if ln.strip()), "")
        if failure.kind is NotReadyKind.EXITED and failure.exit_code and last \
                and len(last) <= 200:
            # a bare message and an exit: what sys.exit("...") leaves, from the app or the server
            causes.append(f"no known cause was recognised; its last words were {last!r}, as "
                          "when the app stops its own import with sys.exit(...) (a setting "
                          "missing outside development, say): read the log below")
        else:
            causes.append("no known cause was recognised: read the log below")
    return causes


def port_taken(log: str) -> bool:
    """True when the log says the address was in use (the supervisor retries then)."""
    return bool(_wordings().port_taken.search(log))

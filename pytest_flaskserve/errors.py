"""Exceptions that carry enough context to tell the user what to do next.

They hold no pytest types, so the library can be used from scripts and benchmarks;
``plugin.py`` turns them into usage errors or test failures.
"""

from __future__ import annotations

from typing import Any


class FlaskServeError(Exception):
    """Base class of every error this package raises on purpose."""


class FlaskServeWarning(UserWarning):
    """Something about a server the user should know, that is not a test failure."""


class UsageError(FlaskServeError):
    """Bad input from the user: a spec, option or marker argument.

    The message is one line that names the input and the fix; the plugin reports it as a
    pytest usage error (exit code 4) before any test runs.
    """


class AppImportError(UsageError):
    """The app's own code raised while it was imported or its factory called.

    Unlike a malformed spec, this can depend on the environment the app is imported
    with: a variable a test gives its servers (``flask_options(env=...)``) may fix it.
    """


class ServerStartupError(FlaskServeError):
    """A server exited, or never answered HTTP, before its deadline.

    ``str()`` is the full report: server, command line, exit code and its meaning,
    plain-words diagnosis and the tail of the log.
    """

    def __init__(
        self,
        message: str,
        *,
        server: str,
        command: str,
        exit_code: int | None,
        log_tail: str,
        diagnosis: list[str],
    ) -> None:
        super().__init__(message)
        self.server = server
        self.command = command
        self.exit_code = exit_code
        self.log_tail = log_tail
        self.diagnosis = diagnosis


class ServerDiedError(FlaskServeError):
    """A server that was serving exited while a test was using it."""

    def __init__(self, message: str, *, server: str, exit_code: int | None) -> None:
        super().__init__(message)
        self.server = server
        self.exit_code = exit_code


def hide_own_errors(excinfo: Any) -> bool:
    """pytest's ``__tracebackhide__`` hook, set as a global in the modules a test calls
    into: a frame there is left out of a failure report when the error is one of ours
    (its message already says what went wrong and what to do), and kept for any other
    exception, so a bug of ours still shows where it happened."""
    return bool(excinfo.errisinstance(FlaskServeError))

"""A deployment file's command as a launcher: the supervisor starts, waits for, diagnoses
and stops it like any other server, with the stop rules of the server it starts."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_flaskserve.appspec.grammar import AppSpec, ResolvedApp
from pytest_flaskserve.deploy import command as commands
from pytest_flaskserve.deploy.command import Command
from pytest_flaskserve.deploy.listen import Context
from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest, StopStrategy

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

#: the scratch directory of a context that only checks (``dry``): never written
_NOWHERE = Path("/nonexistent/flaskserve-deploy-check")


class DeployLauncher(Launcher):
    """Runs one :class:`~.command.Command`; built by :func:`make`, one class per command."""

    cold_reason = "a deployment file's command runs as it is written"

    command: Command
    server: Launcher | None
    default = False
    #: set by :func:`make`: "http" (an ``ID+nginx`` variant: the file's command behind a
    #: real nginx, which also terminates TLS for it) unless it starts a development server
    proxy_protocol = None

    def unavailable(self) -> str | None:
        return self.server.unavailable() if self.server is not None else None

    def load_failure(self, log: str) -> str | None:
        return self.server.load_failure(log) if self.server is not None else None

    def start_cannot_succeed(self, log: str, *, tls: bool) -> tuple[str, str] | None:
        return self.server.start_cannot_succeed(log, tls=tls) if self.server is not None else None

    def tls_unsupported(self) -> str | None:
        return (f"{self.name} runs {self.command.where} as written, and nothing in it gives "
                "the server the session's certificate"
                + (f"; {self.name}+nginx (--flask-proxy=nginx) serves HTTPS in front of it"
                   if self.proxy_protocol else ""))

    def refuses_server_args(self) -> str | None:
        return (f"{self.name} runs {self.command.where} as written; put the arguments in "
                "that file")

    def own_app(self) -> ResolvedApp | None:
        if self.command.app_words is not None:
            return None  # a config file alone: it serves the test's app
        analysis = commands.analyse(self.command)
        context = Context(self.command.where, self.command.cwd, _NOWHERE, "127.0.0.1", 0,
                          dry=True)
        rewritten = commands.rewrite(self.command, analysis, context)
        ref = rewritten.app if rewritten is not None and rewritten.app else None
        module, _, attr = (ref or "").partition(":")
        cwd = str(self.command.cwd)
        spec = AppSpec(raw=f"{self.name} ({self.command.where})", source=self.command.where,
                       base_dir=cwd, module=module or self.name, path_entry=cwd,
                       attr=attr.partition("(")[0] or None)
        return ResolvedApp(spec=spec, module=spec.module, attr=spec.attr or "app",
                           is_factory=False, args=(), kwargs=(), module_file=None,
                           is_package=False, script=None, script_reason="deployment command",
                           runs_at_import=False)

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        # config copies go to the start's scratch directory, next to its log; a plan only
        # rendered (the -v header) has none and writes nothing
        context = Context(self.command.where, self.command.cwd,
                          request.scratch_dir or _NOWHERE, request.host, request.port,
                          dry=request.scratch_dir is None)
        rendered = commands.render(self.command, context, request.app, self.server or self)
        return LaunchPlan(argv=rendered.argv, env=rendered.env, notes=rendered.notes,
                          temp_dirs=rendered.temp_dirs)

    def check(self) -> None:
        """Everything that would make the command fail to run on the test's port, as a
        :class:`UsageError` now (before any test), not at each start."""
        if self.command.has_placeholder():
            return
        analysis = commands.analyse(self.command)
        context = Context(self.command.where, self.command.cwd, _NOWHERE, "127.0.0.1", 0,
                          dry=True)
        if commands.rewrite(self.command, analysis, context) is None:
            problem = commands.unknown_problem(self.command, analysis)
            if problem:
                raise UsageError(problem)


def serves(command: Command) -> bool:
    """Whether ``command`` starts a web server: a server the plugin knows, invoked to
    serve (``flask run``, not ``flask db upgrade``), or any program given ``$PORT``."""
    analysis = commands.analyse(command)
    if analysis.server is None:
        return commands.unknown_problem(command, analysis) is None
    context = Context(command.where, command.cwd, _NOWHERE, "127.0.0.1", 0, dry=True)
    rewriter = analysis.server.deploy_rewriter()
    if rewriter is None:
        return True
    try:
        return rewriter(analysis.args[analysis.arg_start:], context).serves
    except UsageError:
        return True  # a server command that cannot run: check() says why


def for_command(argv_or_string: str | Sequence[str], placeholder: str, cwd: Path,
                where: str) -> DeployLauncher:
    """A launcher for any command line: a string is run by ``/bin/sh -c``, a list directly;
    ``placeholder`` is replaced by the port, and a command without it is treated like a
    deployment file's (a known server's listen address is moved, others need $PORT)."""
    if isinstance(argv_or_string, str):
        command = Command(id="command", where=where, cwd=cwd, shell=argv_or_string,
                          placeholder=placeholder)
    else:
        if not isinstance(argv_or_string, (list, tuple)) or not argv_or_string \
                or not all(isinstance(a, str) for a in argv_or_string):
            raise UsageError(f"{where}: {argv_or_string!r} is not a command; give a string or "
                             "a list of strings, e.g. ['gunicorn', '-b', '127.0.0.1:{port}', "
                             "'hello:app']")
        command = Command(id="command", where=where, cwd=cwd, argv=tuple(argv_or_string),
                          placeholder=placeholder)
    launcher = make(command)
    launcher.check()
    return launcher


def make(command: Command) -> DeployLauncher:
    """The launcher for ``command``, with the stop rules of the server it starts."""
    server = commands.analyse(command).server
    attrs: dict[str, Any] = {
        "name": command.id,
        "description": f"{command.where}: {command.original}",
        "command": command,
        "server": server,
        "stop_signal": server.stop_signal if server else signal.SIGTERM,
        "stop_strategy": server.stop_strategy if server else StopStrategy.GROUP,
        "exit_codes": dict(server.exit_codes) if server else {},
        "production": server.production if server else False,
        "install_hint": server.install_hint if server else "",
        # every command serves HTTP on the test's port (a uwsgi socket becomes an
        # http-socket); behind nginx it is proxy_pass'ed to like any production server
        "proxy_protocol": "http" if server is None or server.proxy_protocol else None,
    }
    cls = type(f"DeployLauncher[{command.id}]", (DeployLauncher,), attrs)
    launcher = cls()
    assert isinstance(launcher, DeployLauncher)
    return launcher

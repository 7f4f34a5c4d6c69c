"""What a launcher is: one class per server that renders a command, never runs one."""

from __future__ import annotations

import enum
import importlib.util
import re
import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pytest_flaskserve._child.app_settings import ENV as SETTINGS_ENV
from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.tls import TLSFiles

if TYPE_CHECKING:
    from pytest_flaskserve.deploy.listen import Rewriter
from pytest_flaskserve.servers.reloading import ReloadProfile


@dataclass(frozen=True)
class ServerOptions:
    """Per-server knobs a test can set; ``None`` keeps the server's (or script's) default."""

    workers: int | None = None
    threads: int | None = None
    worker_class: str | None = None
    debug: bool | None = None
    reload: bool | None = None
    extra_args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    #: config applied to the app on every server (canonical JSON, see appspec.config)
    config: str = ""
    #: the app's instance folder: "" its own, else a path (may hold a placeholder)
    instance_path: str = ""
    #: serve HTTPS with the session's certificate (see :attr:`Launcher.terminates_tls`)
    tls: bool = False

    def key(self) -> tuple[object, ...]:
        return (self.workers, self.threads, self.worker_class, self.debug, self.reload,
                self.extra_args, self.env, self.config, self.instance_path, self.tls)


@dataclass(frozen=True)
class LaunchRequest:
    app: ResolvedApp
    host: str
    port: int
    options: ServerOptions
    python: str
    #: a directory reserved for this start, for files the server writes (a server root,
    #: a generated config): next to the log in the session's temp dir, not yet created.
    #: None when the plan is only rendered (the ``-v`` header), never run.
    scratch_dir: Path | None = None
    #: what the server speaks on its port: "http", or "uwsgi" (uWSGI's native protocol,
    #: which it speaks behind nginx's ``uwsgi_pass``)
    protocol: str = "http"
    #: the certificate and key to serve HTTPS with; set exactly when ``options.tls`` is,
    #: and only for a launcher whose :meth:`Launcher.tls_unsupported` is None
    tls: TLSFiles | None = None

    @property
    def address(self) -> str:
        """``host:port``, with an IPv6 host in brackets (``[::1]:8000``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class LaunchPlan:
    """A rendered command: argv, environment changes, working directory, and notes that
    ``-v`` shows (for example why a generated entry module is used)."""

    argv: list[str]
    env: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: directories the plan made outside the start's scratch dir (e.g. a short path for
    #: Unix sockets); the supervisor removes them once the server has stopped
    temp_dirs: tuple[str, ...] = ()


class StopStrategy(enum.Enum):
    """How a server's process tree is told to stop (``lifecycle/stopping.py`` runs it)."""

    #: the stop signal to the whole process group, then wait, then SIGKILL
    GROUP = "group"
    #: a main process that stops its own workers and counts one that exits first as a
    #: crash: the stop signal goes to the main process alone, and the group is killed only
    #: if it has not ended within the stop timeout
    LEADER_FIRST = "leader first"
    #: a pre-fork master that kills workers it still counts once told to stop: the master
    #: is paused, its children get the stop signal and exit through their own clean path,
    #: then the master is told and resumed
    CHILDREN_FIRST = "children first"


class Launcher(ABC):
    """One server. Subclasses set the class attributes and implement :meth:`plan`.

    TLS: a server that can serve HTTPS itself says ``terminates_tls = True`` and, when
    ``request.tls`` is set, renders its own options for ``request.tls.cert_path`` and
    ``request.tls.key_path`` in :meth:`plan` (the supervisor then probes, and the handle
    names, ``https://``). One that cannot keeps the default, or overrides
    :meth:`tls_unsupported` to say why; its TLS tests are skipped with that reason.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    #: module or distribution that must be importable; None means always available
    requires: ClassVar[str | None] = None
    install_hint: ClassVar[str] = ""
    stop_signal: ClassVar[int] = signal.SIGTERM
    #: exit codes with a documented meaning for this server
    exit_codes: ClassVar[Mapping[int, str]] = {}
    #: a production server: the dev-server banner in its log means app.run() ran at import
    production: ClassVar[bool] = True
    supports_reload: ClassVar[bool] = False
    #: how its tree is stopped (see :class:`StopStrategy`)
    stop_strategy: ClassVar[StopStrategy] = StopStrategy.GROUP
    #: the older spelling of ``stop_strategy = StopStrategy.CHILDREN_FIRST`` (kept for
    #: launchers written against it)
    stop_children_first: ClassVar[bool] = False
    #: the older spelling of ``stop_strategy = StopStrategy.LEADER_FIRST``
    stop_leader_first: ClassVar[bool] = False
    #: how its reloader shows in its log and on its command line (None: nothing to test)
    reload_profile: ClassVar[ReloadProfile | None] = None
    #: its command is ``python -m MODULE`` or ``python SCRIPT``, so the warm launcher can
    #: fork it (a compiled program such as uWSGI always starts cold)
    starts_warm: ClassVar[bool] = False
    #: why it always starts cold (``-v`` and the header say so)
    cold_reason: ClassVar[str] = "its command is not this interpreter's python -m or script"
    #: modules the warm launcher imports once, ahead of time, for this server: only what
    #: its command always imports (a warm child must not hold a module its cold start
    #: would not; the rest it imports itself, as a cold start does)
    warm_preload: ClassVar[tuple[str, ...]] = ()
    #: entry-point groups it scans at start (scanned once in the warm launcher too)
    warm_entry_point_groups: ClassVar[tuple[str, ...]] = ()
    #: ``"module:function"`` run in every forked server before its entry point, to
    #: recompute what its preloaded modules computed at import from the zygote's cwd and
    #: environment (a module under ``pytest_flaskserve._child``; see its Gunicorn one)
    warm_refresh: ClassVar[str | None] = None
    #: it serves the app by running the app's own script (``python app.py``)
    runs_script: ClassVar[bool] = False
    #: what to do when the script it runs serves on an address of its own (the diagnosis)
    wrong_port_hint: ClassVar[str | None] = None
    #: how its log names an app attribute it could not find: (pattern, group of the name)
    missing_attribute_wordings: ClassVar[tuple[tuple[re.Pattern[str], int], ...]] = ()
    #: how its log says the address was in use (beyond the OS's own words)
    port_in_use_wordings: ClassVar[tuple[re.Pattern[str], ...]] = ()
    #: the words before ``host:port`` when it announces where it listens
    listening_wordings: ClassVar[tuple[str, ...]] = ()
    #: how it is told to daemonize (named when a server detached itself)
    daemon_hint: ClassVar[str] = ""
    #: its own words for a failure that is not the app's: (pattern, cause), the cause a
    #: ``str.format`` template of the pattern's groups; the diagnosis names the first match
    #: before it would blame the last exception in the log on the app
    failure_wordings: ClassVar[tuple[tuple[re.Pattern[str], str], ...]] = ()
    #: prefixes of environment variables it reads as configuration: never inherited by
    #: any server, so a stray one cannot change what is served
    scrubbed_env_prefixes: ClassVar[tuple[str, ...]] = ()
    #: part of the default set, which a test without a ``flask_servers`` marker (and a run
    #: without ``--flask-servers``) runs on. Variants of a server that is already in the set
    #: (other Gunicorn worker classes) say False: they multiply run time for little news,
    #: so they are opt-in by name.
    default: ClassVar[bool] = True
    #: how a deployment file starts this server: console scripts and ``python -m``
    #: modules (``gunicorn``); a command whose program is one of these is this server's
    commands: ClassVar[tuple[str, ...]] = ()
    #: how this server is deployed behind a reverse proxy: "http" (nginx ``proxy_pass``),
    #: "uwsgi" (``uwsgi_pass`` to its native protocol socket), or None for a server that
    #: is not deployed behind one (the development servers); a server with a protocol gets
    #: a ``SERVER+nginx`` variant in the registry
    proxy_protocol: ClassVar[str | None] = "http"
    #: in a ``SERVER+nginx`` variant, the launcher of the server behind the proxy
    behind: ClassVar[Launcher | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # a launcher that set one of the older flags names that strategy
        if "stop_strategy" not in cls.__dict__:
            if cls.__dict__.get("stop_children_first"):
                cls.stop_strategy = StopStrategy.CHILDREN_FIRST
            elif cls.__dict__.get("stop_leader_first"):
                cls.stop_strategy = StopStrategy.LEADER_FIRST

    def warm_refusal(self) -> str | None:
        """Why this server always starts cold, or None when it can start warm."""
        return None if self.starts_warm else self.cold_reason

    def refuses_server_args(self) -> str | None:
        """Why ``--flask-server-args`` cannot apply to this server (a command it runs as
        written), or None: the arguments go on the command line the launcher builds."""
        return None

    def unavailable(self) -> str | None:
        """Why the server cannot run in this environment, or None."""
        if self.requires is None:
            return None
        try:
            found = importlib.util.find_spec(self.requires) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"{self.name} is not installed in this environment ({self.install_hint})"
        return None

    def worker_class_problem(self, worker_class: str) -> str | None:
        """Why this server cannot run ``worker_class`` (the fix included), or None; servers
        without worker classes ignore the option and say nothing."""
        return None

    #: whether :meth:`unsupported` looks at the app, so choosing servers must import it
    #: first (kept False where the answer never depends on the app: no import needed)
    needs_app_to_decide = False

    def unsupported(self, app: ResolvedApp) -> str | None:
        """Why this app cannot run under this server at all (skip reason), or None."""
        return None

    #: renders ``request.tls`` into its command in :meth:`plan` (see the class docstring)
    terminates_tls: ClassVar[bool] = False

    def tls_unsupported(self) -> str | None:
        """Why this server cannot serve HTTPS itself (the skip reason), or None."""
        if self.terminates_tls:
            return None
        return f"{self.name} cannot terminate TLS itself"

    @abstractmethod
    def plan(self, request: LaunchRequest) -> LaunchPlan:
        """The command line and environment that start ``request.app`` on its port."""

    def target(self, app: ResolvedApp, *, call_syntax: bool, call_arguments: bool,
               why: str, any_module_name: bool = False,
               ) -> tuple[str, dict[str, str], tuple[str, ...]]:
        """``(reference, env, notes)``: the app in this server's own syntax, or the
        generated entry module (with its environment and a note saying ``why``) when that
        syntax cannot express the spec, or when the test gives the app config."""
        ref = app.reference(call_syntax=call_syntax, call_arguments=call_arguments,
                            any_module_name=any_module_name)
        if ref is not None:
            return ref, {}, ()
        if app.app_settings:
            why = "it applies the test's config to the app, the same way on every server"
        elif not (any_module_name or app.dotted_module):
            why = f"{self.name}'s 'module:object' syntax is for identifiers, not {app.module!r}"
        return ("pytest_flaskserve._entry:app", self.entry_env(app),
                (f"generated entry module for {app.describe()}: {why}",))

    @staticmethod
    def entry_env(app: ResolvedApp) -> dict[str, str]:
        env = {"FLASKSERVE_ENTRY": app.entry_payload()}
        if app.app_settings:
            env[SETTINGS_ENV] = app.app_settings
        return env

    def load_failure(self, log: str) -> str | None:
        """For a server that keeps running when the app failed to load and answers every
        request with 500 (mod_wsgi): what its log says about that failure, or None. Asked
        when the ready path first answers 5xx; a text here fails the start, with the log's
        causes, instead of handing out a server that can only fail."""
        return None

    def start_cannot_succeed(self, log: str, *, tls: bool) -> tuple[str, str] | None:
        """Read while waiting for the first answer: ``(what happened, cause)`` when the
        log already shows the start cannot succeed though the process is still up (a
        master that boots worker after worker, each exiting), else None. ``tls``: the
        start was asked to serve HTTPS."""
        return None

    def deploy_rewriter(self) -> Rewriter | None:
        """How this server's listen address is moved in a user's command line (see
        :mod:`pytest_flaskserve.deploy.listen`), or None: the command must use $PORT."""
        return None

    def own_app(self) -> ResolvedApp | None:
        """The app this launcher serves whatever the test's app is (a deployment file's
        command names its own), or None: it serves the test's app."""
        return None

    def explain_exit(self, code: int | None) -> str | None:
        if code is None:
            return None
        return self.exit_codes.get(code)


def ignored_args(request: LaunchRequest) -> tuple[str, ...]:
    """A note for a server run from a script the plugin ships, which has no command line
    of its own: extra arguments meant for it are not passed anywhere."""
    if not request.options.extra_args:
        return ()
    return (f"extra arguments {list(request.options.extra_args)} ignored: this server is run "
            "from a script and takes no command-line options",)

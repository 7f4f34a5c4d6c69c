"""What the plugin keeps for one pytest session: the :class:`Runtime` (settings, the app,
the shared :class:`Pool`, a :class:`Record` of every server's life). Imported on first
use, when a test asks for a server: loading the plugin does not import this module.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.appspec import config as app_config
from pytest_flaskserve.appspec.dotenv import dotenv_env
from pytest_flaskserve.appspec.grammar import AppSpec, ResolvedApp, parse_spec
from pytest_flaskserve.appspec.resolve import resolve_app
from pytest_flaskserve.errors import AppImportError, ServerStartupError, UsageError, hide_own_errors
from pytest_flaskserve.lifecycle.supervisor import ServerHandle, StartConfig, start_server
from pytest_flaskserve.plugin import deploy, markers, selection
from pytest_flaskserve.plugin.settings import Settings
from pytest_flaskserve.servers import ServerOptions
from pytest_flaskserve.tls import SessionTLS

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


@dataclass
class Record:
    """One server's life, for the terminal summary and reports."""

    server: str
    app: str
    command: str
    ready_seconds: float
    notes: tuple[str, ...]
    stop_seconds: float | None = None
    exit_code: int | None = None
    forced: bool = False
    failed: str | None = None
    #: "warm start", "cold start", or "cold start: why" when warm starts were on
    mode: str = "cold start"


class Pool:
    """Servers shared by several tests, keyed by (spec, server, options).

    Each key has its own lock, so different servers start at the same time (the
    module prestart runs them in threads) while one key never starts twice.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], ServerHandle | ServerStartupError] = {}
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._lock = threading.Lock()
        self.replaced: list[str] = []

    def has(self, key: tuple[Any, ...]) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: tuple[Any, ...], start: Callable[[], ServerHandle]) -> ServerHandle:
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            entry = self._entries.get(key)
            if isinstance(entry, ServerStartupError):
                raise entry
            if entry is not None and entry.is_running():
                return entry
            if entry is not None:
                self.replaced.append(entry.server)
                entry.stop()
            try:
                handle = start()
            except ServerStartupError as exc:
                with self._lock:
                    self._entries[key] = exc
                raise
            with self._lock:
                self._entries[key] = handle
            return handle

    def close(self) -> None:
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        live = [e for e in entries if isinstance(e, ServerHandle)]
        if len(live) > 1:
            with ThreadPoolExecutor(max_workers=min(len(live), 8)) as pool:
                list(pool.map(lambda h: h.stop(), live))
        else:
            for handle in live:
                handle.stop()


@dataclass
class Runtime:
    """Everything the plugin keeps for one pytest session (lives in ``config.stash``)."""

    settings: Settings
    rootdir: str
    worker: str = ""
    app_spec: AppSpec | None = None
    log_dir: Path | None = None
    #: a temporary directory of this session for the app (see appspec.config)
    session_dir: Path | None = None
    session_pool: Pool = field(default_factory=Pool)
    records: list[Record] = field(default_factory=list)
    collection_errors: list[str] = field(default_factory=list)
    #: the named app failed in its own code, imported with pytest's environment;
    #: reported once collection shows no test gives its servers more env
    app_import_error: str | None = None
    prestarted: set[str] = field(default_factory=set)
    warm: Any = None  # a warm.WarmLauncher when --flask-warm is on
    warm_fallbacks: list[tuple[str, str]] = field(default_factory=list)
    verbose: int = 0
    #: the server ids of --flask-deploy's files, and every deployment file read so far
    deploy_ids: tuple[str, ...] = ()
    deploy_files: dict[str, list[str]] = field(default_factory=dict)
    tls: SessionTLS | None = None  # made with the log directory, on first use

    # -- what a test asks for -------------------------------------------------------
    def settings_spec(self) -> AppSpec | None:
        """The app of the settings (named, or Flask's default file), parsed once."""
        s = self.settings
        if self.app_spec is None and s.app:
            self.app_spec = parse_spec(s.app, s.app_base, source=s.app_source)
        return self.app_spec

    def named_spec(self) -> AppSpec | None:
        """The app the user named (``--flask-app``, ini, ``FLASK_APP``, .env); None when
        only Flask's default ``wsgi.py``/``app.py`` or nothing names one."""
        return None if self.settings.sources.get("app") == "default" else self.settings_spec()

    def check_named_app(self) -> None:
        """Import the named app once, so a typo is a usage error before any test runs.

        An error in the app's own code is kept in :attr:`app_import_error` instead: a
        test's ``env=`` may be what fixes it.
        """
        spec = self.named_spec()
        if spec is None:
            return
        try:
            self.resolve(spec)
        except AppImportError as exc:
            self.app_import_error = str(exc)

    def spec_for(self, node: pytest.Item | pytest.Function | Any) -> AppSpec:
        mark = node.get_closest_marker("flask_app")
        if mark is not None:
            raw = markers.app_arg(mark.args, mark.kwargs)
            return parse_spec(raw, self.rootdir, source="@pytest.mark.flask_app")
        spec = self.settings_spec()
        if spec is not None:
            return spec
        in_dotenv = dotenv_env(self.rootdir, {}).get("FLASK_APP")
        raise UsageError(
            "no Flask app to serve: pass --flask-app=module:app, set flask_app in the ini "
            "file, set FLASK_APP, or add @pytest.mark.flask_app('module:app')"
            + (f" (FLASK_APP={in_dotenv} is in .flaskenv/.env, which the plugin reads only "
               "with --flask-load-dotenv)" if in_dotenv else "")
        )

    def resolve(self, spec: AppSpec, env: Mapping[str, str] | None = None) -> ResolvedApp:
        if self.settings.load_dotenv:  # imported with what its servers will get
            env = {**dotenv_env(spec.base_dir), **(env or {})}
        return resolve_app(spec, timeout=self.settings.startup_timeout, env=env)

    def resolve_for(self, node: Any) -> ResolvedApp:
        """The app ``node`` runs, imported with the environment its servers get: the same
        answer for parametrized tests, parity and smoke, wherever ``env=`` was given."""
        return self.resolve(self.spec_for(node), dict(self.options_for(node, "").env))

    def servers_for(self, node: Any) -> tuple[list[str], set[str]]:
        """The servers ``node`` runs on, and which were chosen explicitly (see selection);
        a ``flask_deploy`` marker runs it on its files' servers alone."""
        ids = deploy.marked(self, node)
        if ids is not None:
            if self.settings.proxy:
                ids = selection.with_proxy(ids, self.settings.proxy)
            return ids, set(ids)
        mark = node.get_closest_marker("flask_servers")
        marked = markers.servers_arg(mark.args, mark.kwargs) if mark is not None else None
        return selection.choose(marked, deploy.chosen(self), self.settings.proxy)

    def app_for(self, node: Any, server: str, options: ServerOptions) -> ResolvedApp:
        """What ``server`` serves for ``node``: the command of a deployment file names its
        own app; every other server serves the test's (imported with its env=)."""
        own = servers.get(server).own_app()
        if own is not None:
            return own
        return self.resolve(self.spec_for(node), dict(options.env))

    def scope_for(self, node: Any) -> str:
        mark = node.get_closest_marker("flask_scope")
        return markers.scope_arg(mark.args, mark.kwargs) if mark else self.settings.scope

    def options_for(self, node: Any | None, server: str) -> ServerOptions:
        """What ``server`` is started with for ``node``: the command-line and ini settings,
        then its ``flask_options`` markers, nearest last. ``node=None`` gives the settings
        alone (what the header shows before any test is collected)."""
        s = self.settings
        merged: dict[str, Any] = {
            "workers": s.workers, "threads": s.threads, "worker_class": s.worker_class,
            "debug": True if s.debug else None, "reload": None, "tls": s.tls,
        }
        extra: list[str] = [a for name, args in s.server_args if name == server for a in args]
        env: dict[str, str] = {}
        config: dict[str, Any] = {}
        instance_path = ""
        marks = list(node.iter_markers("flask_options")) if node is not None else []
        for mark in reversed(marks):
            opts = markers.options_arg(mark.args, mark.kwargs)
            for k in ("workers", "threads", "worker_class", "debug", "reload", "tls"):
                if opts[k] is not None:
                    merged[k] = opts[k]
            more = opts["extra_args"]
            if isinstance(more, Mapping):
                extra += list(more.get(server, ()))
            elif more:
                extra += list(more)
            env.update(opts["env"] or {})
            config.update(opts["config"] or {})
            instance_path = opts["instance_path"] or instance_path
        return ServerOptions(extra_args=tuple(extra), env=tuple(sorted(env.items())),
                             config=app_config.encode(config), instance_path=instance_path,
                             **merged)

    # -- starting -------------------------------------------------------------------
    def start_config(self, *, ready_path: str | None = None,
                     startup_timeout: float | None = None,
                     nginx_conf: Path | None = None) -> StartConfig:
        assert self.log_dir is not None
        s = self.settings
        return StartConfig(
            log_dir=self.log_dir, host=s.host,
            ready_path=ready_path or s.ready_path,
            startup_timeout=startup_timeout or s.startup_timeout,
            stop_timeout=s.stop_timeout, load_dotenv=s.load_dotenv, log_tag=self.worker,
            nginx_conf=nginx_conf or s.nginx_conf,
        )

    def session_tls(self) -> SessionTLS:
        if self.tls is None:
            self.tls = SessionTLS(self._log_dir, self.settings.host)
        return self.tls

    def _log_dir(self) -> Path:
        assert self.log_dir is not None
        return self.log_dir

    def start_warm(self) -> None:
        """Start the warm launcher in the background; the first server start waits for
        its preload (~0.1 s) and forks from it, as later ones do."""
        if self.settings.warm and self.warm is None:
            from pytest_flaskserve.warm.launcher import WarmLauncher

            self.warm = WarmLauncher(log_dir=self.log_dir)
            self.warm.start(wait=False)

    def close(self) -> None:
        """End of session: shared servers, the warm launcher, the TLS files."""
        self.session_pool.close()
        if self.tls is not None:
            self.tls.close()
        if self.warm is not None:
            self.warm_fallbacks = self.cold_starts()
            self.warm.close()
            self.warm = None

    def cold_starts(self) -> list[tuple[str, str]]:
        """(server, why) of every cold start while warm starts were on."""
        return list(self.warm.fallbacks) if self.warm is not None else self.warm_fallbacks

    def start(self, server: str | servers.Launcher, app: ResolvedApp, options: ServerOptions,
              config: StartConfig | None = None) -> ServerHandle:
        launcher = server if isinstance(server, servers.Launcher) else servers.get(server)
        server = launcher.name
        why = launcher.unavailable() or (launcher.tls_unsupported() if options.tls else None)
        if why:
            pytest.skip(why)
        if options.config or options.instance_path:
            assert self.session_dir is not None
            app = app_config.with_settings(app, options.config, options.instance_path,
                                           self.session_dir)
        # the one place a start gets the warm factory, whichever path starts it (a
        # fixture, a smoke item, a reloader, live_server): warm where exact
        self.start_warm()
        config = config or self.start_config()
        if self.warm is not None and config.process_factory is None:
            config = dataclasses.replace(config, process_factory=self.warm.process)
        if options.tls:
            config = dataclasses.replace(config, tls=self.session_tls().files())
        try:
            handle = start_server(launcher, app, options, config)
        except ServerStartupError as exc:
            self.records.append(Record(server, app.spec.raw, exc.command, 0.0, (),
                                       failed=str(exc).splitlines()[0]))
            raise
        proc = handle.process
        mode = "warm start" if proc.started_warm else \
            f"cold start: {proc.cold_reason}" if proc.cold_reason else "cold start"
        record = Record(server, app.spec.raw, handle.command, handle.ready_seconds, handle.notes,
                        mode=mode)
        self.records.append(record)

        def record_stop(stopped: ServerHandle) -> None:
            result = stopped.stop_result
            if result is not None and record.stop_seconds is None:
                record.stop_seconds = result.seconds
                record.exit_code = result.returncode
                record.forced = result.forced

        handle.on_stop(record_stop)
        return handle

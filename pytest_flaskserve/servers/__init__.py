"""The server registry: one launcher class per server, looked up by name.

Adding a server is one module with one :class:`Launcher` subclass decorated with
:func:`register`; nothing else in the package names a server. Third-party launchers can
register through the ``pytest_flaskserve.servers`` entry-point group.
"""

from __future__ import annotations

from typing import TypeVar

from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest, ServerOptions

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

_REGISTRY: dict[str, Launcher] = {}
_L = TypeVar("_L", bound=type[Launcher])


def register(cls: _L) -> _L:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    _REGISTRY[cls.name] = cls()
    return cls


#: Launcher modules in the default server order (third-party launchers come after).
_MODULES = ("flask_cli", "app_run", "gunicorn", "waitress", "uwsgi", "granian", "cheroot",
            "gunicorn_variants", "uwsgi_gevent", "gevent", "eventlet", "uvicorn", "hypercorn",
            "mod_wsgi")
_loaded = False


def _load() -> None:
    """Import every launcher once, then order the registry (whatever was imported first)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib

    for module in _MODULES:
        importlib.import_module(f"{__name__}.{module}")
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="pytest_flaskserve.servers"):
            ep.load()
    except Exception:  # noqa: BLE001 - a broken third-party plugin must not break ours
        pass
    rank = {f"{__name__}.{m}": i for i, m in enumerate(_MODULES)}
    ordered = sorted(_REGISTRY.items(),
                     key=lambda kv: rank.get(type(kv[1]).__module__, len(rank)))
    _REGISTRY.clear()
    _REGISTRY.update(ordered)
    # every server deployed behind a proxy gets its SERVER+nginx variant, after them all
    for launcher in list(_REGISTRY.values()):
        _add_proxied_variants(launcher)


def _add_proxied_variants(launcher: Launcher) -> None:
    """Register ``launcher``'s ``NAME+proxy`` variants, if it is deployed behind a proxy."""
    if launcher.proxy_protocol is None or launcher.behind is not None:
        return
    from pytest_flaskserve.servers.proxied import PROXIES, variant

    for proxy in PROXIES:
        proxied = variant(launcher, proxy)
        _REGISTRY[proxied.name] = proxied


def names() -> list[str]:
    """Every registered server, in the default order."""
    _load()
    return list(_REGISTRY)


def default_names() -> list[str]:
    """The servers a test runs on when nothing chooses them: every registered server whose
    launcher says ``default = True`` (opt-in variants are left out), in the default order."""
    _load()
    return [name for name, launcher in _REGISTRY.items() if launcher.default]


def check_worker_class(where: str, worker_class: str) -> None:
    """A :class:`UsageError` naming ``where`` if a server that takes worker classes has no
    ``worker_class`` (so a typo is found before any test runs, not at each start)."""
    _load()
    for launcher in _REGISTRY.values():
        problem = launcher.worker_class_problem(worker_class)
        if problem:
            raise UsageError(f"{where}: {problem}")


def proxied_name(name: str, proxy: str) -> str | None:
    """The name of ``name`` behind ``proxy`` (``gunicorn+nginx``), or None when that
    server is not deployed behind a proxy (the development servers) or is already."""
    _load()
    candidate = f"{name}+{proxy}"
    return candidate if candidate in _REGISTRY else None


def add(launcher: Launcher) -> None:
    """Make a launcher built at run time (a deployment file's command) available under its
    name; a :class:`UsageError` if a different one already has that name."""
    _load()
    existing = _REGISTRY.get(launcher.name)
    if existing is not None and existing.description != launcher.description:
        raise UsageError(f"two servers are called {launcher.name!r}: {existing.description} "
                         f"and {launcher.description}; run one deployment file of each kind")
    _REGISTRY[launcher.name] = launcher
    _add_proxied_variants(launcher)  # a deployment's command behind nginx, too


def get(name: str) -> Launcher:
    """The launcher called ``name``; a :class:`UsageError` that lists them otherwise."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"unknown server {name!r}; choose from: {', '.join(_REGISTRY)}"
        ) from None


__all__ = ["Launcher", "LaunchPlan", "LaunchRequest", "ServerOptions", "add", "check_worker_class",
           "default_names", "get", "proxied_name",
           "names", "register"]

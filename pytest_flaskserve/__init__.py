"""pytest-flaskserve: run one Flask app under every real server and test it on each.

The names below are the public API; they are imported on first use, so loading the plugin
(which imports this package on every pytest run) imports no Flask, server or requests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    # handles and results
    "ServerHandle": "pytest_flaskserve.lifecycle.handle",
    "StopResult": "pytest_flaskserve.lifecycle.process",
    "ReloadingServer": "pytest_flaskserve.reloader.server",
    "ReloadResult": "pytest_flaskserve.reloader.outcome",
    "Outcome": "pytest_flaskserve.reloader.outcome",
    "Parity": "pytest_flaskserve.parity.compare",
    "ParityResult": "pytest_flaskserve.parity.compare",
    "Exchange": "pytest_flaskserve.parity.wire",
    "BaseUrlSession": "pytest_flaskserve.client",
    "ServerFactory": "pytest_flaskserve.plugin.provision",
    "ReloaderFactory": "pytest_flaskserve.plugin.reloader",
    # errors and warnings
    "FlaskServeError": "pytest_flaskserve.errors",
    "UsageError": "pytest_flaskserve.errors",
    "AppImportError": "pytest_flaskserve.errors",
    "ServerStartupError": "pytest_flaskserve.errors",
    "ServerDiedError": "pytest_flaskserve.errors",
    "FlaskServeWarning": "pytest_flaskserve.errors",
    "ReloadError": "pytest_flaskserve.reloader.outcome",
    "ReloaderUnavailable": "pytest_flaskserve.reloader.outcome",
    "ParityError": "pytest_flaskserve.parity.compare",
    # library use outside pytest (scripts, benchmarks)
    "parse_spec": "pytest_flaskserve.appspec.grammar",
    "resolve_app": "pytest_flaskserve.appspec.resolve",
    "start_server": "pytest_flaskserve.lifecycle.supervisor",
    "StartConfig": "pytest_flaskserve.lifecycle.supervisor",
    "ServerOptions": "pytest_flaskserve.servers.base",
    # extension points: a server of one's own (entry-point group ``pytest_flaskserve.servers``)
    "Launcher": "pytest_flaskserve.servers.base",
    "LaunchPlan": "pytest_flaskserve.servers.base",
    "LaunchRequest": "pytest_flaskserve.servers.base",
    "register": "pytest_flaskserve.servers",
}

__all__ = [
    "__version__",
    "ServerHandle",
    "StopResult",
    "ReloadingServer",
    "ReloadResult",
    "Outcome",
    "Parity",
    "ParityResult",
    "Exchange",
    "BaseUrlSession",
    "ServerFactory",
    "ReloaderFactory",
    "FlaskServeError",
    "UsageError",
    "AppImportError",
    "ServerStartupError",
    "ServerDiedError",
    "FlaskServeWarning",
    "ReloadError",
    "ReloaderUnavailable",
    "ParityError",
    "parse_spec",
    "resolve_app",
    "start_server",
    "StartConfig",
    "ServerOptions",
    "Launcher",
    "LaunchPlan",
    "LaunchRequest",
    "register",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_flaskserve' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from pytest_flaskserve.appspec.grammar import parse_spec
    from pytest_flaskserve.appspec.resolve import resolve_app
    from pytest_flaskserve.client import BaseUrlSession
    from pytest_flaskserve.errors import (
        AppImportError,
        FlaskServeError,
        FlaskServeWarning,
        ServerDiedError,
        ServerStartupError,
        UsageError,
    )
    from pytest_flaskserve.lifecycle.handle import ServerHandle
    from pytest_flaskserve.lifecycle.process import StopResult
    from pytest_flaskserve.lifecycle.supervisor import StartConfig, start_server
    from pytest_flaskserve.parity.compare import Parity, ParityError, ParityResult
    from pytest_flaskserve.parity.wire import Exchange
    from pytest_flaskserve.plugin.provision import ServerFactory
    from pytest_flaskserve.plugin.reloader import ReloaderFactory
    from pytest_flaskserve.reloader.outcome import (
        Outcome,
        ReloadError,
        ReloaderUnavailable,
        ReloadResult,
    )
    from pytest_flaskserve.reloader.server import ReloadingServer
    from pytest_flaskserve.servers import register
    from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest, ServerOptions

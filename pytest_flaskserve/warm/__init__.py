"""``--flask-warm``: servers forked from a pre-warmed launcher process (a zygote) instead of
started in a new interpreter. :mod:`.launcher` and :mod:`.process` run in pytest,
:mod:`.zygote`, :mod:`.forker`, :mod:`.become` and :mod:`.identity` in the zygote and its children, :mod:`.command` in both.
Imported lazily, so that the zygote importing :mod:`.zygote` loads nothing of the client."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["WarmLauncher", "WarmProcess", "WarmUnavailable"]

_HOMES = {"WarmLauncher": "launcher", "WarmUnavailable": "process", "WarmProcess": "process"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'pytest_flaskserve.warm' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pytest_flaskserve.warm.{_HOMES[name]}"), name)


if TYPE_CHECKING:
    from pytest_flaskserve.warm.launcher import WarmLauncher
    from pytest_flaskserve.warm.process import WarmProcess, WarmUnavailable

"""Runs in a server forked by the warm zygote, before Gunicorn parses its command line:
recompute the setting defaults Gunicorn computed from the zygote's cwd and environment.

``gunicorn.config`` takes these defaults when it is imported (the zygote preloads it):
``Workers.default`` (``WEB_CONCURRENCY``), ``Chdir.default`` (``util.getcwd()``: the
worker would chdir to the zygote's directory and put it first on ``sys.path``) and
``ForwardedAllowIPS.default`` (``FORWARDED_ALLOW_IPS``). Each ``Config`` instantiates its
settings from these class attributes, so setting them again is enough. Named by the
Gunicorn launcher's ``warm_refresh``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any


def refresh() -> None:
    """Set the defaults again from this process's cwd and environment (nothing to do if
    Gunicorn was not preloaded)."""
    config = sys.modules.get("gunicorn.config")
    if config is None:
        return
    util: Any = getattr(config, "util", None)
    with contextlib.suppress(AttributeError, ValueError):
        config.Workers.default = int(os.environ.get("WEB_CONCURRENCY", 1))
    with contextlib.suppress(AttributeError, OSError):
        config.Chdir.default = util.getcwd()
    with contextlib.suppress(AttributeError):
        config.ForwardedAllowIPS.default = os.environ.get("FORWARDED_ALLOW_IPS",
                                                          "127.0.0.1,::1")

"""``--flask-warm``: servers forked from a pre-warmed launcher process (a zygote) instead of
started in a new interpreter; see docs/architecture.md."""

from pytest_flaskserve.warm.launcher import WarmLauncher, WarmProcess, WarmUnavailable

__all__ = ["WarmLauncher", "WarmProcess", "WarmUnavailable"]

"""WarmProcess: a server forked by the zygote, stopped by ``ManagedProcess``'s one stop
algorithm through the steps it overrides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_flaskserve.lifecycle.process import ManagedProcess

if TYPE_CHECKING:
    from pytest_flaskserve.warm.launcher import WarmLauncher

#: how long a stop waits for the zygote to report a SIGKILLed child
KILLED_WAIT = 10.0


class WarmProcess(ManagedProcess):
    """A server forked by the zygote: a ``ManagedProcess`` whose process we did not Popen.

    A subclass so that everything typed for ``ManagedProcess`` (the supervisor, its
    handles, the registry, ``stop_all``) takes it unchanged; it overrides what depends on
    ``Popen``. The exit code comes from the zygote, its parent; the pid, process group and
    session are its own, so signals, the watchdog and the sweep work as for a cold one.
    """

    def __init__(self, launcher: WarmLauncher, argv: Sequence[str], *, env: Mapping[str, str],
                 cwd: str, log_path: Path) -> None:
        super().__init__(argv, env=env, cwd=cwd, log_path=log_path)
        self.launcher = launcher

    def _spawn(self) -> int:
        """Fork the server from the zygote; its pid. OSError if it cannot be started."""
        return self.launcher.fork_server(self)

    def _poll(self) -> int | None:
        """The exit code once the zygote has reported it, else None."""
        return self.launcher.exit_code(self.pid)

    def _wait(self, timeout: float | None) -> int | None:
        # a SIGKILLed child is reaped by the zygote at once; the bound only matters if the
        # zygote is gone, and then its children are marked killed (WarmLauncher._lost)
        return self.launcher.wait_exit(self.pid, KILLED_WAIT if timeout is None else timeout)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the exit code; None if still running."""
        return self._wait(timeout)

    def _forget(self) -> None:
        self.launcher.forget(self.pid)

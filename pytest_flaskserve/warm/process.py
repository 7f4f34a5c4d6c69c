"""WarmProcess: a server forked by the zygote, stopped by ``ManagedProcess``'s one stop
algorithm through the steps it overrides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_flaskserve.lifecycle.process import ManagedProcess

if TYPE_CHECKING:
    from pytest_flaskserve.warm.launcher import WarmLauncher


class WarmUnavailable(RuntimeError):
    """The warm launcher could not be started, is gone, or cannot start this command
    exactly as a cold start would; the message says why. Start the server cold."""


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
                 cwd: str, log_path: Path, group: dict[str, Any]) -> None:
        super().__init__(argv, env=env, cwd=cwd, log_path=log_path)
        self.launcher = launcher
        #: what its forker imports (``warm.launcher.warm_group``)
        self.group = group

    @property
    def started_warm(self) -> bool:
        """Forked from the zygote: True unless it fell back to a cold start (its forker
        refused, the zygote was gone), whose reason is then ``cold_reason``."""
        return self.cold_reason is None

    def _spawn(self) -> int:
        """Fork the server from the zygote, or start it cold when that cannot be exact;
        its pid. OSError if it cannot be started."""
        try:
            return self.launcher.fork_server(self)
        except WarmUnavailable as exc:
            self.cold_reason = str(exc)
            self.launcher.note_cold(str(self.group["name"]), self.cold_reason)
            return super()._spawn()

    def _poll(self) -> int | None:
        """The exit code once the zygote has reported it, else None."""
        if not self.started_warm:
            return super()._poll()
        return self.launcher.exit_code(self.pid)

    def _wait(self, timeout: float | None) -> int | None:
        if not self.started_warm:
            return super()._wait(timeout)
        # a SIGKILLed child is reaped by the zygote at once; the bound only matters if the
        # zygote is gone, and then its children are marked killed (WarmLauncher._lost)
        return self.launcher.wait_exit(self.pid, KILLED_WAIT if timeout is None else timeout)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the exit code; None if still running."""
        return self._wait(timeout)

    def _forget(self) -> None:
        if not self.started_warm:
            super()._forget()
            return
        self.launcher.forget(self.pid)

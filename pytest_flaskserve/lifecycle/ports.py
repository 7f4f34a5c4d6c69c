"""Free ports on the loopback interface (who listens where is :mod:`.sockets`)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out on ``host`` (bind to 0, read, close).

    A stranger could take it between our close and the server's bind; the supervisor
    notices (the server exits with "address in use", or the port answers for another
    process) and retries on a new port, so the race never becomes a wrong answer.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])

"""Free ports on the loopback interface, and whether a port is held by our process tree."""

from __future__ import annotations

import socket
from collections.abc import Iterable


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


def listening_ports(procs: Iterable[object]) -> set[int]:
    """Every TCP port on which one of ``procs`` (pids, or psutil handles from a listing
    of the tree) listens. A handle whose process exited and whose pid now belongs to
    another program is left out: psutil compares its start time."""
    import psutil

    ports: set[int] = set()
    for item in procs:
        try:
            proc = item if isinstance(item, psutil.Process) else psutil.Process(item)  # type: ignore[arg-type]
            conns = proc.net_connections(kind="inet")
            if not proc.is_running():
                continue
        except psutil.Error:
            continue
        ports.update(c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr)
    return ports


def listening_in(pids: Iterable[int], port: int) -> bool:
    """True when one of ``pids`` holds a listening TCP socket on ``port``."""
    import psutil

    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except psutil.Error:
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
                return True
    return False

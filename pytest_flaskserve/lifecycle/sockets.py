"""Who listens where: the TCP ports a process tree listens on, and whether it holds ours.

psutil works everywhere; on Linux the kernel's socket table (a netlink ``sock_diag`` dump)
and ``/proc`` answer the per-start ownership question in well under a millisecond.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_flaskserve.lifecycle.process import ManagedProcess


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


def wildcard_binds(proc: ManagedProcess, port: int) -> list[str]:
    """``0.0.0.0:PORT`` and ``[::]:PORT`` for each wildcard address (every interface of
    the machine) our tree listens on at ``port``. On the start path, so Linux's fast path
    alone: one sock_diag dump, and the tree's open files only when such a socket exists
    (none where that cannot be told)."""
    try:
        sockets = _listening_sockets(port)
        return [f"{address}:{port}" for address in sorted(
            {a for i, a in sockets.items() if a and _tree_holds(proc.pid, {i})})]
    except (OSError, ValueError, struct.error):
        return []


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


def owns(proc: ManagedProcess, port: int) -> bool:
    """Whether our process tree holds the listening socket on ``port``.

    Asked once per start, right after the first HTTP answer, so it is on the start path.
    On Linux the kernel names the listening sockets on the port and ``/proc`` tells whose
    they are, leader first (the dev server, Waitress, Cheroot, the reloader parent and
    the Gunicorn and uWSGI masters hold it), then its descendants (Granian's worker):
    well under a millisecond. psutil over the whole tree (7-17 ms here, more on a busy
    machine: it scans every process and reads /proc/net/tcp, which walks every socket on
    the host) confirms any "no" and is the path on other systems.
    """
    return _tree_listens(proc.pid, port) or listening_in(proc.tree_pids(), port)


def _tree_listens(pid: int, port: int) -> bool:
    """Linux fast path: a listening TCP socket on ``port`` is an open file of ``pid`` or of
    one of its descendants (found through ``/proc/PID/task/TID/children``). False whenever
    that cannot be told (not Linux, netlink refused), so the caller falls back to psutil.
    """
    try:
        inodes = _listening_inodes(port)
        return bool(inodes) and _tree_holds(pid, inodes)
    except (OSError, ValueError, struct.error):
        return False


def _tree_holds(pid: int, inodes: set[int]) -> bool:
    """Whether one of the socket ``inodes`` is an open file of ``pid`` or a descendant."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pending, seen = [pid], set()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        fd_dir = f"/proc/{current}/fd"
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(f"{fd_dir}/{fd}") in wanted:
                    return True
            except OSError:
                continue
        for tid in os.listdir(f"/proc/{current}/task"):
            with open(f"/proc/{current}/task/{tid}/children", encoding="ascii") as f:
                pending.extend(int(child) for child in f.read().split())
    return False


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10


def _listening_inodes(port: int) -> set[int]:
    """Inodes of the host's listening TCP sockets (IPv4 and IPv6) bound to ``port``."""
    return set(_listening_sockets(port))


def _listening_sockets(port: int) -> dict[int, str | None]:
    """The host's listening TCP sockets (IPv4 and IPv6) bound to ``port``: inode -> the
    wildcard address it is bound to (``0.0.0.0``, ``[::]``), None for a specific one.

    One ``inet_diag_req_v2`` dump per family, asking only for the LISTEN state; each reply
    is an ``inet_diag_msg`` (source port at offset 4, big-endian; source address at 8, 16
    bytes; inode at offset 68).
    """
    found: dict[int, str | None] = {}
    netlink = getattr(socket, "AF_NETLINK", None)
    if netlink is None:
        return found
    with socket.socket(netlink, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), 1):
            request = (struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN)
                       + bytes(48))
            nl.send(struct.pack("=LHHLL", 16 + len(request), _SOCK_DIAG_BY_FAMILY,
                                _NLM_F_REQUEST_DUMP, seq, 0) + request)
            done = False
            while not done:
                data = nl.recv(65536)
                if not data:
                    break
                offset = 0
                while offset + 16 <= len(data):
                    length, kind = struct.unpack_from("=LH", data, offset)
                    if kind == _NLMSG_ERROR:
                        raise OSError("sock_diag request refused")
                    if kind == _NLMSG_DONE or length < 16:
                        done = True
                        break
                    if kind == _SOCK_DIAG_BY_FAMILY and length >= 16 + 72:
                        body = offset + 16
                        if struct.unpack_from(">H", data, body + 4)[0] == port:
                            inode = struct.unpack_from("=I", data, body + 68)[0]
                            wildcard = not any(data[body + 8:body + 24])
                            found[inode] = (("0.0.0.0" if family == socket.AF_INET
                                             else "[::]") if wildcard else None)
                    offset += (length + 3) & ~3
    return found

"""What other processes read about a forked server: ``/proc/PID/cmdline``,
``/proc/PID/environ`` and the process name, made those of the command it runs.

A forked child still shows the zygote's command line and environment there (the kernel
reads them from the memory ``execve`` laid out). ``prctl(PR_SET_MM_MAP)`` points the
kernel at new copies; it needs no privilege where the kernel has checkpoint/restore
support (every distribution kernel). Standard library only.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping, Sequence

_PR_SET_NAME = 15
_PR_SET_MM = 35
_PR_SET_MM_MAP = 14

_FIELDS = ("start_code", "end_code", "start_data", "end_data", "start_brk", "brk",
           "start_stack", "arg_start", "arg_end", "env_start", "env_end")


class _MmMap(ctypes.Structure):
    """``struct prctl_mm_map`` (linux/prctl.h)."""

    _fields_ = [*((name, ctypes.c_uint64) for name in _FIELDS),
                ("auxv", ctypes.c_uint64), ("auxv_size", ctypes.c_uint32),
                ("exe_fd", ctypes.c_uint32)]


def present_as(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """Show ``argv`` and ``env`` as this process's command line and environment, and
    ``argv[0]``'s file name as its name, as ``execve`` would; False if the kernel refused
    (the zygote's then stay visible)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    name = os.path.basename(argv[0]).encode()[:15] if argv else b""
    if name:
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
    args = b"".join(os.fsencode(a) + b"\0" for a in argv)
    block = args + b"".join(os.fsencode(f"{k}={v}") + b"\0" for k, v in env.items())
    # malloc'd and never freed: the kernel reads these bytes for as long as we live
    libc.malloc.restype = ctypes.c_void_p
    base = libc.malloc(len(block) or 1)
    if not base:
        return False
    ctypes.memmove(base, block, len(block))
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        with open("/proc/self/auxv", "rb") as f:
            auxv = f.read()
    except OSError:
        return False
    # fields after the parenthesised name, numbered from 3 as in proc(5)
    fields = stat[stat.rindex(b")") + 2:].split()
    number = {"start_code": 26, "end_code": 27, "start_stack": 28, "start_data": 45,
              "end_data": 46, "start_brk": 47}
    mm = _MmMap(**{key: int(fields[n - 3]) for key, n in number.items()})
    mm.arg_start, mm.arg_end = base, base + len(args)
    mm.env_start, mm.env_end = base + len(args), base + len(block)
    aux = ctypes.create_string_buffer(auxv, len(auxv))
    mm.auxv, mm.auxv_size, mm.exe_fd = ctypes.addressof(aux), len(auxv), 0xFFFFFFFF
    libc.sbrk.restype = ctypes.c_void_p
    mm.brk = libc.sbrk(0)  # last: the current end of the heap, which must not move
    return bool(libc.prctl(_PR_SET_MM, _PR_SET_MM_MAP, ctypes.byref(mm), ctypes.sizeof(mm), 0) == 0)

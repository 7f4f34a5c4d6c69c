"""Reading a server's log file: whole, bounded (for checks polled while waiting), its tail."""

from __future__ import annotations

import os
from pathlib import Path

#: a log bigger than this is read as its head and its tail (where servers announce
#: themselves and where a failure ends); the middle is an app's own chatter
LOG_HEAD = 64 * 1024
LOG_TAIL = 448 * 1024


def read_log(path: Path) -> str:
    """The whole log as text ("" before the server has written it)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def read_bounded(path: Path) -> str:
    """The log for the checks and the diagnosis, bounded in memory: an app that prints
    100 MB at import must not cost 100 MB every 50 ms while we wait."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(0)
            if size <= LOG_HEAD + LOG_TAIL:
                data = f.read()
            else:
                head = f.read(LOG_HEAD)
                f.seek(size - LOG_TAIL)
                skipped = size - LOG_HEAD - LOG_TAIL
                data = head + f"\n[... {skipped} bytes of the log left out ...]\n".encode() + f.read()
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", errors="replace")


def tail(text: str, lines: int = 40) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])

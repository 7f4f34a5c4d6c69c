"""Helpers the fault tests share."""

from __future__ import annotations

import psutil


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has ended: only its exit code is left)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False

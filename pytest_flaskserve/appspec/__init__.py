"""What is served: Flask's ``--app`` grammar (:mod:`.grammar`), its resolution once in a child
interpreter (:mod:`.resolve`), and the ``.flaskenv``/``.env`` files ``flask run`` reads
(:mod:`.dotenv`). The names below are imported on first use; Flask's default app files
are here, so that finding them costs the plugin's load no grammar."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

#: Flask's fallback when no app is named, in its order
DEFAULT_FILES = ("wsgi.py", "app.py")


def default_spec(rootdir: str | os.PathLike[str]) -> str | None:
    """Flask's fallback when no app is named: ``wsgi.py``, then ``app.py``."""
    for name in DEFAULT_FILES:
        if (Path(rootdir) / name).is_file():
            return name
    return None


_GRAMMAR = ("AppSpec", "ResolvedApp", "has_main_guard", "locate_module_file", "parse_spec",
            "prepare_import", "render_arguments", "script_entry")

__all__ = ["DEFAULT_FILES", "default_spec", *_GRAMMAR]


def __getattr__(name: str) -> Any:
    if name in _GRAMMAR:
        return getattr(importlib.import_module("pytest_flaskserve.appspec.grammar"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""File edits of the copy that reloaders cannot miss: atomic writes with a bumped mtime,
statements inserted where they run first, and the record of edits awaiting an outcome."""

from __future__ import annotations

import ast
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def bump_mtime(before: float) -> float:
    """The mtime to give a file edited when it had ``before``: later by a whole second.

    Reloaders compare ``mtime > last`` (uWSGI in whole seconds) and coarse file systems
    round, so an edit within the same tick as the previous one would go unnoticed.
    """
    return max(time.time(), before + 1.0)


def write_bumped(path: Path, data: bytes) -> str:
    """Replace ``path`` atomically with ``data`` and an mtime reloaders cannot miss.

    The new content goes to a temporary file in the same directory (not ``*.py``, so no
    reloader sees it), gets its mtime, and is renamed over the target: a reloader never
    reads a half-written file, and the content and mtime change in one step. Returns the
    temporary file's name: Werkzeug's watchdog reloader names the rename's source in its
    "Detected change" line.
    """
    try:
        before = path.stat().st_mtime
    except FileNotFoundError:
        before = 0.0
    mtime = bump_mtime(before)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".flaskserve-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if path.exists():
            shutil.copymode(path, tmp)
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return os.path.basename(tmp)


def insertion_line(source: str) -> int:
    """The 0-based line where a statement can go first without changing what the module
    means: after the docstring and ``from __future__`` imports (a statement before those
    would itself be a syntax error)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return 0
    line = 0
    for i, node in enumerate(tree.body):
        docstring = (i == 0 and isinstance(node, ast.Expr)
                     and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
        future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if not (docstring or future):
            break
        line = node.end_lineno or node.lineno
    return line


def insert_statement(source: str, statement: str) -> str:
    """``source`` with ``statement`` as the first statement that runs at import."""
    lines = source.splitlines(keepends=True)
    at = insertion_line(source)
    if at and at <= len(lines) and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    return "".join(lines[:at] + [statement.rstrip("\n") + "\n"] + lines[at:])


SYNTAX_ERROR = "flaskserve_broken = (  # syntax error written by flask_reloader\n"
MISSING_MODULE = "flaskserve_module_that_does_not_exist"


@dataclass
class PendingEdits:
    """Edits made since the last outcome: when they started and where the log was."""

    started: float
    mark: int
    files: dict[Path, None] = field(default_factory=dict)
    #: temporary file name -> the file it replaced (see :func:`write_bumped`)
    temps: dict[str, Path] = field(default_factory=dict)

    def write(self, target: Path, data: bytes) -> None:
        """Write ``data`` to ``target`` (see :func:`write_bumped`) and record the edit."""
        target.parent.mkdir(parents=True, exist_ok=True)
        self.temps[write_bumped(target, data)] = target
        self.files[target] = None


def edited_path(logged: str, pending: PendingEdits) -> str:
    """The path a reloader named, with a rename's temporary source mapped to its target."""
    target = pending.temps.get(os.path.basename(logged))
    return str(target) if target is not None else logged

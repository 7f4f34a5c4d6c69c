"""The scratch copy of the app's import root that a reloading server runs, so edits never
touch the user's files (:func:`copy_project`), and the app as found there (:func:`relocate`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from pytest_flaskserve.appspec.grammar import ResolvedApp, parse_spec, script_entry
from pytest_flaskserve.errors import UsageError, hide_own_errors

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

#: Left out of the copy: version control, virtualenvs, caches and build output.
DEFAULT_IGNORE = (
    ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "*.pyc", "node_modules",
    ".tox", ".nox", ".pytest_cache", ".mypy_cache", ".ruff_cache", "build", "dist",
    "*.egg-info", "htmlcov", ".idea", ".vscode",
)

#: A copy bigger than this is almost certainly data, not an app: refuse and say so.
MAX_COPY_FILES = 5000


def _ignore(patterns: Sequence[str], dest: str) -> Callable[[str, list[str]], set[str]]:
    by_name = shutil.ignore_patterns(*patterns)
    dest = os.path.realpath(dest) + os.sep

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(by_name(directory, names))
        for name in names:
            path = os.path.join(directory, name)
            # any virtualenv, whatever its name
            if os.path.isfile(os.path.join(path, "pyvenv.cfg")):
                skipped.add(name)
            # the copy itself, when the temporary directory is inside the project
            # (pytest --basetemp in the project, pytester): never copy into itself
            elif dest.startswith(os.path.realpath(path) + os.sep):
                skipped.add(name)
        return skipped

    return ignore


def copy_project(source: str | os.PathLike[str], dest: str | os.PathLike[str],
                 ignore: Sequence[str] = ()) -> Path:
    """Copy ``source`` (the app's import root) into the new directory ``dest``.

    Symlinks are copied as the files they point to, so an edit of the copy can never
    write through a link into the user's tree. Raises :class:`UsageError` when the tree
    is too large to be an app (a data directory left in it).
    """
    src, dst = Path(source), Path(dest)
    patterns = (*DEFAULT_IGNORE, *ignore)
    count = 0
    skip = _ignore(patterns, os.fspath(dst))
    for directory, dirs, files in os.walk(src):
        ignored = skip(directory, dirs + files)
        dirs[:] = [d for d in dirs if d not in ignored]
        count += sum(1 for f in files if f not in ignored)
        if count > MAX_COPY_FILES:
            raise UsageError(
                f"{src} holds more than {MAX_COPY_FILES} files (besides version control, "
                "virtualenvs and caches); flask_reloader copies the app's import root: pass "
                "ignore=['data', ...] to leave out what the app does not import")
    shutil.copytree(src, dst, ignore=skip, symlinks=True, ignore_dangling_symlinks=True)
    return dst


def relocate(app: ResolvedApp, source_root: str | os.PathLike[str],
             root: str | os.PathLike[str]) -> ResolvedApp:
    """``app`` as found in the copy at ``root`` of ``source_root`` (no import needed)."""
    src, dst = os.path.realpath(source_root), Path(root)
    module_file = app.module_file
    if module_file is None or not os.path.realpath(module_file).startswith(src + os.sep):
        raise UsageError(
            f"the app {app.describe()} is loaded from {module_file or 'no file'}, not from "
            f"{src}: flask_reloader edits a copy of the import root, so run pytest from the "
            "project directory rather than against an installed copy")
    new_file = dst / os.path.relpath(os.path.realpath(module_file), src)
    spec = parse_spec(app.describe(), dst, source="flask_reloader")
    script, reason = script_entry(app.module, str(new_file), app.is_package, str(dst))
    return replace(app, spec=spec, module_file=str(new_file), script=script,
                   script_reason=reason)

"""The package's layering rules, checked by reading the source (the lint step's check)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_flaskserve"
PYTEST_LAYER = PACKAGE / "plugin"
#: Modules that run in other interpreters (servers, resolver children, the watchdog).
CHILD_SIDE = [PACKAGE / "_child", PACKAGE / "_entry.py", PACKAGE / "_traced_entry.py",
              PACKAGE / "_coverage_boot.py", PACKAGE / "warm" / "zygote.py",
              PACKAGE / "warm" / "become.py", PACKAGE / "warm" / "command.py",
              PACKAGE / "warm" / "forker.py", PACKAGE / "warm" / "identity.py",
              PACKAGE / "warm" / "events.py"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py")) if root.is_dir() else [root]


def test_pytest_is_imported_only_by_the_pytest_layer() -> None:
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in _modules(PACKAGE)
        if PYTEST_LAYER not in path.parents
        and any(name.split(".")[0] in ("pytest", "_pytest") for name in _imports(path))
    ]
    assert offenders == [], f"import pytest outside pytest_flaskserve/plugin/: {offenders}"


def test_code_for_other_interpreters_never_imports_the_pytest_layer() -> None:
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for root in CHILD_SIDE for path in _modules(root)
        if any(name.split(".")[0] in ("pytest", "_pytest") or name.startswith("pytest_flaskserve.plugin")
               for name in _imports(path))
    ]
    assert offenders == [], offenders


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE.parent)): n for p in _modules(PACKAGE)
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}, long

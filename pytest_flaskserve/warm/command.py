"""What a warm start runs (``python -m MODULE`` or ``python SCRIPT``), the environment that
forces a cold start, the path a fresh interpreter would build, and the zygote's own program. Standard library only:
the zygote and its children import it."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Environment read only while an interpreter starts: a child whose value differs from the
#: zygote's must start cold. PYTHONPATH, PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE are
#: applied in the child instead.
STARTUP_VARIABLES: tuple[str, ...] = (
    "PYTHONHOME", "PYTHONSAFEPATH", "PYTHONPLATLIBDIR", "PYTHONOPTIMIZE", "PYTHONDEBUG",
    "PYTHONINSPECT", "PYTHONVERBOSE", "PYTHONPYCACHEPREFIX", "PYTHONHASHSEED",
    "PYTHONINTMAXSTRDIGITS", "PYTHONIOENCODING", "PYTHONNOUSERSITE", "PYTHONUSERBASE",
    "PYTHONEXECUTABLE", "PYTHONWARNINGS", "PYTHONFAULTHANDLER", "PYTHONTRACEMALLOC",
    "PYTHONPROFILEIMPORTTIME", "PYTHONMALLOC", "PYTHONMALLOCSTATS", "PYTHONCOERCECLOCALE",
    "PYTHONDEVMODE", "PYTHONUTF8", "PYTHONWARNDEFAULTENCODING", "PYTHONNODEBUGRANGES",
    "PYTHONPERFSUPPORT", "PYTHONSTARTUP", "LC_ALL", "LC_CTYPE", "LANG",
)
#: Prefixes of variables with the same property (coverage's ``.pth`` startup hook).
STARTUP_PREFIXES: tuple[str, ...] = ("COVERAGE_PROCESS_",)

#: what the zygote imports for every server: what every Flask app imports (so a child
#: that has it imported has nothing its cold start would not have had)
COMMON_PRELOAD: tuple[str, ...] = ("flask",)


def zygote_program(fd: int) -> str:
    """The zygote's ``python -c`` program, talking on inherited ``fd``. Flask first, then
    this package: ``zygote_main`` takes out of ``sys.modules`` what importing the package
    added, so a child finds only what its cold start has."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return ("import sys, time\n"
            "_t0 = time.perf_counter(); _failed = {}\n"
            f"for _name in {list(COMMON_PRELOAD)!r}:\n"
            "    try: __import__(_name)\n"
            "    except Exception as _e: _failed[_name] = f'{type(_e).__name__}: {_e}'\n"
            "_keep = set(sys.modules)\n"
            f"sys.path.insert(0, {package_root!r})\n"
            "import pytest_flaskserve.warm.zygote as _w\n"
            "del sys.path[0]\n"
            f"_w.zygote_main({fd}, _keep, _failed, _t0)\n")


@dataclass(frozen=True)
class Command:
    """``python -m MODULE ARGS`` or ``python SCRIPT ARGS``."""

    module: str | None
    script: str | None
    args: tuple[str, ...]


def parse_command(argv: Sequence[str], python: str) -> Command | str:
    """The command ``argv`` runs, or why it cannot run warm."""
    if not argv or not _same_file(argv[0], python):
        return "not this interpreter"
    if len(argv) >= 3 and argv[1] == "-m":
        return Command(module=argv[2], script=None, args=tuple(argv[3:]))
    if len(argv) >= 2 and not argv[1].startswith("-"):
        return Command(module=None, script=argv[1], args=tuple(argv[2:]))
    return "interpreter options"


def _same_file(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def prefix_entries(command: Command, env: Mapping[str, str], cwd: str) -> list[str]:
    """What a fresh interpreter puts before the standard path: the script's directory (or
    the working directory for ``-m``), then PYTHONPATH made absolute."""
    if command.module is not None:
        first = cwd
    else:
        assert command.script is not None
        first = os.path.dirname(os.path.realpath(os.path.join(cwd, command.script)))
    entries = [first]
    for item in env.get("PYTHONPATH", "").split(os.pathsep):
        if item:
            entries.append(os.path.normpath(os.path.join(cwd, item)))
    return entries


def candidates(entry: str, name: str, listing: set[str]) -> list[str]:
    """Files in ``entry`` that ``import name`` would pick up, if any."""
    found: list[str] = []
    if name in listing:
        init = os.path.join(entry, name, "__init__.py")
        if os.path.isfile(init):
            found.append(init)
    for suffix in (".py", ".pyc", *importlib.machinery.EXTENSION_SUFFIXES):
        if name + suffix in listing:
            found.append(os.path.join(entry, name + suffix))
    return found


@dataclass
class Child:
    """What a forked child becomes, handed from the zygote loop up to ``zygote_main``."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    command: Command
    #: ``module:function`` hooks the launchers name (``warm_refresh``), run before the
    #: server's entry point
    refreshers: tuple[str, ...] = ()
    #: ``sys.modules`` names the child keeps (the forker's, right after its preload)
    allowed_modules: frozenset[str] = frozenset()

"""Runs in a child a forker forked: turn it into ``python ARGV...`` in place (stdio, path,
argv, ``__main__``, sitecustomize, ``sys.modules``, what ``/proc`` shows), then run the
server's entry point."""

from __future__ import annotations

import builtins
import importlib
import importlib.machinery
import io
import os
import sys
import types

from pytest_flaskserve.warm.command import Child, prefix_entries
from pytest_flaskserve.warm.identity import present_as


def become(child: Child) -> None:
    """Turn this forked child into ``python ARGV`` (see the module docstring)."""
    env = child.env
    os.environ.clear()
    os.environ.update(env)
    command = child.command
    prefix = prefix_entries(command, env, child.cwd)
    base = [p for p in sys.path if p]
    sys.path[:] = prefix + [p for p in base if p not in prefix]
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    _reset_stdio(unbuffered=bool(env.get("PYTHONUNBUFFERED")))
    # In place: a default argument such as waitress.runner.run(argv=sys.argv) captured
    # the list object when the zygote imported it.
    sys.orig_argv[:] = child.argv
    importlib.invalidate_caches()
    _refresh_import_time_values(child.refreshers)
    present_as(child.argv, env)
    _forget_modules(child.allowed_modules)
    _run_sitecustomize()
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    if command.module is not None:
        import runpy

        sys.argv[:] = ["-m", *command.args]
        runpy._run_module_as_main(command.module, alter_argv=True)  # type: ignore[attr-defined]
        return
    assert command.script is not None
    sys.argv[:] = [command.script, *command.args]
    if not os.path.isfile(command.script):
        # a directory or zip file with __main__.py (or missing: runpy says so)
        import runpy

        runpy.run_path(command.script, run_name="__main__")
        return
    # Since 3.9 the interpreter makes the script's path absolute for __file__ and the
    # code object (tracebacks); sys.argv[0] stays as given.
    path = os.path.abspath(command.script)
    with open(path, "rb") as f:
        source = f.read()
    code = compile(source, path, "exec", dont_inherit=True)
    main.__dict__.update(
        __name__="__main__", __file__=path, __cached__=None, __doc__=None, __package__=None,
        __spec__=None, __loader__=importlib.machinery.SourceFileLoader("__main__", path))
    exec(code, main.__dict__)


def _refresh_import_time_values(refreshers: tuple[str, ...]) -> None:
    """Run the launchers' ``warm_refresh`` hooks: each recomputes what a preloaded module
    computed at import from the zygote's cwd and environment (the warm tests compare a
    warm server's cwd, ``sys.path`` and environment with a cold one's)."""
    for ref in refreshers:
        module, _, function = ref.partition(":")
        getattr(importlib.import_module(module), function)()


def _forget_modules(allowed: frozenset[str]) -> None:
    """Drop from ``sys.modules`` what the warm machinery imported since the forker's
    preload (the hooks above, ctypes): the server imports it afresh if it needs it, as
    its cold start would."""
    if allowed:
        for name in [n for n in sys.modules if n not in allowed and n != "__main__"]:
            del sys.modules[name]


def _reset_stdio(unbuffered: bool) -> None:
    """New ``sys.std*`` on fds 0-2, built the way the interpreter builds them at start."""
    like_out, like_err = sys.__stdout__, sys.__stderr__
    encoding = getattr(like_out, "encoding", None) or "utf-8"
    errors = getattr(like_out, "errors", None) or "strict"

    def writer(fd: int, errors: str) -> io.TextIOWrapper:
        # CPython's create_stdio: line buffering for a tty or stderr, unless unbuffered
        # (-u, PYTHONUNBUFFERED), which writes through an unbuffered binary layer.
        raw = open(fd, "wb", buffering=0 if unbuffered else -1, closefd=False)
        line = not unbuffered and (fd == 2 or os.isatty(fd))
        return io.TextIOWrapper(raw, encoding=encoding, errors=errors, newline="\n",
                                line_buffering=line, write_through=unbuffered)

    stdin = io.TextIOWrapper(open(0, "rb", closefd=False), encoding=encoding,
                             errors=errors)
    stdout = writer(1, errors)
    stderr = writer(2, getattr(like_err, "errors", None) or "backslashreplace")
    for name, stream in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _run_sitecustomize() -> None:
    """Import the ``sitecustomize`` a fresh interpreter would, as ``site`` does, unless it
    is the one the zygote already ran (same file)."""
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.origin is None:
        return
    loaded = sys.modules.get("sitecustomize")
    origin = os.path.realpath(spec.origin)
    if loaded is not None and os.path.realpath(getattr(loaded, "__file__", "") or "") == origin:
        return
    sys.modules.pop("sitecustomize", None)
    try:
        try:
            importlib.import_module("sitecustomize")
        except ImportError as exc:
            if exc.name != "sitecustomize":
                raise
    except Exception as err:  # noqa: BLE001 - site.execsitecustomize's message
        sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                         f"{err.__class__.__name__}: {err}\n")

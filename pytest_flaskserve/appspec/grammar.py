"""Flask's ``--app`` grammar: parse a spec, resolve it once, render it per server.

Parsing is pure (no import of the user's code): it checks the syntax Flask accepts and
that the named file or module exists. Resolution runs Flask's discovery rules in a child
interpreter (``_resolver.py``), so the pytest process never imports the user's app, and
returns a :class:`ResolvedApp` that every launcher renders in its own native syntax.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_flaskserve.appspec import DEFAULT_FILES
from pytest_flaskserve.errors import UsageError, hide_own_errors

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

#: Flask splits ``--app`` on the first colon that is not part of a Windows drive path.
_SPLIT = re.compile(r":(?![\\/])")

_HINT = (
    "use one of Flask's forms: 'module:name', 'pkg.mod:name', 'module:create_app()', "
    "'module:create_app(\"dev\")', 'module', 'path/to/file.py[:name]'"
)


@dataclass(frozen=True)
class AppSpec:
    """A syntactically valid spec, located on disk but not imported.

    ``module`` and ``path_entry`` follow Flask's ``prepare_import``: the module name to
    import and the directory that must come first on ``sys.path`` for it to import.
    """

    raw: str
    source: str
    base_dir: str
    module: str
    path_entry: str
    attr: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    is_call: bool = False
    file: str | None = None

    @property
    def attr_source(self) -> str | None:
        """The attribute part as it would be written back (``create_app('dev')``)."""
        if self.attr is None:
            return None
        if not self.is_call:
            return self.attr
        return f"{self.attr}({render_arguments(self.args, self.kwargs)})"

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True)
class ResolvedApp:
    """What the resolver found: one concrete target every server can load.

    ``attr`` is always set (discovery filled it in); ``is_factory`` means the attribute
    must be called with ``args``/``kwargs`` to get the app.
    """

    spec: AppSpec
    module: str
    attr: str
    is_factory: bool
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    module_file: str | None
    is_package: bool
    script: tuple[str, ...] | None  # argv after python that runs the app's own entry point
    script_reason: str  # why there is no script entry point, when script is None
    runs_at_import: bool
    import_name: str = field(default="")
    #: JSON the generated entry applies to the app (a test's config=, see appspec.config)
    app_settings: str = field(default="")
    config_reprs: tuple[tuple[str, str], ...] = ()  # repr of each config value, as built
    #: "gevent" or "eventlet" when importing the app monkey-patches the standard library
    patches_at_import: str = field(default="")

    @property
    def path_entry(self) -> str:
        return self.spec.path_entry

    @property
    def cwd(self) -> str:
        return self.spec.base_dir

    @property
    def dotted_module(self) -> bool:
        """The module name is dotted identifiers. Flask imports any file name
        (``my-app.py`` is module ``my-app``), and so does Gunicorn; Waitress's, uWSGI's,
        Granian's and Cheroot's ``module:app`` syntax is for identifiers."""
        return all(part.isidentifier() for part in self.module.split("."))

    def reference(self, *, call_syntax: bool, call_arguments: bool,
                  any_module_name: bool = False) -> str | None:
        """``module:attr`` in a server's native syntax, or None when it cannot say it.

        ``call_syntax``: the server understands ``module:factory()``;
        ``call_arguments``: it also accepts literal arguments inside the parentheses;
        ``any_module_name``: it imports a module name that is not an identifier.
        """
        if self.app_settings or not (any_module_name or self.dotted_module):
            return None  # config is applied by the generated entry, on every server alike
        if not self.is_factory:
            return f"{self.module}:{self.attr}"
        if not call_syntax or ((self.args or self.kwargs) and not call_arguments):
            return None
        return f"{self.module}:{self.attr}({render_arguments(self.args, self.kwargs)})"

    def entry_payload(self) -> str:
        """What the generated entry module needs to build the app (see ``_entry.py``)."""
        return json.dumps(
            {
                "module": self.module,
                "attr": self.attr,
                "factory": self.is_factory,
                "arguments": repr((self.args, dict(self.kwargs))),
            }
        )

    def describe(self) -> str:
        target = f"{self.module}:{self.attr}"
        if self.is_factory:
            target += f"({render_arguments(self.args, self.kwargs)})"
        return target


def render_arguments(args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs]
    return ", ".join(parts)


def _parse_attribute(label: str, text: str) -> tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...], bool]:
    """Parse the part after the colon exactly as Flask does: a name or a call of a name."""
    try:
        expr = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise UsageError(
            f"{label}: {text!r} is not an attribute name or a call like "
            f"'create_app()'; {_HINT}"
        ) from None
    if isinstance(expr, ast.Name):
        return expr.id, (), (), False
    if isinstance(expr, ast.Call):
        if not isinstance(expr.func, ast.Name):
            raise UsageError(
                f"{label}: the factory must be a plain name such as "
                f"'create_app(...)', not {ast.unparse(expr.func)!r}"
            )
        if any(kw.arg is None for kw in expr.keywords) or any(
            isinstance(a, ast.Starred) for a in expr.args
        ):
            raise UsageError(
                f"{label}: '*args' and '**kwargs' are not allowed; "
                "write the literal arguments out, e.g. create_app('dev', testing=True)"
            )
        try:
            args = tuple(ast.literal_eval(a) for a in expr.args)
            kwargs = tuple((str(kw.arg), ast.literal_eval(kw.value)) for kw in expr.keywords)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            # TypeError: an unhashable key or set member, e.g. {[]: 1}
            raise UsageError(
                f"{label}: factory arguments must be Python literals "
                "(strings, numbers, True/False/None, lists, dicts with hashable keys); "
                "quote names, e.g. create_app('dev')"
            ) from None
        try:  # every server gets them as text: they must read back as the same values
            same = ast.literal_eval(repr((args, kwargs))) == (args, kwargs)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            same = False
        if not same:
            raise UsageError(
                f"{label}: the factory arguments do not survive being written out as "
                "literals (a float such as 1e999 is inf, nan is not equal to itself); pass "
                "a finite number or a string the factory converts"
            )
        return expr.func.id, args, kwargs, True
    raise UsageError(f"{label}: {text!r} is not an attribute name or a call; {_HINT}")


def prepare_import(path: str) -> tuple[str, str]:
    """Flask's ``prepare_import`` without touching ``sys.path``.

    Returns ``(module_name, directory_for_sys_path)``.
    """
    path = os.path.realpath(path)
    fname, ext = os.path.splitext(path)
    if ext == ".py":
        path = fname
    if os.path.basename(path) == "__init__":
        path = os.path.dirname(path)
    parts: list[str] = []
    while True:
        path, name = os.path.split(path)
        parts.append(name)
        if not os.path.exists(os.path.join(path, "__init__.py")):
            break
    return ".".join(reversed(parts)), path


def _looks_like_path(text: str) -> bool:
    return text.endswith(".py") or "/" in text or os.sep in text or text.startswith(".")


def locate_module_file(module: str, path_entry: str) -> str | None:
    """The source file of ``module`` under ``path_entry``, found without importing it."""
    locations: list[str] | None = [path_entry]
    spec = None
    for i, _part in enumerate(module.split(".")):
        name = ".".join(module.split(".")[: i + 1])
        spec = importlib.machinery.PathFinder.find_spec(name, locations)
        if spec is None:
            return None
        locations = list(spec.submodule_search_locations or [])
    return spec.origin if spec is not None and spec.has_location else None


def _module_exists(module: str, path_entry: str) -> bool:
    top = module.split(".")[0]
    if importlib.machinery.PathFinder.find_spec(top, [path_entry]) is not None:
        return True
    # Installed packages (``--flask-app=flaskr``); find_spec on a top-level name only
    # consults the finders, it does not execute the module.
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def parse_spec(raw: str, base_dir: str | os.PathLike[str], source: str = "--flask-app") -> AppSpec:
    """Check ``raw`` against Flask's grammar and locate it relative to ``base_dir``.

    Raises :class:`UsageError` with a one-line message for anything Flask would reject
    before importing, and for files or modules that do not exist.
    """
    base = os.path.abspath(os.fspath(base_dir))
    text = (raw or "").strip()
    if not text:
        raise UsageError(f"app spec from {source} is empty; {_HINT}")
    label = f"app spec {text!r} (from {source})"
    pieces = _SPLIT.split(text, maxsplit=1)
    module_part = pieces[0].strip()
    attr_text = pieces[1] if len(pieces) == 2 else None
    if not module_part:
        raise UsageError(f"{label} names no module before ':'; write e.g. 'hello:app'")
    attr: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    is_call = False
    if attr_text is not None:
        if not attr_text.strip():
            raise UsageError(
                f"{label} has nothing after ':'; name the app ('{module_part}:app') "
                f"or drop the colon to let Flask discover it ('{module_part}')"
            )
        attr, args, kwargs, is_call = _parse_attribute(label, attr_text)

    file: str | None = None
    # Flask takes the real path of what is before the colon: 'hello.py/' is hello.py
    as_written = module_part
    if _looks_like_path(module_part) and module_part.rstrip("/" + os.sep):
        module_part = module_part.rstrip("/" + os.sep)
    candidate = os.path.join(base, module_part)
    dotted = all(p.isidentifier() for p in module_part.split("."))
    # Flask turns every spec into a path first (prepare_import), so 'my-app' is the file
    # my-app.py: its module name is not an identifier, and Flask imports it all the same.
    if (_looks_like_path(module_part) or os.path.isdir(candidate)
            or (not dotted and os.path.isfile(candidate + ".py"))):
        if module_part.endswith(".py"):
            if not os.path.isfile(candidate):
                raise UsageError(
                    f"{label}: file {candidate} does not exist; paths are relative "
                    f"to {base}"
                )
            file = os.path.realpath(candidate)
        elif os.path.isdir(candidate):
            if not os.path.isfile(os.path.join(candidate, "__init__.py")):
                hint = next(
                    (f"'{module_part.rstrip('/')}/{n}'" for n in DEFAULT_FILES
                     if os.path.isfile(os.path.join(candidate, n))),
                    "a file inside it such as 'dir/app.py'",
                )
                raise UsageError(
                    f"{label}: directory {candidate} is not a Python package "
                    f"(no __init__.py); point at {hint}"
                )
            file = os.path.realpath(os.path.join(candidate, "__init__.py"))
        elif os.path.isfile(candidate + ".py"):
            file = os.path.realpath(candidate + ".py")
        else:
            raise UsageError(
                f"{label}: {candidate} does not exist; paths are relative to {base}"
            )
        module, path_entry = prepare_import(file)
    else:
        if not dotted:
            raise UsageError(
                f"{label}: {module_part!r} is not a module name or an existing path "
                f"under {base}; {_HINT}"
            )
        module, path_entry = prepare_import(candidate)
        if not _module_exists(module, path_entry):
            raise UsageError(
                f"{label}: no module {module.split('.')[0]!r} in {path_entry} or in "
                f"the environment of {sys.executable}; check the name, run pytest from the "
                "project directory, or install the project (pip install -e .)"
            )
    return AppSpec(
        # what flask --app is given: the parts without the spaces around them, which
        # Flask would take as part of the module name ('hello : app')
        raw=as_written + (f":{attr_text.strip()}" if attr_text is not None else ""),
        source=source,
        base_dir=base,
        module=module,
        path_entry=path_entry,
        attr=attr,
        args=args,
        kwargs=kwargs,
        is_call=is_call,
        file=file,
    )


def has_main_guard(source: str) -> bool:
    """True when a module has a top-level ``if __name__ == "__main__":`` block."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in tree.body:
        if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
            continue
        test = node.test
        if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
            continue
        sides = [test.left, test.comparators[0]]
        names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
        consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
        if names and consts:
            return True
    return False


def script_entry(module: str, module_file: str | None, is_package: bool, cwd: str) -> tuple[tuple[str, ...] | None, str]:
    """How ``python ...`` runs the app's own entry point, and why it may have none.

    A package runs as ``python -m pkg`` (its ``__main__.py``); a module inside a package
    as ``python -m pkg.mod`` (so its relative imports work); a top-level module as
    ``python path/to/file.py``, exactly what its author types. The reason is non-empty
    when there is no entry point to speak of (no ``__main__.py``, no main guard): the
    app-run server is then skipped unless chosen explicitly, in which case the command
    still runs and its failure is diagnosed.
    """
    if module_file is None:
        return None, f"{module!r} has no source file to run"
    if is_package:
        main = Path(module_file).parent / "__main__.py"
        reason = "" if main.is_file() else (
            f"package {module!r} has no __main__.py, so it has no script entry point "
            f"(python -m {module} would not start it)")
        return ("-m", module), reason
    try:
        text = Path(module_file).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return None, f"cannot read {module_file}: {exc}"
    reason = "" if has_main_guard(text) else (
        f"{os.path.basename(module_file)} has no `if __name__ == '__main__':` block, so it "
        "has no script entry point")
    if "." in module:
        return ("-m", module), reason
    rel = os.path.relpath(module_file, cwd)
    return ((rel if not rel.startswith("..") else module_file),), reason

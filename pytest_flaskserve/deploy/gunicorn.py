"""Gunicorn in a user's deployment: its command-line flags and its ``gunicorn.conf.py``.

Gunicorn's own precedence does the rewrite: a ``--bind`` on the command line wins over
``bind`` in the config file (and over ``GUNICORN_CMD_ARGS``), so the user's config file
is run as it is, unchanged, with one ``--bind`` added. What that cannot cover is
refused: daemon mode (the server would leave the process the plugin watches and stops)
and a hook that sets ``bind`` itself.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_flaskserve.deploy.listen import (
    Context,
    Rewrite,
    Splice,
    find_flags,
    loopback_note,
    positional_app,
    read_text,
    replace_all,
)
from pytest_flaskserve.errors import UsageError

#: Gunicorn's default config file, read from the working directory when no -c is given
DEFAULT_CONFIG = "gunicorn.conf.py"


@dataclass(frozen=True)
class ConfigFacts:
    """What a ``gunicorn.conf.py`` sets that the rewrite needs to know."""

    path: Path
    bind: str | None  # as written (source text of the value)
    bind_value: str | None  # the value when it is a literal string
    wsgi_app: str | None


def read_config(path: Path, where: str) -> ConfigFacts:
    """Check ``path`` as Gunicorn will run it; a UsageError for what the tests cannot run."""
    source = read_text(path, where, "Gunicorn config file")
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise UsageError(f"{path}:{exc.lineno}: syntax error in the Gunicorn config file "
                         f"({exc.msg}); Gunicorn would not start: fix the line") from None
    bind = bind_value = wsgi_app = None
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            continue
        name, value = node.targets[0].id, node.value
        literal = value.value if isinstance(value, ast.Constant) else None
        # only a literal true value is refused here: a computed one (from the environment,
        # as the message below advises) is judged at run time, where a server that detaches
        # is found, killed and named
        if name == "daemon" and isinstance(value, ast.Constant) and literal:
            raise UsageError(
                f"{path}:{node.lineno}: daemon = {ast.get_source_segment(source, value)} detaches "
                "Gunicorn from the process the tests start and stop; drop it (a process "
                "manager or the platform keeps Gunicorn in the foreground) or set it from the "
                "environment: daemon = os.environ.get('GUNICORN_DAEMON') == '1'")
        if name == "bind":
            bind = ast.get_source_segment(source, value)
            if isinstance(literal, str):
                bind_value = literal
            elif isinstance(value, ast.List) and all(isinstance(e, ast.Constant) for e in value.elts):
                bind_value = ", ".join(str(e.value) for e in value.elts)  # type: ignore[attr-defined]
        if name == "wsgi_app" and isinstance(literal, str):
            wsgi_app = literal
    for call in ast.walk(tree):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "set" and call.args
                and isinstance(call.args[0], ast.Constant) and call.args[0].value == "bind"):
            raise UsageError(
                f"{path}:{call.lineno}: the bind is fixed inside code (cfg.set('bind', ...)), "
                "after the command line is read, so the tests cannot move it to their port; "
                "set bind at the top level of the file instead (bind = os.environ.get('BIND', "
                "'127.0.0.1:8000')), where the command line's --bind overrides it")
    return ConfigFacts(path, bind, bind_value, wsgi_app)


def config_path(args: Sequence[str], cwd: Path) -> Path | None:
    """The config file Gunicorn reads for these arguments: the last ``-c``, or its default
    ``./gunicorn.conf.py`` when that exists (``python:module`` configs are not files)."""
    configs = find_flags(args, ("--config",), ("-c",))
    if configs:
        value = configs[-1].value or ""
        if value.startswith("python:"):
            return None
        return cwd / value.removeprefix("file:")
    default = cwd / DEFAULT_CONFIG
    return default if default.is_file() else None


def rewrite(args: Sequence[str], context: Context) -> Rewrite:
    """``--bind`` becomes the test address; anything Gunicorn would not stay attached for
    (``-D``/``--daemon``) is refused."""
    if find_flags(args, ("--daemon",), ("-D",), takes_value=False):
        raise UsageError(f"{context.where}: --daemon detaches Gunicorn from the process the "
                         "tests start and stop; drop -D/--daemon from the command")
    if find_flags(args, ("--check-config", "--print-config", "--version", "--help"),
                  ("-v", "-h"), takes_value=False):
        return Rewrite((), "", serves=False)
    binds = find_flags(args, ("--bind",), ("-b",))
    config = config_path(args, context.cwd)
    facts = read_config(config, context.where) if config is not None else None
    notes: list[str] = []
    if binds:
        original = ", ".join(b.value or "" for b in binds)
        if facts is not None and facts.bind:
            notes.append(f"{facts.path.name} sets bind = {facts.bind}; the command line's "
                         "--bind wins, as in Gunicorn")
    elif facts is not None and facts.bind:
        original = facts.bind_value or f"{facts.bind} (in {facts.path.name})"
        notes.append(f"{facts.path.name} sets bind = {facts.bind}; the added --bind wins over "
                     "it, as a command-line option does in Gunicorn")
    else:
        # Gunicorn's default bind: 0.0.0.0:$PORT when PORT is set (the platforms set it)
        original = "0.0.0.0:$PORT"
        notes.append("no bind in the command or its config: Gunicorn would listen on "
                     "0.0.0.0:$PORT (its default when PORT is set)")
    notes += loopback_note(original, context.address)
    if facts is not None:
        notes.append(f"Gunicorn reads {facts.path} as written (workers, worker class, "
                     "timeouts, preload and hooks are the file's)")
    app = positional_app(args) or (facts.wsgi_app if facts is not None else None)
    extra: tuple[str, ...] = ()
    if not find_flags(args, ("--control-socket",)) and \
            not find_flags(args, ("--no-control-socket",), takes_value=False):
        from pytest_flaskserve.servers.gunicorn import no_control_socket

        # its default, ~/.gunicorn/gunicorn.ctl, is one file for every run on the machine
        extra = no_control_socket()
    end = len(args)
    if binds:
        splices = (*replace_all(binds, ("--bind", context.address), end),
                   *((Splice(end, end, extra),) if extra else ()))
    else:
        splices = (Splice(end, end, ("--bind", context.address, *extra)),)
    return Rewrite(splices, original, tuple(notes), app=app)

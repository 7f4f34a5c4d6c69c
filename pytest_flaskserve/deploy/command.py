"""A command from a deployment file: which server it starts, and how it is run on the
test's port.

Heroku and the like run a Procfile command with a shell and ``$PORT`` set; Docker runs an
exec-form ``CMD`` directly and a shell-form one with ``/bin/sh -c``. The command is run
the same way here, with one change: the server's listen address, through the rewriter its
launcher names (``Launcher.deploy_rewriter``). A program the plugin does not know is run as
written when it listens on ``$PORT``, and refused (with the fix) when it does not.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.deploy import shellwords
from pytest_flaskserve.deploy.listen import Context, Rewrite, Splice
from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.servers import Launcher

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")
_USES_PORT = re.compile(r"\$\{?PORT\b")
#: interpreter flags that may come before -m (they take no value)
_PY_FLAGS = ("-u", "-O", "-OO", "-B", "-E", "-s", "-S", "-I", "-b", "-bb", "-q")

#: the words the test's app adds to a command that does not name one (a config file
#: alone), and their environment: given the app the test runs
AppWords = Callable[[Launcher, ResolvedApp], tuple[tuple[str, ...], dict[str, str]]]


@dataclass(frozen=True)
class Command:
    """A command as a deployment file wrote it: exactly one of ``shell`` (run by
    ``/bin/sh -c``) and ``argv`` (run directly)."""

    id: str
    where: str  # file:line, for messages
    cwd: Path
    shell: str | None = None
    argv: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    app_words: AppWords | None = None
    notes: tuple[str, ...] = ()
    #: text replaced by the test's port (``{port}``), for commands written for the tests;
    #: a command that contains it is run with that replacement alone
    placeholder: str | None = None

    def has_placeholder(self) -> bool:
        return self.placeholder is not None and self.placeholder in self.original

    @property
    def original(self) -> str:
        import shlex

        return self.shell if self.shell is not None else shlex.join(self.argv or ())


@dataclass(frozen=True)
class Analysis:
    """Where the server's program is in the command and what it is."""

    words: tuple[shellwords.Word, ...]  # shell form only
    args: tuple[str, ...]  # the program and its arguments
    offset: int  # index of the program in ``words`` (shell form)
    end: int  # end of the simple command in ``words`` (shell form)
    exec_ok: bool
    server: Launcher | None
    arg_start: int  # index in ``args`` where the server's own arguments start
    #: index in ``args`` of the program that serves, after pass-through wrappers
    #: (``tini --``, ``dumb-init``, ``nice -n 5``, an entrypoint script that ``exec "$@"``)
    program: int = 0


def analyse(command: Command) -> Analysis:
    if command.shell is not None:
        words = tuple(shellwords.split(command.shell, command.where))
        start, end, exec_ok = shellwords.last_command(words)
        offset = shellwords.command_words(words, start, end)
        args = tuple(w.value for w in words[offset:end])
    else:
        words, offset, exec_ok = (), 0, False
        args = tuple(command.argv or ())
        end = len(args)
    if not args:
        raise UsageError(f"{command.where}: the command is empty; write the command that "
                         "starts the web server")
    program = _past_wrappers(args, command.cwd)
    server, arg_start = identify(args[program:]) if program < len(args) else (None, 1)
    return Analysis(words, args, offset, end, exec_ok, server, arg_start + program, program)


#: programs that run the rest of their command line after their own options (a
#: container's init, what ``ENTRYPOINT ["tini", "--"]`` is for, and ``nice``), with their
#: options that take a value
_PASS_THROUGH = {"tini": ("-e", "-p"), "tini-static": ("-e", "-p"),
                 "dumb-init": ("-r", "--rewrite"), "nice": ("-n", "--adjustment")}
#: an entrypoint script that only hands over to its arguments (Docker's docs' pattern)
_HANDS_OVER = re.compile(r'^\s*exec\s+"\$@"\s*$', re.M)


def _past_wrappers(args: Sequence[str], cwd: Path) -> int:
    """Index in ``args`` of the first program that is not a pass-through wrapper."""
    i = 0
    while i < len(args) - 1:
        name = os.path.basename(args[i])
        if name in _PASS_THROUGH:
            i += 1
            while i < len(args) and args[i].startswith("-"):
                if args[i] == "--":
                    i += 1
                    break
                i += 2 if args[i] in _PASS_THROUGH[name] else 1
            continue
        script = _local_program(args[i], cwd)
        if script is None or not _hands_over(script):
            break
        i += 1
    return i


def _hands_over(script: Path) -> bool:
    try:
        return bool(_HANDS_OVER.search(script.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return False


def identify(args: Sequence[str]) -> tuple[Launcher | None, int]:
    """The launcher whose ``commands`` name this program (``gunicorn``, ``python -m
    gunicorn``), and where its arguments start."""
    name, start = os.path.basename(args[0]), 1
    if _PYTHON.fullmatch(name):
        i = 1
        while i < len(args) and args[i] in _PY_FLAGS:
            i += 1
        if i + 1 < len(args) and args[i] == "-m":
            name, start = args[i + 1], i + 2
    for launcher_name in servers.names():
        launcher = servers.get(launcher_name)
        if name in launcher.commands:
            return launcher, start
    return None, start


def rewrite(command: Command, analysis: Analysis, context: Context) -> Rewrite | None:
    """The server's rewrite of its listen address, None for a program the plugin does not
    know (run as written: see :func:`unknown_problem`)."""
    if analysis.server is None:
        return None
    rewriter = analysis.server.deploy_rewriter()
    if rewriter is None:
        return None
    return rewriter(analysis.args[analysis.arg_start:], context)


def unknown_problem(command: Command, analysis: Analysis) -> str | None:
    """Why a program the plugin cannot rewrite cannot be run on the test's port, or None
    when it honours ``$PORT`` (the command or the Python script it runs reads it)."""
    if _USES_PORT.search(command.original):
        return None
    args = analysis.args[analysis.program:] or analysis.args
    script = _python_script(args, command.cwd)
    program = os.path.basename(args[0])
    if script is not None:
        return _script_problem(script, command.where)
    local = _local_program(args[0], command.cwd)
    if local is not None:
        return _shell_script_problem(local, command.where)
    if "/" in args[0] and not (command.cwd / args[0]).exists():
        return (f"{command.where}: {args[0]} does not exist in {command.cwd}; check "
                "the command's path")
    return (f"{command.where}: {program!r} is not a server the plugin knows and the command "
            "does not use $PORT, so the tests cannot move it to their port; listen on $PORT "
            f"(e.g. '{program} ... --port $PORT') or start a server the plugin knows "
            "(gunicorn, uwsgi, waitress-serve, flask run, granian)")


def _python_script(args: Sequence[str], cwd: Path) -> Path | None:
    if not _PYTHON.fullmatch(os.path.basename(args[0])):
        return None
    for arg in args[1:]:
        if arg.endswith(".py"):
            return cwd / arg
        if not arg.startswith("-"):
            return None
    return None


def _local_program(program: str, cwd: Path) -> Path | None:
    """The project's own executable the command runs (``./boot.sh``, ``bin/start-web``,
    an ENTRYPOINT script next to the Dockerfile), or None for a program on PATH."""
    if "/" not in program and shutil.which(program) is not None:
        return None
    candidate = (cwd / program).resolve()
    if not candidate.is_file() or _PYTHON.fullmatch(candidate.name) \
            or not candidate.is_relative_to(cwd.resolve()):
        return None  # an interpreter, or a program installed elsewhere (/usr/bin/tini)
    return candidate


def _shell_script_problem(script: Path, where: str) -> str | None:
    """A start script that uses $PORT is trusted to listen there, like a Python script
    that reads PORT; one that does not is refused, naming the file."""
    try:
        text = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""  # a binary: nothing to read, nothing to trust
    if _USES_PORT.search(text):
        return None
    return (f"{where}: {script.name} (the script the command runs) does not use $PORT, so "
            "the tests cannot move the server it starts to their port; listen on $PORT in "
            f"it (e.g. 'gunicorn -b :${{PORT:-5000}} ...'), or put the server's command in "
            f"{where.rsplit(':', 1)[0]} itself")


def _script_problem(script: Path, where: str) -> str | None:
    """A script that reads PORT is fine; one whose ``.run(...)`` fixes its port is not."""
    try:
        source = script.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except FileNotFoundError:
        return f"{where}: {script} does not exist; check the command's path"
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        return f"{where}: cannot read {script}: {exc}"
    if re.search(r"""['"]PORT['"]""", source):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "run":
            port = next((k.value for k in node.keywords if k.arg == "port"), None)
            fixed = ast.get_source_segment(source, port) if port is not None else "5000 (the default)"
            return (f"{script}:{node.lineno}: the bind is fixed inside code (port {fixed}), so "
                    "the tests cannot move it to their port; read it from the environment: "
                    "app.run(port=int(os.environ.get('PORT', 5000)))")
    return (f"{where}: {script.name} does not read $PORT and starts no server the plugin knows; "
            "read the port from os.environ['PORT'] or start gunicorn, waitress-serve, uwsgi, "
            "flask run or granian")


@dataclass(frozen=True)
class Rendered:
    argv: list[str]
    env: dict[str, str]
    notes: tuple[str, ...]
    temp_dirs: tuple[str, ...] = ()


def render(command: Command, context: Context, app: ResolvedApp | None,
           launcher: Launcher) -> Rendered:
    """The command as it is run on ``context``'s port."""
    if command.has_placeholder():
        assert command.placeholder is not None
        port = str(context.port)
        as_written = (f"{command.where} as written: {command.original}",
                      f"{command.placeholder} -> {port}")
        run_env = {**command.env, **activated_env(), "PORT": port}
        if command.shell is not None:
            return Rendered(["/bin/sh", "-c", command.shell.replace(command.placeholder, port)],
                            run_env, as_written)
        return Rendered([a.replace(command.placeholder, port) for a in command.argv or ()],
                        run_env, as_written)
    analysis = analyse(command)
    extra: tuple[str, ...] = ()
    env: dict[str, str] = {}
    if command.app_words is not None and app is not None:
        extra, env = command.app_words(launcher, app)
    args = list(analysis.args) + list(extra)
    rewritten = rewrite(command, analysis, context)
    splices: tuple[Splice, ...] = ()
    notes = [f"{command.where} as written: {command.original}"]
    if rewritten is not None:
        # rewriters see the server's arguments; the splices are moved onto the whole command
        base = analysis.arg_start
        splices = tuple(Splice(s.start + base, s.end + base, s.words) for s in rewritten.splices)
        notes += [f"listen address {rewritten.original} -> {context.address}",
                  *rewritten.notes]
    else:
        notes.append(f"{os.path.basename(analysis.args[0])} is not a server the plugin knows: "
                     "run as written, with PORT set, trusting it to listen there")
    notes += command.notes
    if command.shell is not None:
        words = analysis.words
        off = analysis.offset
        edits = [(s.start + off, s.end + off, s.words) for s in splices]
        if extra:
            edits.append((analysis.end, analysis.end, extra))
        line = shellwords.render(command.shell, words, edits)
        first = _first_of_command(words, off)
        if analysis.exec_ok and words[first].value != "exec":
            # sh would stay the parent: the server must be the process the tests stop
            at = words[first].start
            line = line[:at] + "exec " + line[at:]
            notes.append("run by /bin/sh -c as the platforms do, with exec so that the "
                         "server is the process the tests stop")
        argv = ["/bin/sh", "-c", line]
    else:
        for s in sorted(splices, key=lambda s: s.start, reverse=True):
            args[s.start:s.end] = list(s.words)
        argv = args
    env.update(command.env)
    env.update(activated_env(env.get("PATH")))
    env["PORT"] = str(context.port)
    return Rendered(argv, env, tuple(notes),
                    rewritten.temp_dirs if rewritten is not None else ())


def _first_of_command(words: Sequence[shellwords.Word], program: int) -> int:
    """Where ``exec`` goes in the simple command whose program is ``words[program]``:
    after its leading ``VAR=value`` words (``FOO=1 exec gunicorn``), before ``env``."""
    i = program
    while i > 0 and not words[i - 1].operator:
        i -= 1
    while i < program and shellwords.is_assignment(words[i].value):
        i += 1
    return i


def activated_env(path: str | None = None) -> dict[str, str]:
    """This environment's virtualenv activated, as a platform's buildpack activates the
    app's: its ``bin`` first on PATH (``gunicorn`` and ``python`` are the test's), and
    ``VIRTUAL_ENV`` (uWSGI takes its Python home from it)."""
    bin_dir = os.path.dirname(sys.executable)
    inherited = path or os.environ.get("PATH", "")
    env = {"PATH": os.pathsep.join([bin_dir, inherited]) if inherited else bin_dir}
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    return env

"""The one change made to a user's command: where it listens.

A server's deploy rewriter (named by its launcher's ``deploy_rewriter``) reads the
server's arguments and answers with a :class:`Rewrite`: which words to replace so the
server listens on the plugin's free loopback port, what the command said before (for
``-v``), and notes. Workers, worker class, timeouts, preload, hooks and environment are
never touched. Rewriters raise :class:`~pytest_flaskserve.errors.UsageError` naming the
file, line and fix for what cannot be rewritten safely (daemon mode, for one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_flaskserve.errors import UsageError, hide_own_errors

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

#: addresses that listen on every interface; a test server listens on loopback only
WILDCARDS = ("0.0.0.0", "::", "[::]", "*", "")


@dataclass(frozen=True)
class Splice:
    """Replace ``args[start:end]`` by ``words`` (``start == end``: insert before ``start``)."""

    start: int
    end: int
    words: tuple[str, ...]


@dataclass(frozen=True)
class Context:
    """What a rewriter may need besides the arguments."""

    #: ``file:line`` of the command, for error messages
    where: str
    #: the directory the command runs in
    cwd: Path
    #: this start's own directory for rewritten copies of config files (in the session's
    #: temp dir, next to the log)
    scratch: Path
    host: str
    port: int
    #: checking only: rewriters name the copies they would write without writing them
    dry: bool = False

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Rewrite:
    splices: tuple[Splice, ...]
    #: the listen address(es) as the command or its config file wrote them, or a
    #: description of the server's default when it names none
    original: str
    notes: tuple[str, ...] = ()
    #: the app the command names (``module:attr``), when it can be told
    app: str | None = None
    #: not a web server invocation after all (``flask db upgrade``)
    serves: bool = True
    #: directories made for the start outside its scratch dir (short Unix socket paths),
    #: removed after the stop (see :attr:`LaunchPlan.temp_dirs`)
    temp_dirs: tuple[str, ...] = ()


#: ``rewrite(args, context) -> Rewrite``: one per server, found through its launcher
Rewriter = Callable[[Sequence[str], Context], Rewrite]


@dataclass(frozen=True)
class Flag:
    """One occurrence of an option in an argument list: ``args[start:end]`` and its value."""

    start: int
    end: int
    value: str | None


def find_flags(args: Sequence[str], long: Sequence[str], short: Sequence[str] = (),
               takes_value: bool = True) -> list[Flag]:
    """Every occurrence of the option: ``--name value``, ``--name=value``, ``-n value``,
    ``-nvalue`` (or the bare flag when it takes no value); stops at ``--``."""
    found: list[Flag] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        name, eq, inline = arg.partition("=")
        if name in long:
            if not takes_value:
                found.append(Flag(i, i + 1, None))
            elif eq:
                found.append(Flag(i, i + 1, inline))
            else:
                found.append(Flag(i, min(i + 2, len(args)), args[i + 1] if i + 1 < len(args) else None))
                i += 1
        else:
            for flag in short:
                if arg == flag:
                    if takes_value:
                        found.append(Flag(i, min(i + 2, len(args)),
                                          args[i + 1] if i + 1 < len(args) else None))
                        i += 1
                    else:
                        found.append(Flag(i, i + 1, None))
                    break
                if takes_value and arg.startswith(flag) and not arg.startswith("--"):
                    found.append(Flag(i, i + 1, arg[len(flag):]))
                    break
        i += 1
    return found


def replace_all(flags: Sequence[Flag], words: Sequence[str], at: int) -> tuple[Splice, ...]:
    """The first occurrence becomes ``words``, the others go; none: insert at ``at``."""
    if not flags:
        return (Splice(at, at, tuple(words)),)
    first, *rest = flags
    return (Splice(first.start, first.end, tuple(words)),
            *(Splice(f.start, f.end, ()) for f in rest))


def host_of(address: str) -> str:
    """The host part of ``host:port`` (``[::]:80`` -> ``::``; ``:8000`` -> ``""``)."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    return address.rpartition(":")[0] if ":" in address else address


def loopback_note(original: str, address: str) -> tuple[str, ...]:
    """The -v note for a bind on every interface that the tests moved to loopback."""
    hosts = [host_of(a.strip()) for a in original.split(",")]
    if any(h in WILDCARDS for h in hosts):
        return (f"{original} listens on every interface; the tests run it on loopback, "
                f"{address}",)
    return ()


@dataclass(frozen=True)
class HostPortFlags:
    """A server whose address is ``--listen HOST:PORT`` or ``--host H --port P`` flags
    (Waitress, Flask's CLI, Granian). ``after`` names the subcommand the flags follow
    (``flask run``); ``default`` is where the server listens when told nothing."""

    host: tuple[str, ...]
    port: tuple[str, ...]
    default: str
    listen: tuple[str, ...] = ()
    after: str | None = None
    unix: tuple[str, ...] = field(default=())

    def __call__(self, args: Sequence[str], context: Context) -> Rewrite:
        at = 0
        if self.after is not None:
            if self.after not in args:
                return Rewrite((), "", serves=False)
            at = list(args).index(self.after) + 1
        hosts = find_flags(args, [h for h in self.host if h.startswith("--")],
                           [h for h in self.host if not h.startswith("--")])
        ports = find_flags(args, [p for p in self.port if p.startswith("--")],
                           [p for p in self.port if not p.startswith("--")])
        listens = find_flags(args, self.listen) if self.listen else []
        unix = find_flags(args, self.unix) if self.unix else []
        written = [f.value or "" for f in listens]
        if hosts or ports:
            written.append(f"{hosts[-1].value if hosts else '(default host)'}:"
                           f"{ports[-1].value if ports else '(default port)'}")
        written += [f"unix:{f.value}" for f in unix]
        original = ", ".join(written) or self.default
        if self.listen:
            new = (f"{self.listen[0]}={context.address}",)
            splices = replace_all([*listens, *hosts, *ports, *unix], new, at)
        else:
            host_words = (self.host[0], context.host)
            port_words = (self.port[0], str(context.port))
            splices = (*replace_all(hosts, host_words, at), *replace_all(ports, port_words, at))
        return Rewrite(splices, original, loopback_note(original, context.address))


@dataclass(frozen=True)
class BindFlags:
    """A server whose address is a repeatable ``-b/--bind HOST:PORT`` (Hypercorn): the
    first becomes the test's address, the others go."""

    long: tuple[str, ...]
    short: tuple[str, ...]
    default: str

    def __call__(self, args: Sequence[str], context: Context) -> Rewrite:
        binds = find_flags(args, self.long, self.short)
        original = ", ".join(b.value or "" for b in binds) or self.default
        return Rewrite(replace_all(binds, (self.long[0], context.address), len(args)),
                       original, loopback_note(original, context.address),
                       app=positional_app(args))


def positional_app(args: Sequence[str]) -> str | None:
    """The last ``module:attr`` word, the app reference most servers take."""
    import re

    for arg in reversed(args):
        if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*(\(.*\))?", arg):
            return arg
    return None


def read_text(path: Path, where: str, kind: str) -> str:
    try:
        # utf-8-sig: an editor's byte-order mark is not part of the first line
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{where}: {kind} {path} does not exist; check the path "
                         f"(relative paths are relative to {path.parent})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read {kind} {path}: {exc}") from None

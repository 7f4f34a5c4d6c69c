"""uWSGI in a user's deployment: its socket flags and its ``uwsgi.ini``.

uWSGI adds up every socket it is given (one more ``--http-socket`` on the command line
would be bound next to the file's own), so the file is run as a copy in the session's
scratch directory with only its socket lines changed; uWSGI's magic variables that name
the file's location (``%d``, ``%p``, ``%s``, ``%n``, ``%e``, ``%c``) are written out as
the original's, so paths built from them still point next to the user's file.

Which socket becomes the test's: the HTTP router (``http``) when there is one, otherwise
the first ``http-socket``; a uwsgi-protocol ``socket`` (for nginx's ``uwsgi_pass``) is
served as an ``http-socket`` instead, since the tests speak HTTP.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_flaskserve.deploy.listen import (
    WILDCARDS,
    Context,
    Flag,
    Rewrite,
    Splice,
    find_flags,
    host_of,
    read_text,
)
from pytest_flaskserve.errors import UsageError

ROUTER = ("http",)
HTTP_SOCKETS = ("http-socket", "http11-socket")
UWSGI_SOCKETS = ("socket", "uwsgi-socket", "s")
SHARED_SOCKETS = ("shared-socket",)
DAEMON = ("daemonize", "daemonize2", "d")
APP_KEYS = ("module", "wsgi-file", "wsgi", "file", "mount", "callable", "app", "w")
_MAGIC = re.compile(r"%([dpsnec%])")


def _key(name: str) -> str:
    return name.strip().replace("_", "-")


@dataclass(frozen=True)
class IniLine:
    number: int
    key: str
    value: str


@dataclass(frozen=True)
class Ini:
    path: Path
    section: str
    lines: tuple[str, ...]
    entries: tuple[IniLine, ...]  # key = value lines of the section

    def has(self, keys: Sequence[str]) -> bool:
        return any(e.key in keys for e in self.entries)


def read_ini(path: Path, where: str, section: str = "uwsgi") -> Ini:
    """The ``[section]`` of a uWSGI ini file; a UsageError for what uWSGI would reject or
    what the tests cannot run (daemon mode)."""
    text = read_text(path, where, "uWSGI ini file")
    lines = text.splitlines()
    current: str | None = None
    entries: list[IniLine] = []
    found = False
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise UsageError(f"{path}:{number}: syntax error: section header {line!r} has "
                                 "no closing ']'; write [uwsgi]")
            current = line[1:-1].strip()
            found = found or current == section
            continue
        if "=" not in line:
            raise UsageError(f"{path}:{number}: syntax error: {line!r} is not 'key = value'; "
                             "uWSGI ignores such lines, so write e.g. 'master = true'")
        if current is None:
            raise UsageError(f"{path}:{number}: {line!r} comes before any section; put it "
                             f"under [{section}]")
        if current != section:
            continue
        key, _, value = line.partition("=")
        entries.append(IniLine(number, _key(key), value.strip()))
    if not found:
        raise UsageError(f"{path}: no [{section}] section, so uWSGI reads nothing from it; "
                         f"put the options under [{section}]")
    for entry in entries:
        if entry.key in DAEMON:
            raise UsageError(
                f"{path}:{entry.number}: {entry.key} = {entry.value} detaches uWSGI from the "
                "process the tests start and stop; drop it (log to a file with "
                "logto = ... instead)")
    return Ini(path, section, tuple(lines), tuple(entries))


def _magic(ini: Ini) -> dict[str, str]:
    p = ini.path.resolve()
    return {"d": f"{p.parent}/", "p": str(p), "s": p.name, "n": p.stem,
            "e": p.suffix, "c": p.parent.name, "%": "%%"}


def _tcp(value: str) -> bool:
    return ":" in value and not value.startswith(("/", "@", "unix:"))


def rewrite(args: Sequence[str], context: Context) -> Rewrite:
    """Flags and ``--ini`` file together: one socket becomes the test address."""
    if find_flags(args, ("--daemonize", "--daemonize2"), ("-d",)):
        raise UsageError(f"{context.where}: --daemonize detaches uWSGI from the process the "
                         "tests start and stop; drop it (use --logto for a log file)")
    inis = find_flags(args, ("--ini",))
    ini = None
    if inis:
        value = inis[-1].value or ""
        name, _, section = value.partition(":")
        ini = read_ini(context.cwd / name, context.where, section or "uwsgi")

    def flags(names: Sequence[str]) -> list[Flag]:
        return find_flags(args, [f"--{n}" for n in names if len(n) > 1],
                          [f"-{n}" for n in names if len(n) == 1])

    cli = {kind: flags(names) for kind, names in
           (("router", ROUTER), ("http", HTTP_SOCKETS), ("uwsgi", UWSGI_SOCKETS))}
    file = {kind: [e for e in (ini.entries if ini else ()) if e.key in names] for kind, names in
            (("router", ROUTER), ("http", HTTP_SOCKETS), ("uwsgi", UWSGI_SOCKETS))}
    written = [f.value or "" for kind in cli for f in cli[kind]] + \
              [e.value for kind in file for e in file[kind]]
    original = ", ".join(written) or "(no socket: uWSGI would not serve HTTP)"
    notes: list[str] = []
    if any(host_of(a) in WILDCARDS for a in written if _tcp(a)):
        notes.append(f"{original} listens on every interface; the tests run it on loopback, "
                     f"{context.address}")
    ours = "router" if cli["router"] or file["router"] else "http"
    if ours == "http" and not (cli["http"] or file["http"]) and (cli["uwsgi"] or file["uwsgi"]):
        notes.append("a uwsgi-protocol socket is for a front server (nginx uwsgi_pass); the "
                     "tests speak HTTP, so it is served as an http-socket")
    key = "http" if ours == "router" else "http-socket"
    # the sockets replaced by ours: with a router, the uwsgi sockets behind it stay
    replaced = ("router",) if ours == "router" else ("http", "uwsgi")
    line_edits: dict[int, str | None] = {}
    splices: list[Splice] = []
    placed = False
    for kind in replaced:
        for entry in file[kind]:
            line_edits[entry.number] = None if placed else f"{key} = {context.address}"
            placed = True
    temp_dirs: tuple[str, ...] = ()
    # The uwsgi sockets behind a router, and shared sockets (bound by the master for the
    # options that name them, =0), become Unix sockets of this start: a fixed TCP port
    # (socket = :3031, shared-socket = 0.0.0.0:80) would bind the host's interfaces,
    # collide with a parallel start, and be announced as if it were the listen address.
    shared_entries = [e for e in (ini.entries if ini else ()) if e.key in SHARED_SOCKETS]
    backends = [e for e in file["uwsgi"] if _tcp(e.value)] if ours == "router" else []
    backends += [e for e in shared_entries if _tcp(e.value)]
    backend_flags = [f for f in cli["uwsgi"] if _tcp(f.value or "")] if ours == "router" else []
    backend_flags += [f for f in flags(SHARED_SOCKETS) if _tcp(f.value or "")]
    if backends or backend_flags:
        directory = _socket_dir(context)
        temp_dirs = () if context.dry else (directory,)
        for n, entry in enumerate(backends):
            line_edits[entry.number] = f"{entry.key} = {directory}/backend-{n}.sock"
        for n, flag in enumerate(backend_flags, len(backends)):
            name = args[flag.start].split("=")[0]  # --socket or --shared-socket
            splices.append(Splice(flag.start, flag.end,
                                  (name, f"{directory}/backend-{n}.sock")))
        moved = ", ".join([e.value for e in backends] + [f.value or "" for f in backend_flags])
        notes.append(f"the socket(s) {moved} (behind its http router, or shared) are "
                     f"Unix sockets in {directory} for the tests, so no fixed port is "
                     "bound")
    for kind in replaced:
        for flag in cli[kind]:
            words: tuple[str, ...] = () if placed else (f"--{key}", context.address)
            splices.append(Splice(flag.start, flag.end, words))
            placed = True
    if not placed:
        splices.append(Splice(len(args), len(args), (f"--{key}", context.address)))
    if ini is not None:
        copy = write_copy(ini, line_edits, context)
        splices.append(Splice(inis[-1].start, inis[-1].end,
                              ("--ini", f"{copy}:{ini.section}" if ini.section != "uwsgi"
                               else str(copy))))
        notes.append(f"uWSGI reads a copy of {ini.path} that differs only in its socket lines: "
                     f"{copy}")
    app = None
    for name in ("module", "wsgi-file", "wsgi", "w"):
        got = flags((name,)) or [Flag(0, 0, e.value) for e in (ini.entries if ini else ())
                                 if e.key == name]
        if got:
            app = got[-1].value
            break
    return Rewrite(tuple(splices), original, tuple(notes), app=app, temp_dirs=temp_dirs)


def _socket_dir(context: Context) -> str:
    """A short directory for this start's Unix sockets (a nested pytest's scratch path
    can pass the 107 bytes a socket path may have); the check only names one."""
    if context.dry:
        return "/tmp/flaskserve-uwsgi-XXXX"
    return tempfile.mkdtemp(prefix="flaskserve-uwsgi-")


def write_copy(ini: Ini, edits: dict[int, str | None], context: Context) -> Path:
    """The ini with ``edits`` applied (line number -> new line, None: removed) and the
    location magic variables written out, in the scratch directory."""
    magic = _magic(ini)
    out = []
    for number, line in enumerate(ini.lines, 1):
        if number in edits:
            new = edits[number]
            if new is None:
                continue
            line = new
        out.append(_MAGIC.sub(lambda m: magic[m.group(1)], line))
    copy = context.scratch / f"{ini.path.stem}-{context.port}{ini.path.suffix}"
    if context.dry:
        return copy
    context.scratch.mkdir(parents=True, exist_ok=True)
    copy.write_text("\n".join(out) + "\n", encoding="utf-8")
    return copy


def names_app(ini: Ini) -> bool:
    return ini.has(APP_KEYS)

"""Dockerfile: the final stage's ``CMD`` / ``ENTRYPOINT`` run on this machine (no container).

Read with ``dockerfile-parse`` (build arguments and ``ENV`` substitution as Docker does).
Docker's rules for the command: an exec-form ``ENTRYPOINT`` takes ``CMD`` as arguments, a
shell-form one ignores it, a shell form runs under ``/bin/sh -c``. ``ENV`` is applied
(except ``PATH``, which names the image's directories). ``WORKDIR`` is mapped back to the
build context through the ``COPY``/``ADD`` that filled it (``COPY . /app`` + ``WORKDIR
/app`` runs in the Dockerfile's directory).
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any

from pytest_flaskserve.deploy.command import Command
from pytest_flaskserve.deploy.launcher import DeployLauncher, make
from pytest_flaskserve.deploy.listen import read_text
from pytest_flaskserve.errors import UsageError

_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def _exec_form(value: str) -> list[str] | None:
    if not value.lstrip().startswith("["):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None  # Docker runs a malformed JSON array as a shell command, too
    if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
        return parsed
    return None


def load(path: Path) -> list[DeployLauncher]:
    text = read_text(path, str(path), "Dockerfile")  # missing: a UsageError with the path
    try:
        from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise UsageError(f"{path}: reading a Dockerfile needs dockerfile-parse: pip install "
                         "'pytest-flaskserve[deploy]'") from None
    # Content, not a path: given a path whose name is not exactly "Dockerfile"
    # (Dockerfile.prod, Containerfile, app.dockerfile) the parser takes it for a directory.
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
    structure: list[dict[str, Any]] = parser.structure
    contexts = parser.context_structure
    chain = _final_stage_chain(structure)
    if not chain:
        raise UsageError(f"{path}: no FROM instruction; this is not a Dockerfile")
    context_dir = path.parent
    workdir, copies = "/", []
    cmd = entrypoint = None
    stage_envs: dict[str, str] = {}
    cmd_stage = -1  # the FROM index of the stage that set CMD
    for stage, index in ((start, i) for start, end in chain for i in range(start + 1, end)):
        instr = structure[index]
        name, value = instr["instruction"], instr["value"]
        envs: dict[str, str] = contexts[index].envs

        def subst(text: str, envs: dict[str, str] = envs) -> str:
            return _VAR.sub(lambda m: envs.get(m.group(1) or m.group(2), m.group(0)), text)

        if name == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, subst(value)))
        elif name in ("COPY", "ADD"):
            parts = [p for p in (_exec_form(value) or shlex.split(value))]
            if any(p.startswith("--from") for p in parts):
                continue  # from another stage, not from the build context
            parts = [p for p in parts if not p.startswith("--")]
            if len(parts) >= 2:
                dest = posixpath.normpath(posixpath.join(workdir, subst(parts[-1])))
                for src in parts[:-1]:
                    if (context_dir / src).is_dir():
                        copies.append((dest, posixpath.normpath(src)))
        elif name == "CMD":
            cmd, cmd_stage = (instr, value), stage
        elif name == "ENTRYPOINT":
            entrypoint = (instr, value)
            if cmd_stage != stage:
                cmd = None  # Docker: an ENTRYPOINT resets a CMD its stage inherited
        stage_envs.update(envs)
    if cmd is None and entrypoint is None:
        raise UsageError(f"{path}: the final stage has no CMD or ENTRYPOINT, so nothing says "
                         "how the app is served; add e.g. CMD [\"gunicorn\", \"-b\", "
                         "\"0.0.0.0:8000\", \"wsgi:app\"]")
    chosen = entrypoint or cmd
    assert chosen is not None
    line = chosen[0]["startline"] + 1
    where = f"{path}:{line}"
    shell: str | None = None
    argv: list[str] | None = None
    if entrypoint is not None:
        argv = _exec_form(entrypoint[1])
        if argv is None:
            shell = entrypoint[1]  # a shell-form ENTRYPOINT ignores CMD
        elif cmd is not None:
            argv += _exec_form(cmd[1]) or ["/bin/sh", "-c", cmd[1]]
    else:
        assert cmd is not None
        argv = _exec_form(cmd[1])
        if argv is None:
            shell = cmd[1]
    if argv is not None and len(argv) == 3 and posixpath.basename(argv[0]) in ("sh", "bash") \
            and argv[1] == "-c":
        shell, argv = argv[2], None  # ["sh", "-c", "..."]: the shell command is the command
    cwd, notes = _host_dir(context_dir, workdir, copies)
    if argv is not None:
        argv = [_on_this_machine(word, context_dir, copies, notes) for word in argv]
    elif shell is not None:
        for word in dict.fromkeys(_shell_words(shell)):
            mapped = _on_this_machine(word, context_dir, copies, notes)
            if mapped != word:
                shell = shell.replace(word, shlex.quote(mapped))
    env = stage_envs  # a stage built FROM an earlier one inherits its ENV
    if "PATH" in env:
        notes.append(f"ENV PATH={env.pop('PATH')} names the image's directories; the tests "
                     "keep this machine's PATH")
    env.pop("PORT", None)
    command = Command(id="dockerfile", where=where, cwd=cwd, shell=shell,
                      argv=tuple(argv) if argv is not None else None, env=env,
                      notes=tuple(notes))
    launcher = make(command)
    launcher.check()
    return [launcher]


def _final_stage_chain(structure: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """The ``(FROM index, end)`` ranges whose instructions make the final image: the last
    stage and, when it is built FROM an earlier stage's name (``FROM base AS prod``), that
    stage's, recursively, first one first; empty without a FROM."""
    froms = [i for i, s in enumerate(structure) if s["instruction"] == "FROM"]
    ranges = {i: (i, froms[n + 1] if n + 1 < len(froms) else len(structure))
              for n, i in enumerate(froms)}
    names: dict[str, int] = {}
    bases: dict[int, str] = {}
    for i in froms:
        words = structure[i]["value"].split()
        words = [w for w in words if not w.startswith("--")]  # --platform=...
        if words:
            bases[i] = words[0].lower()
        if len(words) >= 3 and words[1].lower() == "as":
            names[words[2].lower()] = i
    chain: list[tuple[int, int]] = []
    stage = froms[-1] if froms else None
    while stage is not None and ranges[stage] not in chain:
        chain.insert(0, ranges[stage])
        parent = names.get(bases.get(stage, ""))
        stage = parent if parent is not None and parent < stage else None
    return chain


def _shell_words(shell: str) -> list[str]:
    """The words of a shell-form command, none when its quoting does not close (sh
    itself then reports it)."""
    try:
        return shlex.split(shell)
    except ValueError:
        return []


def _on_this_machine(word: str, context: Path, copies: list[tuple[str, str]],
                     notes: list[str]) -> str:
    """``word`` with an image path that a COPY filled from the build context (``--ini
    /app/uwsgi.ini`` after ``COPY ./app /app``) made the path of that file here, when it
    exists; any other word as it is."""
    prefix, eq, value = word.partition("=") if word.startswith("-") else ("", "", word)
    if not value.startswith("/"):
        return word
    for dest, src in sorted(copies, key=lambda c: -len(c[0])):
        if value == dest or value.startswith(dest.rstrip("/") + "/"):
            local = (context / src / posixpath.relpath(value, dest)).resolve()
            if local.exists():
                notes.append(f"{value} is the image's copy of {local}: the tests use that")
                return f"{prefix}{eq}{local}"
            return word
    return word


def _host_dir(context: Path, workdir: str, copies: list[tuple[str, str]]) -> tuple[Path, list[str]]:
    """The directory on this machine that the image's WORKDIR is a copy of."""
    for dest, src in sorted(copies, key=lambda c: -len(c[0])):
        if workdir == dest or workdir.startswith(dest.rstrip("/") + "/"):
            rel = posixpath.relpath(workdir, dest)
            return (context / src / rel).resolve(), []
    if workdir == "/":
        return context, []
    return context, [f"WORKDIR {workdir} is not a copy of the build context; the command "
                     f"runs in {context}"]

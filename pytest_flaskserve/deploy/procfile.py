"""Procfile (Heroku, Dokku, Scalingo, honcho, foreman): ``type: command`` lines.

Each process type whose command starts a web server becomes a server id,
``procfile:TYPE``; the platform runs the command with a shell and ``$PORT`` set, and so
do the tests (:mod:`.command`). Types that run something else (``worker: celery ...``,
``release: flask db upgrade``) are left out; ``web`` must serve, since the platform
routes HTTP to it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pytest_flaskserve.deploy.command import Command
from pytest_flaskserve.deploy.launcher import DeployLauncher, make, serves
from pytest_flaskserve.deploy.listen import read_text
from pytest_flaskserve.errors import UsageError

_LINE = re.compile(r"^([A-Za-z0-9_-]+)\s*:\s*(.*)$")


def load(path: Path) -> list[DeployLauncher]:
    text = read_text(path, str(path), "Procfile")
    launchers: list[DeployLauncher] = []
    seen: dict[str, int] = {}
    types: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise UsageError(f"{path}:{number}: {line!r} is not 'type: command' (e.g. "
                             "'web: gunicorn wsgi:app'); fix the line")
        kind, text_command = match.groups()
        if kind in seen:
            raise UsageError(f"{path}:{number}: process type {kind!r} is defined twice (also "
                             f"line {seen[kind]}); keep one")
        seen[kind] = number
        types.append(kind)
        if not text_command.strip():
            raise UsageError(f"{path}:{number}: process type {kind!r} has no command; write "
                             f"'{kind}: gunicorn wsgi:app'")
        command = Command(id=f"procfile:{kind}", where=f"{path}:{number}", cwd=path.parent,
                          shell=text_command)
        if kind == "web" or serves(command):
            launcher = make(command)
            launcher.check()
            launchers.append(launcher)
    if not launchers:
        listed = ", ".join(types) or "none"
        raise UsageError(f"{path}: no process type starts a web server (types: {listed}); add "
                         "one such as 'web: gunicorn wsgi:app'")
    return launchers

"""The user's deployment, run as written: Procfile, Dockerfile, gunicorn.conf.py, uwsgi.ini.

:func:`load` reads a deployment file and returns one launcher per web server it starts
(ids ``procfile:web``, ``dockerfile``, ``gunicorn.conf.py``, ``uwsgi.ini``); each runs the
file's own command with only its listen address moved to the test's free loopback port
(:mod:`.listen`, through the rewriter the server's launcher names). Nothing here imports
pytest; the plugin registers the launchers so tests can run on them by id.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_flaskserve.errors import UsageError

if TYPE_CHECKING:
    from pytest_flaskserve.deploy.launcher import DeployLauncher

KINDS = "a Procfile, a Dockerfile, a gunicorn.conf.py or a uwsgi.ini"


def load(path: str | Path, base_dir: str | Path, source: str) -> list[DeployLauncher]:
    """The launchers of the deployment file ``path`` (relative to ``base_dir``); a
    :class:`UsageError` naming the file, the line and the fix for what cannot be run."""
    from pytest_flaskserve.deploy import config_files, dockerfile, procfile

    file = Path(base_dir, path)
    if file.is_dir():
        raise UsageError(f"{source}: {file} is a directory; name the deployment file in it "
                         f"({KINDS})")
    if not file.is_file():
        raise UsageError(f"{source}: deployment file {file} does not exist (relative paths "
                         f"are relative to {base_dir}); name {KINDS}")
    name = file.name
    if name.startswith("Procfile"):
        return procfile.load(file)
    if "Dockerfile" in name or name.endswith(".dockerfile") or name == "Containerfile":
        return dockerfile.load(file)
    if name.endswith(".py"):
        return config_files.load_gunicorn(file)
    if name.endswith(".ini"):
        return config_files.load_uwsgi(file)
    raise UsageError(f"{source}: {file} is not a deployment file the plugin reads; name {KINDS}")

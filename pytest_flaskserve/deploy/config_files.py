"""A server's own config file as the deployment: ``gunicorn.conf.py`` and ``uwsgi.ini``.

Run the way their servers document: ``gunicorn -c gunicorn.conf.py [APP]`` and ``uwsgi
--ini uwsgi.ini``, in the file's directory, the id being the file's name. When the file
names no app (no ``wsgi_app``; no ``module``/``wsgi-file``), the test's app is added in
the server's own syntax.
"""

from __future__ import annotations

from pathlib import Path

from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.deploy import gunicorn, uwsgi
from pytest_flaskserve.deploy.command import Command
from pytest_flaskserve.deploy.launcher import DeployLauncher, make
from pytest_flaskserve.errors import UsageError
from pytest_flaskserve.servers import Launcher


def _gunicorn_app(launcher: Launcher, app: ResolvedApp) -> tuple[tuple[str, ...], dict[str, str]]:
    ref = app.reference(call_syntax=True, call_arguments=True, any_module_name=True)
    if ref is None:
        raise UsageError(f"Gunicorn cannot name {app.describe()}; set wsgi_app in the config")
    return (ref,), {}


def _uwsgi_app(launcher: Launcher, app: ResolvedApp) -> tuple[tuple[str, ...], dict[str, str]]:
    ref, env, _ = launcher.target(app, call_syntax=False, call_arguments=False,
                                  why="uWSGI cannot call a factory")
    return ("--module", ref), env


def load_gunicorn(path: Path) -> list[DeployLauncher]:
    facts = gunicorn.read_config(path, str(path))
    command = Command(id=path.name, where=str(path), cwd=path.parent,
                      argv=("gunicorn", "-c", path.name),
                      app_words=None if facts.wsgi_app else _gunicorn_app,
                      notes=() if facts.wsgi_app else
                      ("the config sets no wsgi_app: Gunicorn is given the test's app",))
    launcher = make(command)
    launcher.check()
    return [launcher]


def load_uwsgi(path: Path) -> list[DeployLauncher]:
    ini = uwsgi.read_ini(path, str(path))
    names_app = uwsgi.names_app(ini)
    command = Command(id=path.name, where=str(path), cwd=path.parent,
                      argv=("uwsgi", "--ini", path.name),
                      app_words=None if names_app else _uwsgi_app,
                      notes=() if names_app else
                      ("the ini names no module or wsgi-file: uWSGI is given the test's app",))
    launcher = make(command)
    launcher.check()
    return [launcher]

"""The pytest side of deployment files: --flask-deploy's and the ``flask_deploy``
marker's server ids, and ``flask_server_factory.command``. Reading the files and running
their commands is :mod:`pytest_flaskserve.deploy`'s."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_flaskserve import servers
from pytest_flaskserve.errors import hide_own_errors
from pytest_flaskserve.plugin import markers
from pytest_flaskserve.servers import ServerOptions

if TYPE_CHECKING:
    from pytest_flaskserve.lifecycle.supervisor import ServerHandle
    from pytest_flaskserve.plugin.session import Runtime

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors


def load(rt: Runtime, path: str, base_dir: str, source: str) -> list[str]:
    """Read a deployment file once per session and register its launchers; their ids."""
    from pytest_flaskserve import deploy

    key = os.path.realpath(os.path.join(base_dir, path))
    if key not in rt.deploy_files:
        launchers = deploy.load(path, base_dir, source)
        for launcher in launchers:
            servers.add(launcher)
        rt.deploy_files[key] = [launcher.name for launcher in launchers]
    return rt.deploy_files[key]


def load_settings(rt: Runtime) -> None:
    """--flask-deploy's files (and their ini and env twins), before anything names their ids."""
    source = rt.settings.sources.get("deploy", "--flask-deploy")
    rt.deploy_ids = tuple(dict.fromkeys(
        name for path in rt.settings.deploy for name in load(rt, path, rt.rootdir, source)))


def chosen(rt: Runtime) -> tuple[str, ...] | None:
    """What the command line and ini choose: --flask-servers, then --flask-deploy's ids."""
    if not rt.deploy_ids:
        return rt.settings.servers
    return tuple(dict.fromkeys((*(rt.settings.servers or ()), *rt.deploy_ids)))


def marked(rt: Runtime, node: Any) -> list[str] | None:
    """The ids of ``node``'s ``flask_deploy`` marker files (None without the marker)."""
    mark = node.get_closest_marker("flask_deploy")
    if mark is None:
        return None
    return list(dict.fromkeys(
        name for path in markers.deploy_arg(mark.args, mark.kwargs)
        for name in load(rt, path, rt.rootdir, "@pytest.mark.flask_deploy")))


def start_command(rt: Runtime, argv_or_string: str | Sequence[str],
                  port_placeholder: str, env: Mapping[str, str] | None, cwd: str | Path | None,
                  ready_path: str | None, startup_timeout: float | None) -> ServerHandle:
    """:meth:`ServerFactory.command <pytest_flaskserve.plugin.provision.ServerFactory.command>`."""
    from pytest_flaskserve.deploy.launcher import for_command

    if env is not None:
        markers.check_env("flask_server_factory.command(env=...)", env)
    launcher = for_command(argv_or_string, port_placeholder, Path(cwd or rt.rootdir).resolve(),
                           "flask_server_factory.command")
    target = launcher.own_app()
    assert target is not None
    options = ServerOptions(env=tuple(sorted((env or {}).items())))
    return rt.start(launcher, target, options,
                    rt.start_config(ready_path=ready_path, startup_timeout=startup_timeout))

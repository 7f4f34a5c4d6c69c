"""The environment a server runs with, and the variables it never inherits from ours."""

from __future__ import annotations

import os

from pytest_flaskserve import coverage_support, servers
from pytest_flaskserve.appspec.dotenv import dotenv_env
from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.servers import ServerOptions

#: Variables that silently change how Flask and Werkzeug start: never inherited.
SCRUBBED_ENV = ("FLASK_RUN_FROM_CLI", "WERKZEUG_RUN_MAIN", "WERKZEUG_SERVER_FD", "FLASK_APP",
                "FLASK_DEBUG", "FLASKSERVE_APP_RUN", "FLASKSERVE_ENTRY", "FLASKSERVE_RELOADER")
SCRUBBED_PREFIXES = ("FLASK_RUN_",)


def scrubbed_prefixes() -> tuple[str, ...]:
    """Ours, and those every registered launcher names (what a server reads as its own
    configuration is scrubbed for all of them)."""
    named = (p for name in servers.names() for p in servers.get(name).scrubbed_env_prefixes)
    return tuple(dict.fromkeys((*SCRUBBED_PREFIXES, *named)))


def server_env(
    base: dict[str, str], app: ResolvedApp, options: ServerOptions, plan_env: dict[str, str],
    load_dotenv: bool,
) -> dict[str, str]:
    """The environment a server runs with: ours, scrubbed of what silently changes Flask."""
    prefixes = scrubbed_prefixes()
    env = {k: v for k, v in base.items()
           if k not in SCRUBBED_ENV and not k.startswith(prefixes)}
    env["PYTHONUNBUFFERED"] = "1"
    if load_dotenv:
        # every server gets what flask run would read, not the dev servers alone
        env.update(dotenv_env(app.cwd, base))
    else:
        env["FLASK_SKIP_DOTENV"] = "1"
    if options.debug is not None:
        env["FLASK_DEBUG"] = "1" if options.debug else "0"
    extra = dict(plan_env)
    path = extra.pop("PYTHONPATH", app.path_entry)
    inherited = base.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([path, inherited]) if inherited else path
    env.update(extra)
    env.update(coverage_support.server_env())  # measured runs measure their servers too
    env.update(dict(options.env))
    return env

"""Uvicorn: ``python -m uvicorn --host H --port P pytest_flaskserve._child.asgi_app:app``.

Uvicorn serves ASGI; Flask's ASGI page wraps the WSGI app with
``asgiref.wsgi.WsgiToAsgi`` and serves the wrapper, which is what runs here
(``pytest_flaskserve._child.asgi_app`` builds the app through the generated entry module,
so every spec form works). ``--interface asgi3`` is explicit because Uvicorn guesses the
interface otherwise; ``--lifespan off`` because ``WsgiToAsgi`` has no lifespan protocol
(Uvicorn would log that it is unsupported at every start). One process (Uvicorn forks a
supervisor and workers only for ``--workers`` > 1). SIGTERM is a graceful shutdown:
in-flight requests finish, exit 0.
"""

from __future__ import annotations

from pytest_flaskserve.deploy.listen import HostPortFlags, Rewriter
from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest

ENTRY = "pytest_flaskserve._child.asgi_app:app"


@register
class Uvicorn(Launcher):
    name = "uvicorn"
    starts_warm = True
    warm_preload = ("uvicorn",)  # what ``python -m uvicorn``'s __main__ imports
    description = ("python -m uvicorn --host HOST --port PORT MODULE:asgi_app "
                   "(asgiref's WsgiToAsgi around the app)")
    requires = "uvicorn"
    install_hint = "pip install 'pytest-flaskserve[uvicorn]'"
    default = False
    terminates_tls = True
    exit_codes = {
        1: "Uvicorn could not load the app: the import failed or the name after ':' is "
           "wrong (the traceback is in the log)",
        3: "Uvicorn's worker failed to start (Uvicorn's STARTUP_FAILURE)",
    }

    commands = ("uvicorn",)

    def deploy_rewriter(self) -> Rewriter:
        return HostPortFlags(host=("--host",), port=("--port",), unix=("--uds",),
                             default="127.0.0.1:8000")

    def unavailable(self) -> str | None:
        return super().unavailable() or asgiref_problem(self.name, self.install_hint)

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app, opts = request.app, request.options
        argv = [request.python, "-m", "uvicorn", "--host", request.host,
                "--port", str(request.port), "--interface", "asgi3", "--lifespan", "off"]
        if opts.workers and opts.workers > 1:
            argv += ["--workers", str(opts.workers)]
        if request.tls is not None:
            argv += ["--ssl-certfile", str(request.tls.cert_path),
                     "--ssl-keyfile", str(request.tls.key_path)]
        argv += [*opts.extra_args, ENTRY]
        return LaunchPlan(argv=argv, env=self.entry_env(app), notes=(
            f"{app.describe()} is served as asgiref.wsgi.WsgiToAsgi(app) from "
            f"{ENTRY.partition(':')[0]}, as Flask's ASGI page shows",))


def asgiref_problem(server: str, hint: str) -> str | None:
    """Why ``server`` cannot wrap the app (asgiref is missing), or None."""
    import importlib.util

    try:
        found = importlib.util.find_spec("asgiref") is not None
    except (ImportError, ValueError):
        found = False
    return None if found else (f"{server} needs 'asgiref', which is not installed in this "
                               f"environment ({hint})")

"""Hypercorn: ``python -m hypercorn --bind HOST:PORT asgi:pytest_flaskserve._child.asgi_app:app``.

The app wrapped with ``asgiref.wsgi.WsgiToAsgi``, as Flask's ASGI page serves it with
Hypercorn (``pytest_flaskserve._child.asgi_app`` builds the app through the generated
entry module, so every spec form works). Hypercorn can also serve a WSGI app itself, and
its docs ("Serve WSGI applications") show ``hypercorn module:wsgi_app``; that was tried
first and is not used: Hypercorn 0.18's own WSGI wrapper sends the response start only
with the first non-empty body chunk, so a response whose body iterable is empty (every
HEAD request: Werkzeug returns no body for HEAD; any empty 204) never gets its status
line, Hypercorn logs ``UnexpectedMessageError`` and the client gets no answer (the smoke
suite's ``head`` check caught it; Hypercorn issue 331 lists its other WSGI deviations).
``WsgiToAsgi`` runs every request of the process on one thread (asgiref's
``thread_sensitive`` default), as it does under Uvicorn.

The ``asgi:`` prefix names the interface instead of letting Hypercorn guess it. One
worker process under a main process with ``--workers 1``. SIGTERM is a graceful
shutdown, exit 0.
"""

from __future__ import annotations

from pytest_flaskserve.deploy.listen import BindFlags, Rewriter
from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest
from pytest_flaskserve.servers.uvicorn import ENTRY, asgiref_problem


@register
class Hypercorn(Launcher):
    name = "hypercorn"
    starts_warm = True
    warm_preload = ("hypercorn.config", "hypercorn.run")  # what its __main__ imports
    description = ("python -m hypercorn --bind HOST:PORT asgi:MODULE:asgi_app "
                   "(asyncio; asgiref's WsgiToAsgi around the app)")
    requires = "hypercorn"
    install_hint = "pip install 'pytest-flaskserve[hypercorn]'"
    default = False
    terminates_tls = True
    exit_codes = {
        0: "Hypercorn's worker exited while loading the app and the main process stopped "
           "(the worker's traceback is in the log)",
    }

    commands = ("hypercorn",)

    def deploy_rewriter(self) -> Rewriter:
        return BindFlags(long=("--bind",), short=("-b",), default="127.0.0.1:8000")

    def unavailable(self) -> str | None:
        return super().unavailable() or asgiref_problem(self.name, self.install_hint)

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app, opts = request.app, request.options
        argv = [request.python, "-m", "hypercorn", "--bind", request.address,
                "--workers", str(opts.workers or 1),
                # errors and requests on stderr/stdout, which is our log (Hypercorn's
                # default is to log neither)
                "--error-logfile", "-", "--access-logfile", "-"]
        if request.tls is not None:
            argv += ["--certfile", str(request.tls.cert_path),
                     "--keyfile", str(request.tls.key_path)]
        argv += [*opts.extra_args, f"asgi:{ENTRY}"]
        return LaunchPlan(argv=argv, env=self.entry_env(app), notes=(
            f"{app.describe()} is served as asgiref.wsgi.WsgiToAsgi(app) from "
            f"{ENTRY.partition(':')[0]}, as Flask's ASGI page shows",))

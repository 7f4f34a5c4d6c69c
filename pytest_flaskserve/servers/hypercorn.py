"""Hypercorn: ``python -m hypercorn --bind HOST:PORT wsgi:MODULE:APP``.

Hypercorn serves WSGI apps itself, and its docs ("Serve WSGI applications") show exactly
that: ``hypercorn module:wsgi_app``. That is chosen over Flask's ASGI page's
``asgiref.wsgi.WsgiToAsgi`` wrapper (which Uvicorn runs here): Hypercorn's own WSGI
wrapper runs each request in the event loop's thread pool, where ``WsgiToAsgi`` runs every
request of the process on one thread (asgiref's ``thread_sensitive`` default), and
Hypercorn's docs recommend their own WSGI middleware over another one. The ``wsgi:``
prefix names the interface instead of letting Hypercorn guess it from the callable.

Hypercorn evaluates the part after ':' in the module's namespace, so it calls a factory
with literal arguments itself, and imports a file name such as ``my-site`` with
importlib; only an argument containing ':' (which would split its ``mode:module:app``
syntax) goes through the generated entry module. One process with ``--workers 1``.
SIGTERM is a graceful shutdown, exit 0.
"""

from __future__ import annotations

from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest


@register
class Hypercorn(Launcher):
    name = "hypercorn"
    description = "python -m hypercorn --bind HOST:PORT wsgi:MODULE:APP (asyncio, its own WSGI)"
    requires = "hypercorn"
    install_hint = "pip install 'pytest-flaskserve[hypercorn]'"
    default = False
    exit_codes = {
        0: "Hypercorn's worker exited while loading the app and the main process stopped "
           "(the worker's traceback is in the log)",
        1: "Hypercorn could not load the app: the import failed or the name after ':' is "
           "wrong (the traceback is in the log)",
    }

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app, opts = request.app, request.options
        argv = [request.python, "-m", "hypercorn", "--bind", request.address,
                "--workers", str(opts.workers or 1),
                # errors on stderr, which is our log (Hypercorn's default is no error log)
                "--error-logfile", "-", "--access-logfile", "-"]
        argv += list(opts.extra_args)
        ref = app.reference(call_syntax=True, call_arguments=True, any_module_name=True)
        if ref is not None and ref.count(":") == 1:
            argv.append(f"wsgi:{ref}")
            return LaunchPlan(argv=argv)
        ref, env, notes = self.target(app, call_syntax=False, call_arguments=False,
                                      why="Hypercorn's mode:module:app syntax cannot hold "
                                          "a ':' in the arguments")
        argv.append(f"wsgi:{ref}")
        return LaunchPlan(argv=argv, env=env, notes=notes)

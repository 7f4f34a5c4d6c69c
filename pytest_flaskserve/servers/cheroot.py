"""Cheroot (CherryPy's server): ``python -m cheroot --bind HOST:PORT MODULE:APP``.

Cheroot's own command line imports ``MODULE`` and takes ``ATTR`` from it (``application``
when none is named); it cannot call a factory, so factories go through the generated entry
module. One process, a thread pool; SIGTERM ends it at once.

Its command line has no TLS options, so over TLS the same command line runs through
``pytest_flaskserve._child.cheroot_tls``, which gives the server Cheroot's builtin SSL
adapter (what CherryPy's ``server.ssl_certificate`` sets).
"""

from __future__ import annotations

from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest


@register
class Cheroot(Launcher):
    name = "cheroot"
    description = "python -m cheroot --bind HOST:PORT MODULE:APP (threaded, pure Python)"
    requires = "cheroot"
    install_hint = "pip install 'pytest-flaskserve[cheroot]'"
    starts_warm = True
    warm_preload = ("cheroot.wsgi", "cheroot.cli")
    exit_codes = {
        1: "Cheroot could not import the app, the name after ':' is wrong, or the address "
           "is in use (the traceback is in the log)",
        2: "Cheroot's command line rejected an argument (check the extra arguments)",
    }
    terminates_tls = True

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app, opts = request.app, request.options
        main = "cheroot" if request.tls is None else "pytest_flaskserve._child.cheroot_tls"
        argv = [request.python, "-m", main, "--bind", request.address]
        if opts.threads:
            argv += ["--threads", str(opts.threads), "--max-threads", str(opts.threads)]
        argv += list(opts.extra_args)
        ref, env, notes = self.target(app, call_syntax=False, call_arguments=False,
                                      why="Cheroot cannot call a factory")
        argv.append(ref)
        if request.tls is not None:
            env = {**env, "FLASKSERVE_TLS_CERT": str(request.tls.cert_path),
                   "FLASKSERVE_TLS_KEY": str(request.tls.key_path)}
            notes += ("python -m cheroot has no TLS options: the same command line runs "
                      "through pytest_flaskserve._child.cheroot_tls (Cheroot's builtin SSL "
                      "adapter)",)
        return LaunchPlan(argv=argv, env=env, notes=notes)

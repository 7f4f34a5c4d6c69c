"""mod_wsgi: ``mod_wsgi-express start-server`` (Apache httpd with mod_wsgi, daemon mode).

``mod_wsgi-express`` (PyPI ``mod-wsgi``, compiled against Apache's ``apxs``: Debian's
``apache2-dev``; the server itself is ``apache2-bin``) writes an Apache configuration into
its server root and execs ``httpd -DFOREGROUND``: the process we start becomes the Apache
parent, which forks the mod_wsgi daemon process that runs the app (``(wsgi:HOST:PORT:UID)``)
and the Apache children that accept connections; all stay in our process group.

The app is named as a module (``--application-type module``, ``--callable-object``), as
Flask's mod_wsgi page does with a ``wsgi.py``; a factory goes through the generated entry
module. The server root is ``mod_wsgi-PORT`` beside this start's scratch directory in the
session's temp dir (short, because it also holds the sockets). mod_wsgi binds a Unix
socket per daemon process under ``--socket-prefix`` (``wsgi.PID.uUID.ID.sock``) and does
not remove it when it stops, and a socket path has at most 107 bytes: when the server
root is too long for it (a deeply nested temp dir) the sockets go to the system temp dir
instead, where each start leaves one socket file behind (a known limit).
``--locale C.UTF-8``: the daemon's default, ``en_US.UTF-8``, is often not installed.

Root. Apache refuses to serve as root, and ``--user``/``--group`` (``www-data``) would
need that user to read the Python installation, the virtualenv, the app and the server
root, which fails for a Python under ``/root`` (mode 0700) or an app in pytest's
``/tmp/pytest-of-root`` (0700). So as root the server runs in a new user namespace
(``unshare --user``): there its uid is the overflow uid (``nobody``), so Apache does not
take itself for root and switches no user, while the kernel still checks file access
against the real owner, root, so everything root can read it reads. Signals, process
groups and sockets are unchanged. The limit: a kernel or container (Docker's default
seccomp profile) that forbids user namespaces; run as a normal user there.

Stopping: SIGTERM to the group is Apache's immediate stop; the parent reaps its children
and exits 0. (SIGWINCH, Apache's graceful stop, waits for the children's idle timeouts.)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pytest_flaskserve import coverage_support
from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest

#: the longest ``--socket-prefix`` whose daemon sockets still fit a Unix socket path:
#: ``PREFIX/wsgi.PID.uUID.ID.sock`` (mod_wsgi 6) in 107 bytes
_SOCKET_PREFIX_MAX = 107 - len("/wsgi.4194304.u4294967295.99.sock")


def find_express(python: str) -> list[str]:
    """``mod_wsgi-express`` of ``python``'s environment, then one on PATH, then the same
    command through ``python -m``."""
    local = Path(python).parent / "mod_wsgi-express"
    if local.is_file() and os.access(local, os.X_OK):
        return [str(local)]
    found = shutil.which("mod_wsgi-express")
    return [found] if found else [python, "-m", "mod_wsgi.express.cli"]


def httpd_problem() -> str | None:
    """Why the Apache httpd mod_wsgi was built for cannot run, or None (mod_wsgi-express
    would say only ``exec: httpd: not found`` at start)."""
    try:
        from mod_wsgi.express import apxs_config  # a module of constants, from the build
    except ImportError:
        return "mod_wsgi is not installed in this environment"
    httpd = str(getattr(apxs_config, "HTTPD", ""))
    if not os.path.isabs(httpd) or not os.access(httpd, os.X_OK):
        return (f"mod_wsgi was built for an Apache httpd that is not installed ({httpd or '?'}): "
                "apt-get install apache2-bin (Debian) or your system's httpd package")
    return None


@register
class ModWsgi(Launcher):
    name = "mod_wsgi"
    cold_reason = "Apache httpd runs the app, not a Python command"
    description = "mod_wsgi-express start-server --application-type module MODULE (Apache httpd)"
    requires = "mod_wsgi"
    install_hint = ("apt-get install apache2-dev apache2-bin, then "
                    "pip install --no-cache-dir 'pytest-flaskserve[mod_wsgi]'")
    default = False
    exit_codes = {
        1: "Apache or mod_wsgi-express could not start: a bad option, the address in use, "
           "or (as root) user namespaces refused by the kernel or the container; the "
           "message is in the log",
    }

    def tls_unsupported(self) -> str | None:
        # --https-port serves HTTPS on a second port beside the plain --port, which would
        # need a second free port and leave a plain-HTTP listener the test did not ask for
        return ("mod_wsgi-express serves HTTPS only on a second port (--https-port) beside "
                "its plain HTTP one")

    def load_failure(self, log: str) -> str | None:
        # WSGI0110: the daemon's preload of the app failed; Apache keeps serving 500s
        if "Unable to execute Python script file" in log:
            return ("mod_wsgi could not load the app (Apache keeps running and answers "
                    "500; the traceback is in the log)")
        return None

    def unavailable(self) -> str | None:
        problem = super().unavailable()
        if problem:
            return problem
        problem = httpd_problem()
        if problem:
            return f"{self.name}: {problem}"
        if os.geteuid() == 0 and shutil.which("unshare") is None:
            return (f"{self.name} runs as root only inside a user namespace, and 'unshare' "
                    "(util-linux) is not installed: install it, or run as a normal user")
        return None

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app, opts = request.app, request.options
        # only rendered (the -v header) when there is no scratch dir: say what goes there
        root = (str(request.scratch_dir.parent / f"mod_wsgi-{request.port}")
                if request.scratch_dir else "{server_root}")

        # A server root too long for a Unix socket path (a nested pytest's temp dir) gets
        # a short directory of its own, removed after the stop: Apache leaves its daemon
        # sockets behind when it stops.
        # (Only a real start can be too long: the rendered "{server_root}" is short.)
        temp_dirs: tuple[str, ...] = ()
        if len(root) <= _SOCKET_PREFIX_MAX:
            sockets = root
        else:
            sockets = tempfile.mkdtemp(prefix="flaskserve-mod_wsgi-")
            temp_dirs = (sockets,)
        argv = ["unshare", "--user"] if os.geteuid() == 0 else []
        argv += [*find_express(request.python), "start-server",
                 "--host", request.host, "--port", str(request.port),
                 "--server-root", root, "--socket-prefix", sockets,
                 "--log-to-terminal", "--locale", "C.UTF-8",
                 "--working-directory", app.cwd, "--python-path", app.path_entry,
                 "--processes", str(opts.workers or 1)]
        if opts.threads:
            argv += ["--threads", str(opts.threads)]
        if opts.reload:
            argv.append("--reload-on-changes")
        argv += list(opts.extra_args)
        ref, env, notes = self.target(app, call_syntax=False, call_arguments=False,
                                      why="mod_wsgi imports a module and takes a callable "
                                          "from it; it cannot call a factory")
        if coverage_support.measuring():
            notes += ("coverage: lines the app runs inside mod_wsgi are not measured (its "
                      "requests run on threads mod_wsgi creates in C, which coverage does "
                      "not trace; installing the tracer there hangs the request)",)
        module, _, attr = ref.partition(":")
        argv += ["--application-type", "module", "--callable-object", attr, module]
        if os.geteuid() == 0:
            notes += ("running as root: Apache runs in a user namespace (unshare --user), "
                      "where it is not root but reads what root reads",)
        return LaunchPlan(argv=argv, env=env, notes=notes, temp_dirs=temp_dirs)

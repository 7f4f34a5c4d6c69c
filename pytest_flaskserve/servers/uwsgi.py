"""uWSGI: the ``uwsgi`` binary (the ``uwsgi`` or ``pyuwsgi`` distribution).

``--need-app`` makes a broken app exit (22) instead of answering 500, ``--die-on-term``
makes SIGTERM a stop instead of a reload, ``--http-socket`` lets the worker speak HTTP
itself (no router process). uWSGI cannot call a factory, so factories go through the
generated entry module.

Stopping. On SIGINT (and SIGTERM with ``--die-on-term``) the master runs
``kill_them_all`` (core/uwsgi.c): SIGINT to every worker, then back to its loop, which
exits once ``uwsgi_master_check_death`` (core/master_checks.c) sees no worker left. But
the loop only looks again when ``event_queue_wait(..., check_interval=1 s)``
(core/master.c) returns, and the master leaves SIGCHLD at its default (ignored), so a
worker's death does not wake it: every stop took ~1020 ms. ``--hook-master-start
"unix_signal:17 worker_wakeup"`` installs uWSGI's own no-op ``worker_wakeup`` (core/
master_utils.c) as the master's SIGCHLD handler, without SA_RESTART (``uwsgi_unix_signal``
in core/utils.c), so the worker's exit interrupts the wait and the master reaps it and
exits 0 at once.

The stop signal is SIGINT, not SIGTERM: we signal the whole process group, so each
worker also gets our signal directly. Workers run ``end_me`` -> ``exit(30)`` for both
SIGINT and SIGTERM (core/uwsgi.c), without SA_NODEFER; our SIGTERM plus the master's
SIGINT are two different signals, so the second one re-enters ``end_me`` while the first
one's ``exit()`` is still running the Python teardown (``uwsgi_python_atexit``): Python
``atexit`` handlers were skipped in about half of the stops, and one stop in a
benchmark hung until killed. SIGINT twice is the same signal, blocked while its handler
runs, so each worker exits exactly once, through its full teardown.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import Launcher, LaunchPlan, LaunchRequest
from pytest_flaskserve.servers.reloading import ReloadProfile

if TYPE_CHECKING:
    from pytest_flaskserve.deploy.listen import Rewriter


def find_uwsgi() -> str | None:
    """The uwsgi binary of this environment first, then one on PATH."""
    local = Path(sys.executable).parent / "uwsgi"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("uwsgi")


@functools.lru_cache(maxsize=8)
def exports_core_symbols(binary: str) -> bool:
    """Whether ``binary`` is a native uWSGI executable (ELF), whose core functions hooks can
    name: uWSGI links with ``-rdynamic`` so plugins can resolve them. The ``pyuwsgi``
    distribution's ``uwsgi`` is a Python script over an extension module loaded privately,
    where ``dlsym`` cannot find them and a failing master-start hook would stop the server.
    """
    try:
        with open(binary, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


@functools.lru_cache(maxsize=8)
def has_tls(binary: str) -> bool:
    """Whether ``binary`` was built with OpenSSL: only then does it know ``--https-socket``."""
    try:
        shown = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10,
                               check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "--https-socket" in shown


@register
class UWSGI(Launcher):
    name = "uwsgi"
    cold_reason = "uWSGI is a compiled program, not a Python command"
    description = ("uwsgi --http-socket HOST:PORT --add-header 'Connection: close' --master "
                   "--need-app --module MODULE:APP")
    install_hint = "pip install 'pytest-flaskserve[uwsgi]' (compiles) or pip install pyuwsgi"
    exit_codes = {
        1: "uWSGI could not start (bad option, the address is in use, or Python failed)",
        22: "no app could be loaded (uWSGI's --need-app): import error or wrong callable",
    }
    #: one signal for master and workers alike (see the module docstring)
    stop_signal = signal.SIGINT
    #: behind nginx it speaks its own protocol to ``uwsgi_pass`` (``--socket``)
    proxy_protocol = "uwsgi"
    #: ``reload=True`` renders ``--py-autoreload 1`` (it re-executes the whole server)
    supports_reload = True
    commands = ("uwsgi", "pyuwsgi")

    def load_failure(self, log: str) -> str | None:
        # without need-app (a user's uwsgi.ini may lack it) uWSGI keeps running with no
        # app and answers every request 500; our own command passes --need-app
        if "no app loaded. going in full dynamic mode" in log or \
                "no python application found" in log:
            return ("uWSGI loaded no app (it keeps running and answers 500 without "
                    "need-app): check module=/wsgi-file= and the traceback in the log")
        return None

    def deploy_rewriter(self) -> Rewriter:
        from pytest_flaskserve.deploy import uwsgi

        return uwsgi.rewrite
    reload_profile = ReloadProfile(
        "uwsgi",
        re.compile(r"\[uwsgi-python-reloader\] module/file (?P<path>.+) has been modified"),
        re.compile(r"binary reloading uWSGI|spawned uWSGI worker"),
        re.compile(r"Python auto-reloader enabled"),
        "uwsgi was started without --py-autoreload", armed_before_ready=False,
    )
    missing_attribute_wordings = ((re.compile(r'unable to find "(\w+)" callable'), 1),)
    port_in_use_wordings = (re.compile(r"probably another instance of uWSGI"),)
    listening_wordings = ("bound to TCP address",)
    daemon_hint = "uWSGI's --daemonize"

    def unavailable(self) -> str | None:
        if find_uwsgi() is None:
            return f"uwsgi is not installed in this environment ({self.install_hint})"
        return None

    #: ``--https-socket ADDR,CERT,KEY``: the same worker-side socket, speaking TLS
    terminates_tls = True

    def tls_unsupported(self) -> str | None:
        binary = find_uwsgi()
        if binary is not None and not has_tls(binary):
            return (f"this uWSGI ({binary}) was built without OpenSSL, so it has no "
                    "--https-socket; install libssl-dev and pip install --no-binary uwsgi "
                    "--force-reinstall uwsgi")
        return None

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        app, opts = request.app, request.options
        binary = find_uwsgi()
        assert binary is not None
        if request.protocol == "uwsgi":
            # behind nginx's uwsgi_pass: the native protocol, as Flask's uWSGI page deploys it
            argv = [binary, "--socket", request.address]
        elif request.tls is not None:
            argv = [binary, "--https-socket",
                    f"{request.address},{request.tls.cert_path},{request.tls.key_path}",
                    "--add-header", "Connection: close"]
        else:
            argv = [
                binary,
                "--http-socket", request.address,
                # --http-socket serves one request per connection and closes it without
                # saying so; a keep-alive client (requests' pool, a browser, a followed
                # redirect) then writes its next request into a closed socket. Saying it
                # makes the close honest. (--http11-socket keeps connections open, but then
                # frames a streamed response without a length by nothing at all.)
                "--add-header", "Connection: close",
            ]
        argv += [
            "--master", "--processes", str(opts.workers or 1),
            "--need-app", "--die-on-term", "--no-orphans",
            "--pythonpath", app.path_entry,
        ]
        if exports_core_symbols(binary):
            # wake the master when a worker exits, so a stop takes ms, not 1 s
            argv += ["--hook-master-start", f"unix_signal:{int(signal.SIGCHLD)} worker_wakeup"]
        if sys.prefix != sys.base_prefix:
            argv += ["--home", sys.prefix]
        if opts.threads:
            argv += ["--enable-threads", "--threads", str(opts.threads)]
        if opts.reload:
            argv += ["--py-autoreload", "1"]
        argv += list(opts.extra_args)
        ref, env, notes = self.target(app, call_syntax=False, call_arguments=False,
                                      why="uWSGI cannot call a factory")
        argv += ["--module", ref]
        return LaunchPlan(argv=argv, env=env, notes=notes)

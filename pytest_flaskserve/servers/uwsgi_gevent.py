"""uWSGI's gevent loop engine: ``uwsgi --gevent 100 --gevent-early-monkey-patch ...``.

The same server and command line as ``uwsgi`` (so an opt-in variant, like the Gunicorn
worker classes), with uWSGI's gevent plugin running 100 greenlets per worker and
``gevent.monkey.patch_all()`` called before the app is loaded, as gevent wants it.
It needs a uWSGI built with the gevent plugin (pip's build embeds it when gevent's
headers are found; Debian's ``uwsgi-core`` has it as the separate ``uwsgi-plugin-gevent-
python3``) and gevent in the test run's environment.
"""

from __future__ import annotations

import dataclasses
import functools

from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import LaunchPlan, LaunchRequest
from pytest_flaskserve.servers.uwsgi import UWSGI, find_uwsgi

GREENLETS = 100


@functools.lru_cache(maxsize=8)
def has_gevent_plugin(binary: str) -> bool:
    """Whether ``binary`` has uWSGI's gevent plugin built in: each embedded plugin is a
    ``NAME_plugin`` symbol of the executable (``uwsgi --plugins-list`` reads the same
    table, but a launcher runs no programs)."""
    try:
        with open(binary, "rb") as f:
            return b"gevent_plugin" in f.read()
    except OSError:
        return False


@register
class UWSGIGevent(UWSGI):
    name = "uwsgi-gevent"
    description = "uwsgi --gevent 100 --gevent-early-monkey-patch ... (greenlets in uWSGI)"
    install_hint = "pip install 'pytest-flaskserve[uwsgi,gevent]'"
    default = False
    supports_reload = False

    def unavailable(self) -> str | None:
        problem = super().unavailable()
        if problem:
            return problem
        binary = find_uwsgi()
        assert binary is not None
        if not has_gevent_plugin(binary):
            return (f"{binary} has no gevent plugin (reinstall uWSGI with gevent installed: "
                    "pip install gevent && pip install --no-cache-dir --force-reinstall uwsgi)")
        import importlib.util

        if importlib.util.find_spec("gevent") is None:
            return f"uwsgi-gevent needs 'gevent' ({self.install_hint})"
        return None

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        # greenlets, not threads: uWSGI refuses --threads with an async loop engine
        plan = super().plan(dataclasses.replace(
            request, options=dataclasses.replace(request.options, threads=None, reload=None)))
        argv = list(plan.argv)
        at = argv.index("--module")
        argv[at:at] = ["--gevent", str(GREENLETS), "--gevent-early-monkey-patch"]
        return dataclasses.replace(plan, argv=argv)

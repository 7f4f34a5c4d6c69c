"""Gunicorn with other worker classes: ``gunicorn-gthread`` and ``gunicorn-gevent``.

The same server and command line as ``gunicorn``, so they are opt-in variants (not in the
default set): choose them with ``--flask-servers=gunicorn-gevent`` or
``@pytest.mark.flask_servers("gunicorn-gthread")``. They catch what only shows under
another concurrency model: thread-local state shared across requests (gthread), blocking
calls and monkey-patching surprises (gevent).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import signal
from typing import ClassVar

from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.base import LaunchPlan, LaunchRequest
from pytest_flaskserve.servers.gunicorn import ARBITER_MODULES, Gunicorn


class _GunicornVariant(Gunicorn):
    """Gunicorn rendered with a fixed worker class (and a thread count where it matters)."""

    default = False
    supports_reload = True
    worker_class: ClassVar[str]
    #: modules the worker class needs besides Gunicorn itself
    worker_requires: ClassVar[tuple[str, ...]] = ()
    default_threads: ClassVar[int | None] = None

    def unavailable(self) -> str | None:
        for module in ("gunicorn", *self.worker_requires):
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return (f"{self.name} needs {module!r}, which is not installed in this "
                        f"environment ({self.install_hint})")
        return None

    def plan(self, request: LaunchRequest) -> LaunchPlan:
        opts = request.options
        notes: tuple[str, ...] = ()
        if opts.worker_class and opts.worker_class != self.worker_class:
            # The server's name is its worker class; a test-wide option aimed at plain
            # 'gunicorn' must not turn this variant into a copy of another one.
            notes = (f"worker_class={opts.worker_class!r} ignored: {self.name} always uses "
                     f"{self.worker_class!r}",)
        opts = dataclasses.replace(opts, worker_class=self.worker_class,
                                   threads=opts.threads or self.default_threads)
        plan = super().plan(dataclasses.replace(request, options=opts))
        return dataclasses.replace(plan, notes=plan.notes + notes)


@register
class GunicornGthread(_GunicornVariant):
    name = "gunicorn-gthread"
    description = "python -m gunicorn --worker-class gthread --threads 4 MODULE:APP"
    install_hint = "pip install 'pytest-flaskserve[gunicorn]'"
    worker_class = "gthread"
    default_threads = 4
    warm_preload = (*ARBITER_MODULES, "gunicorn.workers.gthread")


@register
class GunicornGevent(_GunicornVariant):
    name = "gunicorn-gevent"
    description = "python -m gunicorn --worker-class gevent MODULE:APP (greenlets, monkey-patched)"
    install_hint = "pip install 'pytest-flaskserve[gevent]'"
    worker_class = "gevent"
    worker_requires = ("gevent",)
    starts_warm = False
    cold_reason = ("its workers monkey-patch the standard library, which a warm start "
                   "has imported already")
    #: The gevent worker notices SIGTERM only when its ``gevent.sleep(1.0)`` notify loop
    #: comes round (gunicorn/workers/ggevent.py): ~1.1 s a stop. On SIGQUIT it exits
    #: from a greenlet at once (``sys.exit(0)``, so atexit and worker_exit still run):
    #: ~0.2 s, exit 0. The arbiter treats SIGQUIT as a quick shutdown, which a test
    #: server being stopped can have.
    stop_signal = signal.SIGQUIT

"""Measure the app inside the servers when the test run itself is measured by coverage.

The lines a route runs inside a server process are invisible to the coverage of the
pytest process. When coverage.py measures pytest (``pytest --cov``, ``coverage run -m
pytest``), :func:`server_env` returns the environment that makes every Python process of
a server measure itself with the run's settings and save its data next to the run's own
data file, where pytest-cov's combine step (or ``coverage combine``) folds it in:

- ``COVERAGE_PROCESS_CONFIG``: the run's configuration, serialized. The ``.pth`` file
  that coverage 7.10+ installs calls ``coverage.process_startup()`` with it when any
  interpreter of the environment starts, before the server imports anything.
- ``parallel``: one data file per process (``.coverage.<host>.<pid>.<random>``). A forked
  worker (Gunicorn, uWSGI, Granian) keeps the tracer it inherited, and coverage's data
  object notices the new pid and writes a file of its own: no fork patch is needed.
- ``sigterm``: save on SIGTERM, the signal the servers are stopped with. The development
  server (flask run, app.run()), Waitress and Cheroot have no SIGTERM handler of their
  own and would otherwise die without saving.
- uWSGI needs nothing more: its launcher stops it with SIGINT, on which each worker runs
  uWSGI's Python teardown, and so ``atexit``, where coverage saves. (uWSGI skips that
  teardown in a worker still busy with a request.)
- ``patch = _exit``: Granian's workers are multiprocessing processes, which end with
  ``os._exit`` and so skip ``atexit``; the patch saves first.
- ``plugins``: :mod:`pytest_flaskserve._coverage_boot`, loaded by coverage in every
  measured process, makes Werkzeug's reloader parent wait for its child (which it would
  otherwise SIGKILL on SIGTERM before the child saved).

Nothing here imports coverage unless the pytest process already did.
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Any

#: The variable coverage's ``.pth`` hook reads (coverage 7.10+).
CONFIG_ENV = "COVERAGE_PROCESS_CONFIG"
#: Extra ``[run] patch`` values a server's processes need (see the module docstring).
SERVER_PATCHES = ("_exit",)
#: A coverage plugin module, so coverage itself runs it in each measured server process.
BOOT_PLUGIN = "pytest_flaskserve._coverage_boot"
MIN_VERSION = (7, 10)


def _active() -> Any | None:
    """The coverage.py instance measuring this process, or None.

    Looked up only when coverage is already imported: a run without coverage must not
    pay for importing it, and cannot be measuring anything.
    """
    module = sys.modules.get("coverage")
    if module is None:
        return None
    current = getattr(getattr(module, "Coverage", None), "current", None)
    return current() if callable(current) else None


def _version() -> tuple[int, ...]:
    module = sys.modules.get("coverage")
    info = getattr(module, "version_info", (0,))
    return tuple(p for p in info[:2] if isinstance(p, int))


def unsupported() -> str | None:
    """Why the servers of this run cannot be measured although coverage is active, or None
    (also None when coverage is not active: there is nothing to explain then)."""
    if _active() is None:
        return None
    if _version() < MIN_VERSION:
        found = ".".join(map(str, _version()))
        return (f"coverage {found} cannot measure server processes: pip install "
                "'coverage>=7.10' to include the lines the servers run")
    return None


def measuring() -> bool:
    """True when coverage measures this run and can measure its servers too."""
    return _active() is not None and unsupported() is None


def _data_file(cov: Any) -> str:
    """The absolute base name of the run's data file, fixed where the run started it.

    ``config.data_file`` may be relative, and a test may have changed directory since;
    the data object knows the absolute name it was created with.
    """
    data = getattr(cov, "_data", None)
    base = getattr(data, "base_filename", None)
    if callable(base):
        return os.path.abspath(str(base()))
    return os.path.abspath(str(cov.config.data_file))


def server_config(cov: Any) -> str:
    """``cov``'s configuration, adjusted for server processes and serialized."""
    config = copy.copy(cov.config)
    config.data_file = _data_file(cov)
    config.parallel = True
    config.sigterm = True
    # "subprocess" would only rewrite COVERAGE_PROCESS_CONFIG in the server, whose
    # processes all inherit ours already.
    config.patch = sorted((set(config.patch or ()) - {"subprocess"}) | set(SERVER_PATCHES))
    config.plugins = [*(p for p in config.plugins or () if p != BOOT_PLUGIN), BOOT_PLUGIN]
    return str(config.serialize())


def server_env() -> dict[str, str]:
    """Environment to add to a server's when coverage measures this run; else empty.

    Apply it after the inherited environment: it replaces a ``COVERAGE_PROCESS_CONFIG``
    that coverage's own ``patch = subprocess`` put there, which lacks ``sigterm``.
    """
    cov = _active()
    if cov is None or not measuring():
        return {}
    return {CONFIG_ENV: server_config(cov)}

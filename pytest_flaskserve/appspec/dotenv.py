"""Flask's ``.flaskenv`` / ``.env`` files, read the way ``flask run`` reads them, for every
server alike (``--flask-load-dotenv``).

Flask's CLI (``flask.cli.load_dotenv``) finds each file by walking up from the working
directory, reads ``.flaskenv`` then ``.env`` (so ``.env`` wins), and sets only variables
the environment does not already have. ``app.run()`` does the same; Gunicorn, Waitress,
uWSGI, Granian and Cheroot read neither file. With the option on, the plugin reads the
files itself and gives the result to every server and to the child that resolves the app
(and takes ``FLASK_APP`` from them when nothing else names the app), so a variable from
``.env`` is seen under every server: deployment parity, not a dev-server-only value.
Needs ``python-dotenv``, as Flask does; without it there is nothing to read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pytest_flaskserve.errors import UsageError, hide_own_errors

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

FILES = (".flaskenv", ".env")


def dotenv_env(cwd: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the files add for a process started in ``cwd``: those the
    environment (``os.environ`` by default) does not already set."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in _read(os.path.realpath(cwd)).items() if k not in environ}


@lru_cache(maxsize=32)
def _read(cwd: str) -> dict[str, str]:
    try:
        import dotenv  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return {}
    data: dict[str, str] = {}
    for name in FILES:
        path = _find(name, cwd)
        if path is None:
            continue
        try:
            values = dotenv.dotenv_values(path, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path} cannot be read ({exc}); fix the file or run without "
                             "--flask-load-dotenv") from None
        data.update({k: v for k, v in values.items() if v is not None})
    return data


def _find(name: str, start: str) -> str | None:
    """``dotenv.find_dotenv(name, usecwd=True)`` from ``start`` instead of the cwd."""
    here = start
    while True:
        candidate = os.path.join(here, name)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent

"""The app, wrapped so that coverage sees requests run on threads Python did not start.

Granian calls the WSGI app from its own (Rust) threads. ``threading.Thread`` installs
the trace function set with ``threading.settrace`` (coverage sets one) in each new thread;
a thread created outside ``threading`` never gets it, so coverage would record nothing
that a request runs there. This wrapper installs that trace function in the calling thread
on its first request, which is what ``threading`` does for its own threads. The app itself
is built by the generated entry module (``FLASKSERVE_ENTRY``), exactly once.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from pytest_flaskserve._entry import app as _app


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    hook = threading.gettrace()
    if hook is not None and sys.gettrace() is None:
        sys.settrace(hook)
    return _app(environ, start_response)  # type: ignore[no-any-return]


application = app

"""Child process of ``startstop.py``: time pytest-flask's ``LiveServer`` on the hello app.

pytest-flask's ``live_server`` forks the test process itself (``multiprocessing`` with the
interpreter's default start method) and runs ``app.run()`` in the fork, so measuring it
needs Flask and the app imported in *this* process; the benchmark runs it here, in a
child interpreter, so that its own process never imports Flask or forks.

    python benchmarks/_incumbent.py --samples 2 --app-dir example_apps [--deps DIR]

Prints one JSON line: ``{"start": [...], "ready": [...], "stop": [...]}`` in seconds, or
``{"missing": "..."}`` when pytest-flask cannot be imported.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_ok(port: int, deadline: float) -> bool:
    """Tight HTTP poll: a fresh connection every millisecond until a 200 or the deadline."""
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        try:
            conn.request("GET", "/", headers={"Connection": "close"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.001)
    return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--app-dir", required=True)
    parser.add_argument("--deps", default=None, help="extra sys.path entry holding pytest_flask")
    args = parser.parse_args()
    if args.deps:
        sys.path.insert(0, args.deps)
    sys.path.insert(0, args.app_dir)
    try:
        from pytest_flask.live_server import LiveServer
    except ImportError as exc:
        print(json.dumps({"missing": str(exc)}))
        return 0
    from hello import app  # the same hello app the other rows serve

    out: dict[str, list[float]] = {"start": [], "ready": [], "stop": []}
    for _ in range(args.samples):
        port = _free_port()
        server = LiveServer(app, "127.0.0.1", port, wait=10, clean_stop=False)
        t0 = time.perf_counter()
        server.start()  # returns once a TCP connect succeeds
        t_start = time.perf_counter() - t0
        ok = _http_ok(port, time.monotonic() + 10)
        t_ready = time.perf_counter() - t0
        t1 = time.perf_counter()
        server.stop()  # SIGTERM, as the fixture does
        process = server._process
        if process is not None:
            process.join(10)
        t_stop = time.perf_counter() - t1
        if not ok:
            print(json.dumps({"missing": "pytest-flask's server never answered HTTP 200"}))
            return 1
        out["start"].append(t_start)
        out["ready"].append(t_ready)
        out["stop"].append(t_stop)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

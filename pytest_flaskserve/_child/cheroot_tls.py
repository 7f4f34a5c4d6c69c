"""Cheroot's own command line, serving HTTPS: ``python -m pytest_flaskserve._child.cheroot_tls
--bind HOST:PORT MODULE:APP`` with ``FLASKSERVE_TLS_CERT`` and ``FLASKSERVE_TLS_KEY``.

``python -m cheroot`` has no TLS options; TLS in Cheroot is its ``ssl_adapter`` attribute
(what CherryPy sets from ``server.ssl_certificate``). This runs ``cheroot.cli.main``
unchanged, with the server it builds given Cheroot's builtin (``ssl`` module) adapter.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from cheroot import cli
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    cert, key = os.environ["FLASKSERVE_TLS_CERT"], os.environ["FLASKSERVE_TLS_KEY"]
    for kind in (cli.Application, cli.GatewayYo):
        build = kind.server

        def server(self: object, parsed_args: object, _build: object = build) -> object:
            made = _build(self, parsed_args)  # type: ignore[operator]
            made.ssl_adapter = BuiltinSSLAdapter(cert, key)
            return made

        kind.server = server  # type: ignore[method-assign]
    sys.argv[0] = "cheroot"
    cli.main()


if __name__ == "__main__":
    main()

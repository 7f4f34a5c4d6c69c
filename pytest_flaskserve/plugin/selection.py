"""Which servers a test runs on, and why one of them is left out.

One home for the rule that parametrized tests, ``flask_parity`` and the smoke run share:
a ``flask_servers`` marker narrows ``--flask-servers`` (or the default order); servers it
or the command line names are *explicit* and run even where the app has no entry point for
them; a missing server is skipped with its install command. No pytest here: callers pass
the marker's server names.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_flaskserve import servers
from pytest_flaskserve.appspec.grammar import ResolvedApp


def choose(marked: Sequence[str] | None, cli: Sequence[str] | None,
           proxy: str | None = None) -> tuple[list[str], set[str]]:
    """The servers to run, in order, and the set of those that were chosen explicitly.

    ``marked`` is the ``flask_servers`` marker's list (None without a marker), ``cli`` is
    ``--flask-servers`` (None or empty when not given). Every name is checked: an unknown one is a
    :class:`~pytest_flaskserve.errors.UsageError`. ``proxy`` (``--flask-proxy``) adds each
    chosen server's variant behind that proxy right after it (``gunicorn+nginx`` after
    ``gunicorn``), explicit when the server is.
    """
    if proxy is None:
        return _choose(marked, cli)
    if marked is not None:
        # the marker narrows what the command line runs, proxied variants included
        return _choose(marked, with_proxy(cli, proxy) if cli else cli)
    chosen, explicit = _choose(None, cli)
    return with_proxy(chosen, proxy), set(with_proxy(sorted(explicit), proxy))


def with_proxy(names: Sequence[str], proxy: str) -> list[str]:
    """``names`` with each one's variant behind ``proxy`` right after it, where it has one."""
    out: list[str] = []
    for name in names:
        behind = servers.proxied_name(name, proxy)
        out += [n for n in (name, behind) if n is not None and n not in out]
    return out


def _choose(marked: Sequence[str] | None, cli: Sequence[str] | None) -> tuple[list[str], set[str]]:
    if marked is not None:
        chosen = list(marked)
        for name in chosen:
            servers.get(name)
        return ([n for n in chosen if n in cli] if cli else chosen), set(chosen)
    if cli:
        return list(cli), set(cli)
    return servers.default_names(), set()


def left_out_reason(name: str, app: ResolvedApp | None, explicit: set[str]) -> str | None:
    """Why ``name`` cannot run this app (not installed, or no entry point for it), or None.

    A server chosen explicitly is only left out when it is not installed: its failure to
    serve the app is then a startup error with a diagnosis, not a silent skip.
    """
    launcher = servers.get(name)
    why = launcher.unavailable()
    if why is None and app is not None and name not in explicit:
        unsupported = launcher.unsupported(app)
        if unsupported:
            why = f"{name}: {unsupported}"
    return why

"""Marker arguments, checked by calling functions with the markers' real signatures.

A wrong argument gives the same message Python gives for a wrong call, prefixed with the
marker's name, instead of being silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_flaskserve.appspec import config as app_config
from pytest_flaskserve.errors import UsageError, hide_own_errors
from pytest_flaskserve.plugin.options import MARKERS, MAX_COUNT, SCOPES

if TYPE_CHECKING:
    import pytest

    from pytest_flaskserve.plugin.session import Runtime

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

def _servers(*names: str) -> tuple[str, ...]:
    return names


def _app(spec: str) -> str:
    return spec


def _scope(scope: str) -> str:
    return scope


def _options(
    *,
    workers: int | None = None,
    threads: int | None = None,
    worker_class: str | None = None,
    debug: bool | None = None,
    reload: bool | None = None,
    extra_args: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    env: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    instance_path: bool | str | None = None,
    tls: bool | None = None,
) -> dict[str, Any]:
    return {
        "workers": workers, "threads": threads, "worker_class": worker_class,
        "debug": debug, "reload": reload, "extra_args": extra_args, "env": env,
        "config": config, "instance_path": instance_path, "tls": tls,
    }


def _call(name: str, func: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    try:
        return func(*args, **kwargs)
    except TypeError as exc:
        raise UsageError(f"@pytest.mark.{name}: {str(exc).split(') ', 1)[-1]}; "
                         f"signature: {MARKERS[name]}") from None


def servers_arg(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    names = _call("flask_servers", _servers, args, kwargs)
    if not names:
        raise UsageError("@pytest.mark.flask_servers() names no server; e.g. "
                         "@pytest.mark.flask_servers('gunicorn', 'waitress')")
    flat: list[str] = []
    for n in names:
        if isinstance(n, (list, tuple)):
            flat.extend(n)
        elif isinstance(n, str):
            flat.extend(s.strip() for s in n.split(",") if s.strip())
        else:
            raise UsageError(f"@pytest.mark.flask_servers: {n!r} is not a server name")
    for n in flat:
        if not isinstance(n, str):
            raise UsageError(f"@pytest.mark.flask_servers: {n!r} is not a server name")
    if not flat:
        raise UsageError("@pytest.mark.flask_servers() names no server; e.g. "
                         "@pytest.mark.flask_servers('gunicorn', 'waitress')")
    return tuple(dict.fromkeys(flat))  # a name given twice runs once


def _deploy(*paths: str) -> tuple[str, ...]:
    return paths


def deploy_arg(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    paths = _call("flask_deploy", _deploy, args, kwargs)
    if not paths or not all(isinstance(p, str) and p.strip() for p in paths):
        raise UsageError(f"@pytest.mark.flask_deploy{paths!r}: name deployment files, e.g. "
                         "@pytest.mark.flask_deploy('Procfile')")
    return tuple(dict.fromkeys(paths))


def app_arg(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    spec = _call("flask_app", _app, args, kwargs)
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"@pytest.mark.flask_app: {spec!r} is not an app spec; "
                         "e.g. @pytest.mark.flask_app('hello:app')")
    return spec


def scope_arg(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    scope = _call("flask_scope", _scope, args, kwargs)
    if scope not in SCOPES:
        raise UsageError(f"@pytest.mark.flask_scope({scope!r}): use one of {', '.join(SCOPES)}")
    return str(scope)


def options_arg(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    opts: dict[str, Any] = _call("flask_options", _options, args, kwargs)
    for key in ("workers", "threads"):
        check_count(f"@pytest.mark.flask_options({key}={opts[key]!r})", opts[key])
    for key in ("debug", "reload", "tls"):
        v = opts[key]
        if v is not None and not isinstance(v, bool):
            raise UsageError(f"@pytest.mark.flask_options({key}={v!r}): use True or False")
    extra = opts["extra_args"]
    if isinstance(extra, str):
        raise UsageError("@pytest.mark.flask_options(extra_args=...): give a list of "
                         "arguments, or a dict of server name to list")
    if isinstance(extra, Mapping):
        for server, more in extra.items():
            check_arguments(f"@pytest.mark.flask_options(extra_args={{{server!r}: ...}})", more)
    elif extra is not None:
        check_arguments("@pytest.mark.flask_options(extra_args=...)", extra)
    worker_class = opts["worker_class"]
    if worker_class is not None:
        where = f"@pytest.mark.flask_options(worker_class={worker_class!r})"
        if not isinstance(worker_class, str):
            raise UsageError(f"{where}: use a Gunicorn worker class name, e.g. 'gthread'")
        from pytest_flaskserve import servers

        servers.check_worker_class(where, worker_class)
    if opts["env"] is not None:
        check_env("@pytest.mark.flask_options(env=...)", opts["env"])
    if opts["config"] is not None:
        opts["config"] = app_config.check_config("@pytest.mark.flask_options(config=...)",
                                                 opts["config"])
    opts["instance_path"] = app_config.check_instance_path(
        "@pytest.mark.flask_options", opts["instance_path"])
    return opts


def check_count(where: str, value: object) -> None:
    """A worker or thread count: None (the server's default) or a whole number in range."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                              or not 1 <= value <= MAX_COUNT):
        raise UsageError(f"{where}: use a whole number from 1 to {MAX_COUNT}")


def check_arguments(where: str, args: object) -> None:
    """Command-line arguments: a list of strings (a string would be split into letters)."""
    if isinstance(args, str) or not isinstance(args, (list, tuple)) or not all(
            isinstance(a, str) and "\0" not in a for a in args):
        raise UsageError(f"{where}: {args!r} is not a list of strings; write each argument "
                         "as one string, e.g. ['--timeout', '5']")


def check_env(where: str, env: object) -> None:
    """Environment variables: a dict of names (no '=', not empty) to string values."""
    if not isinstance(env, Mapping):
        raise UsageError(f"{where}: {env!r} is not a dict; e.g. env={{'SETTINGS': 'test.cfg'}}")
    for name, value in env.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise UsageError(f"{where}: {name!r} is not an environment variable name")
        if not isinstance(value, str) or "\0" in value:
            raise UsageError(f"{where}: the value of {name} must be a string without NUL "
                             f"bytes, not {value!r}; e.g. {{{name!r}: '1'}}")


_SINGLE_MARKERS = ("flask_app", "flask_scope", "flask_servers", "flask_deploy")


def check_item(item: pytest.Item, rt: Runtime) -> None:
    """Check the markers of a test that runs on servers, at collection, so a typo is a
    usage error up front; a ``flask_app`` marker's app is imported now (once per spec
    and env), with the variables the test gives its servers."""
    from pytest_flaskserve import servers
    from pytest_flaskserve.appspec.grammar import parse_spec

    for name in _SINGLE_MARKERS:
        per_node: dict[str, list[Any]] = {}
        for node, mark in item.iter_markers_with_node(name):
            per_node.setdefault(node.nodeid, []).append((mark.args, mark.kwargs))
        for nodeid, calls in per_node.items():
            if len({repr(c) for c in calls}) > 1:
                raise UsageError(f"conflicting @pytest.mark.{name} markers on {nodeid or 'the module'}: "
                                 f"{', '.join(repr(c[0]) for c in calls)}; keep one")
    app_mark = item.get_closest_marker("flask_app")
    if app_mark is not None:
        spec = parse_spec(app_arg(app_mark.args, app_mark.kwargs), rt.rootdir,
                          source="@pytest.mark.flask_app")
        rt.resolve(spec, dict(rt.options_for(item, "").env))
    scope_mark = item.get_closest_marker("flask_scope")
    if scope_mark is not None:
        scope_arg(scope_mark.args, scope_mark.kwargs)
    for mark in item.iter_markers("flask_options"):
        opts = options_arg(mark.args, mark.kwargs)
        extra = opts["extra_args"]
        if isinstance(extra, dict):
            for server in extra:
                servers.get(server)

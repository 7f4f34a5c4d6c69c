"""Config a test gives the app its servers run, checked and encoded in the test process.

A test says ``config={...}`` (marker ``flask_options``, ``flask_server_factory``, or the
``app`` fixture behind ``live_server``) and optionally ``instance_path``; the servers get
them as JSON (``_child/app_settings.py`` applies them). Only values that survive JSON
unchanged are accepted: anything else would reach the servers as something else, or
not at all, so it is a :class:`UsageError` that names the key.

Two placeholders are replaced in string values (and in ``instance_path``) when a server
starts: ``{session_dir}``, a temporary directory of this test session that the test
process sees too (fixture ``flask_session_dir``), and ``{instance_path}``, the test run's
instance folder inside it (fixture ``flask_instance_path``). No other text changes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_flaskserve.appspec.grammar import ResolvedApp
from pytest_flaskserve.errors import UsageError

#: ``instance_path=True`` means this folder of the session directory
INSTANCE_DIR = "instance"
SESSION_DIR_TOKEN = "{session_dir}"
INSTANCE_PATH_TOKEN = "{instance_path}"
_JSON_TYPES = "str, int, float, bool, None, and lists and dicts (with str keys) of them"


def json_problem(value: object) -> str | None:
    """Why ``value`` would not reach a server unchanged through JSON, or None."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    if isinstance(value, list):
        return next((p for p in map(json_problem, value) if p), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"the key {key!r} is a {type(key).__name__}, not a str"
            problem = json_problem(item)
            if problem:
                return problem
        return None
    return f"{value!r} is a {type(value).__module__}.{type(value).__qualname__}"


def check_config(where: str, config: object) -> dict[str, Any]:
    """``config`` as a dict of config keys to JSON values, or a :class:`UsageError`."""
    if not isinstance(config, Mapping):
        raise UsageError(f"{where}: {config!r} is not a dict; e.g. config={{'TESTING': True}}")
    out: dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str) or not key:
            raise UsageError(f"{where}: the config key {key!r} is not a non-empty str")
        problem = json_problem(value)
        if problem:
            raise UsageError(
                f"{where}: config[{key!r}] cannot reach a server in another process "
                f"({problem}); servers get config as JSON: use {_JSON_TYPES}, or set it "
                "in the app's own code")
        out[key] = value
    return out


def check_instance_path(where: str, value: object) -> str:
    """``True`` (the test run's instance folder), an absolute path, or None/False (the
    app's own): the form :class:`ServerOptions` keeps (``""`` for the app's own)."""
    if value is None or value is False:
        return ""
    if value is True:
        return INSTANCE_PATH_TOKEN
    if isinstance(value, (str, Path)) and (Path(value).is_absolute()
                                           or str(value).startswith(SESSION_DIR_TOKEN)):
        return str(value)
    raise UsageError(f"{where}: instance_path={value!r}: use True (a folder of this test "
                     "run, fixture flask_instance_path) or an absolute path")


def encode(config: Mapping[str, Any]) -> str:
    """The canonical JSON of ``config`` ("" for none): equal configs share a server."""
    return json.dumps(dict(config), sort_keys=True) if config else ""


def decode(config_json: str) -> dict[str, Any]:
    """The dict :func:`encode` made."""
    return dict(json.loads(config_json)) if config_json else {}


def _fill(value: Any, tokens: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for token, text in tokens.items():
            value = value.replace(token, text)
        return value
    if isinstance(value, list):
        return [_fill(v, tokens) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, tokens) for k, v in value.items()}
    return value


def with_settings(app: ResolvedApp, config_json: str, instance_path: str,
                  session_dir: Path) -> ResolvedApp:
    """``app`` carrying the settings its servers apply (unchanged when there are none);
    placeholders are replaced here, and the instance folder is created."""
    if not config_json and not instance_path:
        return app
    instance = session_dir / INSTANCE_DIR
    tokens = {SESSION_DIR_TOKEN: str(session_dir), INSTANCE_PATH_TOKEN: str(instance)}
    settings: dict[str, Any] = {"config": _fill(json.loads(config_json or "{}"), tokens)}
    if instance_path:
        settings["instance_path"] = _fill(instance_path, tokens)
        Path(settings["instance_path"]).mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(app, app_settings=json.dumps(settings, sort_keys=True))


#: Flask reads these as seconds as well as a timedelta: they cross as seconds
_SECONDS_KEYS = ("PERMANENT_SESSION_LIFETIME", "SEND_FILE_MAX_AGE_DEFAULT")


def config_changes(app: Any, where: str, served: Mapping[str, str]) -> dict[str, Any]:
    """What ``app.config`` (an app object of the test process) holds that a new app of
    its class would not: the config a test gave it, for servers to apply. ``served`` is
    the repr of each config value of the app the servers build (``ResolvedApp.config_reprs``):
    a value JSON cannot carry that the servers' app already has (same repr, e.g. a class
    the factory sets) needs no crossing; any other is a :class:`UsageError` naming every
    such key, never dropped."""
    defaults = getattr(type(app), "default_config", {})
    changed: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in app.config.items():
        if key in defaults and defaults[key] == value:
            continue
        if key in _SECONDS_KEYS and hasattr(value, "total_seconds"):
            value = value.total_seconds()
        problem = json_problem(value)
        if problem and served.get(key) == repr(value):
            continue  # the servers' own app sets the same value
        if problem:
            problems.append(f"app.config[{key!r}] ({problem})")
        else:
            changed[key] = value
    if problems:
        raise UsageError(
            f"{where}: {'; '.join(problems)} cannot reach servers in other processes: they "
            f"get config as JSON ({_JSON_TYPES}); set such values in the app's own code "
            "(every server runs it, and a value equal to the servers' own crosses as it "
            "is), not in the test's app fixture")
    return changed

"""Generated entry point for servers whose syntax cannot express the app spec.

uWSGI cannot call a factory and Waitress's ``--call`` takes no arguments; for those the
launcher points the server at ``pytest_flaskserve._entry:app`` and describes the real
target in ``FLASKSERVE_ENTRY`` (JSON: module, attr, factory, arguments as a Python
literal). Importing this module builds the app exactly once, the way Flask would. Every
server uses it when a test gives its app config (``FLASKSERVE_APP_SETTINGS``, see
``_child/app_settings.py``), so that config is applied the same way everywhere.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
from typing import Any

from pytest_flaskserve._child import app_settings

_target = json.loads(os.environ["FLASKSERVE_ENTRY"])
_settings = app_settings.load()
if _settings is not None:
    app_settings.before_create(_settings, importlib.import_module("flask"))
_obj: Any = getattr(importlib.import_module(_target["module"]), _target["attr"])
if _target["factory"]:
    _args, _kwargs = ast.literal_eval(_target["arguments"])
    app = _obj(*_args, **_kwargs)
else:
    app = _obj
if _settings is not None:
    app_settings.after_create(app, _settings)
application = app

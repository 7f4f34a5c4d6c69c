"""An app whose import fails: it needs a package that is not installed."""

from flask import Flask

import flask_extension_that_is_not_installed  # noqa: F401

app = Flask(__name__)

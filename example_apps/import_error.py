"""An app whose import fails: it needs a package that is not installed."""

import flask_extension_that_is_not_installed  # noqa: F401
from flask import Flask

app = Flask(__name__)

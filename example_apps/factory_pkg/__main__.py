"""``python -m factory_pkg`` serves the dev configuration on Flask's development server."""

from . import create_app

create_app("dev").run(port=5000)

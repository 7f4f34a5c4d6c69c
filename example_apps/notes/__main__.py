"""``python -m notes``: the app's own entry point."""

from notes import create_app

create_app().run()

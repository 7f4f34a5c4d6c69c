"""The deployment entry point: what `gunicorn wsgi:app` loads, and what Flask's CLI
finds by itself when no app is named (it tries wsgi.py, then app.py)."""

from site_app import build

app = build()

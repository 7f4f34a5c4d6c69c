"""Placeholder: filled in by the reloader_plugin work."""

"""Placeholder: filled in by the parity_plugin work."""

"""pytest-flaskserve: run one Flask app under every real server and test it on each."""

__version__ = "0.1.0"

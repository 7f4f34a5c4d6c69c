"""A script that hard-codes its address and debug mode, as many tutorials do.

The plugin still moves it to a free port and keeps debug=True (and so the reloader).
"""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return f"debug={app.debug}"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5000, debug=True)

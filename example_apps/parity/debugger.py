"""The Werkzeug debugger wired in by hand, so it runs under every server.

``app.run(debug=True)`` only enables the debugger under the dev server; wrapping
``app.wsgi_app`` in ``DebuggedApplication`` (a common copy-paste to "see tracebacks in
production") serves the interactive console under Gunicorn too, which runs Python code
for anyone who can reach it. Caught by the smoke suite: ``smoke::debug-off[gunicorn]``.
"""

from flask import Flask
from werkzeug.debug import DebuggedApplication

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "debugger attached"


app.wsgi_app = DebuggedApplication(app.wsgi_app, evalex=True)  # type: ignore[method-assign]

if __name__ == "__main__":
    app.run()

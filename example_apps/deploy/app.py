"""A small shop app deployed four ways (see the Procfile, the Dockerfile, gunicorn.conf.py
and uwsgi.ini next to it). Each route shows something only the deployment's own command
does: the plugin's default command would serve this app without any of it."""

import os

from flask import Flask

#: the process that imported this module: the Gunicorn master when preload_app is on
IMPORTED_IN = os.getpid()


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        return "shop is open"

    @app.get("/deploy")
    def deploy() -> dict[str, object]:
        return {
            # set by the Dockerfile's ENV and by uwsgi.ini's env =
            "kind": os.environ.get("DEPLOY_KIND", "none"),
            "pid": os.getpid(),
            "imported_in": IMPORTED_IN,
            # set by gunicorn.conf.py's post_fork hook, in the worker
            "post_fork_pid": os.environ.get("POST_FORK_PID"),
            "workers_setting": os.environ.get("GUNICORN_WORKERS_SETTING"),
        }

    return app


application = create_app()

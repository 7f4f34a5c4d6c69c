"""Gunicorn settings of the production deployment: 3 workers, the app preloaded in the
master, and a post_fork hook that tags each worker."""

import os

wsgi_app = "app:create_app()"
bind = "0.0.0.0:8000"
workers = 3
preload_app = True
timeout = 20
raw_env = ["GUNICORN_WORKERS_SETTING=3"]


def post_fork(server, worker):
    os.environ["POST_FORK_PID"] = str(worker.pid)
    server.log.info("post_fork: worker %s tagged", worker.pid)

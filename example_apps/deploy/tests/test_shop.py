"""The shop's tests, run on its real deployments: pytest --flask-deploy=Procfile runs the
unmarked tests on the Procfile's own command; each marked test runs on its file's."""

import pytest


def test_home(flask_http):
    response = flask_http.get("/")
    assert response.status_code == 200
    assert response.text == "shop is open"


@pytest.mark.flask_deploy("Procfile")
def test_procfile_serves_its_own_wsgi_entry(flask_http):
    # wsgi.py, which only the Procfile names, adds the production middleware
    assert flask_http.get("/").headers["X-Served-By"] == "wsgi.py"


@pytest.mark.flask_deploy("gunicorn.conf.py")
def test_gunicorn_conf_hooks_and_preload(flask_http):
    facts = flask_http.get("/deploy").json()
    assert facts["post_fork_pid"] == str(facts["pid"])  # the post_fork hook ran in the worker
    assert facts["imported_in"] != facts["pid"]  # preload_app: imported in the master
    assert facts["workers_setting"] == "3"  # raw_env from the file


@pytest.mark.flask_deploy("uwsgi.ini")
def test_uwsgi_ini_env(flask_http):
    assert flask_http.get("/deploy").json()["kind"] == "uwsgi.ini"


@pytest.mark.flask_deploy("Dockerfile")
def test_dockerfile_env_and_command(flask_http):
    assert flask_http.get("/deploy").json()["kind"] == "dockerfile"

"""The user's deployment files run as written (--flask-deploy, @pytest.mark.flask_deploy,
flask_server_factory.command): only the listen address changes, and each file the tests
cannot run is a one-line usage error naming the file, the line and the fix."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, owned_processes

from pytest_flaskserve import deploy
from pytest_flaskserve.errors import UsageError
from pytest_flaskserve.servers import LaunchRequest, ServerOptions
from pytest_flaskserve.servers.gunicorn import no_control_socket

DEPLOY_EXAMPLE = EXAMPLES / "deploy"
PORT = 41234
#: what the plugin adds to a Gunicorn command where Gunicorn has a control socket
NO_CTL = no_control_socket()
CTL = "".join(f" {flag}" for flag in NO_CTL)


def planned(tmp_path: Path, name: str, text: str, **files: str) -> list[tuple[str, list[str], dict[str, str], tuple[str, ...]]]:
    """Each launcher of the deployment file ``name`` (written with ``text``): id, argv, env
    and notes as it would run on PORT. Nothing is started."""
    (tmp_path / name).write_text(text)
    for file, body in files.items():
        (tmp_path / file).write_text(body)
    out = []
    for launcher in deploy.load(name, tmp_path, "--flask-deploy"):
        plan = launcher.plan(LaunchRequest(app=None, host="127.0.0.1", port=PORT,  # type: ignore[arg-type]
                                           options=ServerOptions(), python=sys.executable))
        out.append((launcher.name, plan.argv, dict(plan.env), plan.notes))
    return out


@pytest.mark.parametrize(("line", "run"), [
    ("gunicorn wsgi:app --bind 0.0.0.0:$PORT --workers 3 --preload",
     "exec gunicorn wsgi:app --bind 127.0.0.1:41234 --workers 3 --preload" + CTL),
    ("gunicorn -b 0.0.0.0:8000 -b [::]:8000 -k gthread wsgi:app",
     "exec gunicorn --bind 127.0.0.1:41234  -k gthread wsgi:app" + CTL),
    ("gunicorn --bind=:$PORT wsgi:app", "exec gunicorn --bind 127.0.0.1:41234 wsgi:app" + CTL),
    ("gunicorn wsgi:app", "exec gunicorn wsgi:app --bind 127.0.0.1:41234" + CTL),
    ("cd src && WEB_CONCURRENCY=2 gunicorn 'wsgi:app' --timeout \"30\"",
     "cd src && WEB_CONCURRENCY=2 exec gunicorn 'wsgi:app' --timeout \"30\" --bind 127.0.0.1:41234"
     + CTL),
    ("python -m gunicorn -b 0.0.0.0:$PORT wsgi:app",
     "exec python -m gunicorn --bind 127.0.0.1:41234 wsgi:app" + CTL),
    ("waitress-serve --host=0.0.0.0 --port=$PORT wsgi:app",
     "exec waitress-serve --listen=127.0.0.1:41234  wsgi:app"),
    ("waitress-serve --threads 8 wsgi:app",
     "exec waitress-serve --listen=127.0.0.1:41234 --threads 8 wsgi:app"),
    ("flask --app wsgi run --host 0.0.0.0 --port $PORT --with-threads",
     "exec flask --app wsgi run --host 127.0.0.1 --port 41234 --with-threads"),
    ("flask --app wsgi run", "exec flask --app wsgi run --host 127.0.0.1 --port 41234"),
    ("uwsgi --http :$PORT --module wsgi:app --master --processes 4",
     "exec uwsgi --http 127.0.0.1:41234 --module wsgi:app --master --processes 4"),
    ("uwsgi --socket 0.0.0.0:3031 --module wsgi:app",
     "exec uwsgi --http-socket 127.0.0.1:41234 --module wsgi:app"),
    ("granian --interface wsgi --host 0.0.0.0 --port $PORT wsgi:app",
     "exec granian --interface wsgi --host 127.0.0.1 --port 41234 wsgi:app"),
    ("exec gunicorn wsgi:app", "exec gunicorn wsgi:app --bind 127.0.0.1:41234" + CTL),
    # pass-through wrappers: the server after them is rewritten
    ("nice -n 5 gunicorn -b 0.0.0.0:$PORT wsgi:app",
     "exec nice -n 5 gunicorn --bind 127.0.0.1:41234 wsgi:app" + CTL),
    ("tini -s -- waitress-serve --port=8080 wsgi:app",
     "exec tini -s -- waitress-serve --listen=127.0.0.1:41234 wsgi:app"),
    ("hypercorn -b 0.0.0.0:$PORT -w 2 asgi:app", "exec hypercorn --bind 127.0.0.1:41234 -w 2 asgi:app"),
    ("uvicorn asgi:app --host 0.0.0.0 --port $PORT",
     "exec uvicorn asgi:app --host 127.0.0.1 --port 41234"),
])
def test_procfile_command_changes_only_its_listen_address(tmp_path: Path, line: str, run: str) -> None:
    (tmp_path / "src").mkdir()
    [(name, argv, env, notes)] = planned(tmp_path, "Procfile", f"web: {line}\n")
    assert name == "procfile:web"
    assert argv == ["/bin/sh", "-c", run]
    assert env["PORT"] == str(PORT)  # as the platforms set it
    assert f"{tmp_path / 'Procfile'}:1 as written: {line}" in notes


def test_procfile_keeps_every_web_process_and_leaves_the_rest(tmp_path: Path) -> None:
    launchers = planned(tmp_path, "Procfile",
                        "# processes\nweb: gunicorn wsgi:app\napi: waitress-serve api:app\n"
                        "worker: celery -A tasks worker\nrelease: flask --app wsgi db upgrade\n"
                        "clock: python clock.py\n",
                        **{"clock.py": "import time\nwhile True: time.sleep(60)\n"})
    assert [name for name, *_ in launchers] == ["procfile:web", "procfile:api"]


def test_a_wildcard_bind_becomes_loopback_and_notes_say_so(tmp_path: Path) -> None:
    [(_, _, _, notes)] = planned(tmp_path, "Procfile", "web: gunicorn -b 0.0.0.0:$PORT w:app\n")
    assert "listen address 0.0.0.0:$PORT -> 127.0.0.1:41234" in notes
    assert any("listens on every interface; the tests run it on loopback" in n for n in notes)


def test_an_unknown_program_that_uses_port_runs_as_written(tmp_path: Path) -> None:
    [(_, argv, env, notes)] = planned(tmp_path, "Procfile", "web: bin/serve --port=$PORT\n")
    assert argv == ["/bin/sh", "-c", "exec bin/serve --port=$PORT"]
    assert env["PORT"] == str(PORT)
    assert any("not a server the plugin knows: run as written" in n for n in notes)


def test_a_python_script_that_reads_port_runs_as_written(tmp_path: Path) -> None:
    script = "import os\nfrom app import app\napp.run(port=int(os.environ['PORT']))\n"
    [(_, argv, _, _)] = planned(tmp_path, "Procfile", "web: python serve.py\n",
                                **{"serve.py": script})
    assert argv == ["/bin/sh", "-c", "exec python serve.py"]


@pytest.mark.parametrize(("text", "argv", "cwd_sub"), [
    ('FROM python:3.12\nWORKDIR /app\nCOPY . .\nCMD ["gunicorn", "-b", "0.0.0.0:8000", "w:app"]\n',
     ["gunicorn", "--bind", "127.0.0.1:41234", "w:app", *NO_CTL], ""),
    ('FROM python:3.12\nCOPY src/ /srv/\nWORKDIR /srv\nCMD gunicorn -b 0.0.0.0:$PORT w:app\n',
     ["/bin/sh", "-c", "exec gunicorn --bind 127.0.0.1:41234 w:app" + CTL], "src"),
    ('FROM python:3.12\nENTRYPOINT ["gunicorn"]\nCMD ["--workers", "3", "w:app"]\n',
     ["gunicorn", "--workers", "3", "w:app", "--bind", "127.0.0.1:41234", *NO_CTL], ""),
    ('FROM python:3.12\nENTRYPOINT waitress-serve --port=8080 w:app\nCMD ["ignored"]\n',
     ["/bin/sh", "-c", "exec waitress-serve --listen=127.0.0.1:41234 w:app"], ""),
    ('FROM python:3.12 AS build\nCMD ["nothing"]\nFROM python:3.12\n'
     'CMD ["sh", "-c", "uwsgi --http-socket :$PORT --module w:app"]\n',
     ["/bin/sh", "-c", "exec uwsgi --http-socket 127.0.0.1:41234 --module w:app"], ""),
    # a stage built FROM an earlier one inherits its CMD, WORKDIR and ENV
    ('FROM python:3.12 AS base\nWORKDIR /srv\nCOPY src/ /srv/\nCMD ["gunicorn", "w:app"]\n'
     'FROM base AS prod\nENV EXTRA=1\n',
     ["gunicorn", "w:app", "--bind", "127.0.0.1:41234", *NO_CTL], "src"),
    # ... except that its own ENTRYPOINT resets the CMD it inherited, as Docker does
    ('FROM python:3.12 AS base\nCMD ["ignored"]\nFROM base\n'
     'ENTRYPOINT ["waitress-serve", "--port=8080", "w:app"]\n',
     ["waitress-serve", "--listen=127.0.0.1:41234", "w:app"], ""),
])
def test_dockerfile_command_forms(tmp_path: Path, text: str, argv: list[str], cwd_sub: str) -> None:
    (tmp_path / "src").mkdir()
    [(name, got, _, _)] = planned(tmp_path, "Dockerfile", text)
    assert name == "dockerfile"
    assert got == argv
    launcher = deploy.load("Dockerfile", tmp_path, "--flask-deploy")[0]
    own = launcher.own_app()
    assert own is not None and Path(own.cwd) == (tmp_path / cwd_sub).resolve()


@pytest.mark.parametrize("name", ["Dockerfile.prod", "prod.Dockerfile", "Containerfile",
                                  "python3.11.dockerfile"])
def test_a_dockerfile_by_any_of_its_usual_names_is_read(tmp_path: Path, name: str) -> None:
    [(_, argv, _, _)] = planned(tmp_path, name, "FROM python:slim\nCMD gunicorn -b :5000 w:app\n")
    assert argv == ["/bin/sh", "-c", "exec gunicorn --bind 127.0.0.1:41234 w:app" + CTL]


def test_a_dockerfile_s_image_paths_are_the_build_context_s_files(tmp_path: Path) -> None:
    """COPY ./app /app, then CMD names /app/uwsgi.ini: the tests run the file it copied."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "uwsgi.ini").write_text("[uwsgi]\nmodule = w:app\nhttp-socket = :80\n")
    [(_, argv, _, notes)] = planned(
        tmp_path, "Dockerfile", 'FROM python:3.12\nCOPY ./app /app\nWORKDIR /app\n'
        'CMD ["uwsgi", "--ini", "/app/uwsgi.ini", "--die-on-term"]\n')
    assert argv[:2] == ["uwsgi", "--ini"] and "/app/uwsgi.ini" not in argv
    assert any(f"image's copy of {(tmp_path / 'app' / 'uwsgi.ini').resolve()}" in n
               for n in notes), notes


def test_dockerfile_env_is_applied_except_path(tmp_path: Path) -> None:
    [(_, _, env, notes)] = planned(
        tmp_path, "Dockerfile",
        'FROM python:3.12\nARG MODE=prod\nENV MODE=$MODE SETTINGS="/app/conf.py" PATH=/venv/bin:$PATH\n'
        'ENV PORT=9000\nCMD ["gunicorn", "w:app"]\n')
    assert env["MODE"] == "prod" and env["SETTINGS"] == "/app/conf.py"
    assert env["PORT"] == str(PORT)  # the test's port wins over the image's
    assert not env["PATH"].startswith("/venv/bin")
    assert any("ENV PATH=" in n for n in notes)


def test_a_procfile_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    [(name, _, _, _)] = planned(tmp_path, "Procfile", "\ufeff# web\nweb: gunicorn w:app\n")
    assert name == "procfile:web"


def test_a_directory_given_as_the_deployment_file_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    with pytest.raises(UsageError, match="deploy is a directory; name the deployment file in it"):
        deploy.load("deploy", tmp_path, "--flask-deploy")


def test_a_daemon_setting_read_from_the_environment_is_left_to_run_time(tmp_path: Path) -> None:
    """The line the daemon = True message advises is accepted: whether it detaches is
    known only when Gunicorn runs (where a detached server is found and named)."""
    [(name, _, _, _)] = planned(tmp_path, "gunicorn.conf.py",
                                "import os\ndaemon = os.environ.get('GUNICORN_DAEMON') == '1'\n"
                                "wsgi_app = 'w:app'\n")
    assert name == "gunicorn.conf.py"


def test_uwsgi_ini_is_run_as_a_copy_that_differs_only_in_its_sockets(tmp_path: Path) -> None:
    ini = ("[uwsgi]\n; production\nmodule = w:app\nhttp-socket = 0.0.0.0:9090\n"
           "http-socket = [::]:9091\nprocesses = 4\nlogto = %dlogs/uwsgi.log\n"
           "[other]\nsocket = :1\n")
    launcher = deploy.load(*_write(tmp_path, "uwsgi.ini", ini))[0]
    plan = launcher.plan(LaunchRequest(app=None, host="127.0.0.1", port=PORT,  # type: ignore[arg-type]
                                       options=ServerOptions(), python=sys.executable,
                                       scratch_dir=tmp_path / "start.d"))
    assert plan.argv[:2] == ["uwsgi", "--ini"]
    copy = Path(plan.argv[2])
    assert copy.parent == tmp_path / "start.d"  # the start's own directory, not the user's
    assert copy.read_text().splitlines() == [
        "[uwsgi]", "; production", "module = w:app", "http-socket = 127.0.0.1:41234",
        "processes = 4", f"logto = {tmp_path.resolve()}/logs/uwsgi.log", "[other]", "socket = :1"]


def test_uwsgi_router_keeps_its_unix_socket(tmp_path: Path) -> None:
    launcher = deploy.load(*_write(tmp_path, "uwsgi.ini", "[uwsgi]\nmodule = w:app\n"
                                   "http = 0.0.0.0:8000\nsocket = /tmp/app.sock\n"))[0]
    plan = launcher.plan(LaunchRequest(app=None, host="127.0.0.1", port=PORT,  # type: ignore[arg-type]
                                       options=ServerOptions(), python=sys.executable,
                                       scratch_dir=tmp_path / "start.d"))
    assert Path(plan.argv[2]).read_text().splitlines()[1:] == [
        "module = w:app", "http = 127.0.0.1:41234", "socket = /tmp/app.sock"]


def test_a_uwsgi_shared_socket_binds_no_host_port(tmp_path: Path) -> None:
    """shared-socket = 0.0.0.0:8080 (with http = =0) would bind every interface on a fixed
    port whatever the router listens on: it becomes a Unix socket of the start."""
    launcher = deploy.load(*_write(tmp_path, "uwsgi.ini", "[uwsgi]\nmodule = w:app\n"
                                   "shared-socket = 0.0.0.0:8080\nhttp = =0\n"))[0]
    plan = launcher.plan(LaunchRequest(app=None, host="127.0.0.1", port=PORT,  # type: ignore[arg-type]
                                       options=ServerOptions(), python=sys.executable,
                                       scratch_dir=tmp_path / "start.d"))
    try:
        [directory] = plan.temp_dirs
        assert Path(plan.argv[2]).read_text().splitlines()[1:] == [
            "module = w:app", f"shared-socket = {directory}/backend-0.sock",
            "http = 127.0.0.1:41234"]
    finally:
        for directory in plan.temp_dirs:
            shutil.rmtree(directory)


def test_uwsgi_router_s_tcp_backend_becomes_a_socket_of_this_start(
        pytester: pytest.Pytester) -> None:
    """http = router, socket = 127.0.0.1:3031 behind it: the fixed port would bind for
    every start (two at once collide) and be taken for a wrong listen address; it becomes
    a Unix socket of the start, removed after it, and the router still serves."""
    pytester.path.joinpath("hello.py").write_text(
        "from flask import Flask\napp = Flask(__name__)\napp.get('/')(lambda: 'routed')\n")
    pytester.path.joinpath("router.ini").write_text(
        "[uwsgi]\nchdir = %d\nmodule = hello:app\nmaster = true\nsocket = 127.0.0.1:3031\n"
        "http = 0.0.0.0:8080\n")
    pytester.makepyfile(test_inner="""
        import glob, psutil, pytest, requests

        @pytest.mark.parametrize("n", range(3))
        def test_x(flask_server, n):
            assert requests.get(flask_server.url, timeout=10).text == "routed"
            ports = {c.laddr.port for p in [psutil.Process(flask_server.pid),
                                            *psutil.Process(flask_server.pid).children(True)]
                     for c in p.net_connections("inet") if c.status == "LISTEN"}
            assert ports == {flask_server.port}
            [note] = [n for n in flask_server.notes if "Unix sockets in " in n]
            with open("socket-dirs.txt", "a") as f:
                f.write(note.split("Unix sockets in ")[1].split(" for the tests")[0] + "\\n")
    """)
    result = pytester.runpytest_subprocess("--flask-deploy=router.ini", "-p", "no:cacheprovider",
                                           "--flask-scope=function")
    result.assert_outcomes(passed=3)
    dirs = (pytester.path / "socket-dirs.txt").read_text().split()
    assert len(set(dirs)) == 3 and not [d for d in dirs if Path(d).exists()], dirs


def _write(directory: Path, name: str, text: str) -> tuple[str, Path, str]:
    (directory / name).write_text(text)
    return name, directory, "--flask-deploy"


HOOK_BIND = "def on_starting(server):\n    server.cfg.set('bind', '0.0.0.0:80')\n"
BAD_FILES = [
    # (id, file name, text, other files, fragment of the one-line error)
    ("missing-file", "Procfile", None, {}, "Procfile does not exist"),
    ("unknown-kind", "deploy.yaml", "web: x\n", {}, "is not a deployment file the plugin reads"),
    ("no-web-process", "Procfile", "worker: celery -A tasks worker\n", {},
     "Procfile: no process type starts a web server (types: worker)"),
    ("not-a-procfile-line", "Procfile", "web gunicorn wsgi:app\n", {},
     "Procfile:1: 'web gunicorn wsgi:app' is not 'type: command'"),
    ("twice-defined", "Procfile", "web: gunicorn a:app\nweb: gunicorn b:app\n", {},
     "Procfile:2: process type 'web' is defined twice"),
    ("unterminated-quote", "Procfile", "web: gunicorn 'wsgi:app\n", {}, "unterminated ' quote"),
    ("unknown-server", "Procfile", "web: daphne wsgi:app\n", {},
     "Procfile:1: 'daphne' is not a server the plugin knows and the command does not use $PORT"),
    ("fixed-bind-in-code", "Procfile", "web: python serve.py\n",
     {"serve.py": "from app import app\napp.run(port=5000)\n"},
     "serve.py:2: the bind is fixed inside code (port 5000)"),
    ("fixed-bind-in-hook", "gunicorn.conf.py", HOOK_BIND, {},
     "gunicorn.conf.py:2: the bind is fixed inside code (cfg.set('bind', ...))"),
    ("daemon-conf", "gunicorn.conf.py", "workers = 2\ndaemon = True\n", {},
     "gunicorn.conf.py:2: daemon = True detaches Gunicorn"),
    ("daemon-flag", "Procfile", "web: gunicorn -D wsgi:app\n", {},
     "Procfile:1: --daemon detaches Gunicorn"),
    ("daemon-conf-via-procfile", "Procfile", "web: gunicorn -c prod.py wsgi:app\n",
     {"prod.py": "daemon = 1\n"}, "prod.py:1: daemon = 1 detaches Gunicorn"),
    ("conf-syntax-error", "gunicorn.conf.py", "workers = 2\nbind = '0.0.0.0:80\n", {},
     "gunicorn.conf.py:2: syntax error in the Gunicorn config file"),
    ("daemonize-ini", "uwsgi.ini", "[uwsgi]\nmodule = w:app\ndaemonize = /tmp/u.log\n", {},
     "uwsgi.ini:3: daemonize = /tmp/u.log detaches uWSGI"),
    ("ini-syntax-error", "uwsgi.ini", "[uwsgi]\nmodule = w:app\nprocesses 4\n", {},
     "uwsgi.ini:3: syntax error: 'processes 4' is not 'key = value'"),
    ("ini-without-section", "uwsgi.ini", "[app]\nmodule = w:app\n", {},
     "uwsgi.ini: no [uwsgi] section"),
    ("dockerfile-without-cmd", "Dockerfile", "FROM python:3.12\nCOPY . /app\n", {},
     "Dockerfile: the final stage has no CMD or ENTRYPOINT"),
    ("dockerfile-without-from", "Dockerfile", "CMD gunicorn w:app\n", {}, "no FROM instruction"),
]


@pytest.mark.parametrize(("name", "text", "files", "fragment"),
                         [pytest.param(*c[1:], id=c[0]) for c in BAD_FILES])
def test_bad_deployment_file_names_file_line_and_fix(tmp_path: Path, name: str, text: str | None,
                                                     files: dict[str, str], fragment: str) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)
    for file, body in files.items():
        (tmp_path / file).write_text(body)
    with pytest.raises(UsageError) as info:
        deploy.load(name, tmp_path, "--flask-deploy")
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


@pytest.mark.parametrize(("name", "text", "files", "fragment"),
                         [pytest.param(*c[1:], id=c[0]) for c in BAD_FILES])
def test_bad_deployment_file_is_a_usage_error_with_exit_code_4(
        pytester: pytest.Pytester, name: str, text: str | None, files: dict[str, str],
        fragment: str) -> None:
    if text is not None:
        (pytester.path / name).write_text(text)
    for file, body in files.items():
        (pytester.path / file).write_text(body)
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess(f"--flask-deploy={name}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    errors = [ln for ln in result.stderr.lines if ln.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: pytest-flaskserve: "), result.stderr.str()
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_bad_file_in_a_marker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("Procfile").write_text("worker: celery -A tasks worker\n")
    pytester.makepyfile(test_inner="import pytest\n@pytest.mark.flask_deploy('Procfile')\n"
                                   "def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "no process type starts a web server" in result.stderr.str()


def test_server_args_for_a_deployment_id_are_a_usage_error(pytester: pytest.Pytester) -> None:
    """A deployment id runs its file's command as written: arguments given for it would be
    silently ignored, so they are refused, naming the file to put them in."""
    pytester.path.joinpath("Procfile").write_text("web: gunicorn hello:app --bind :$PORT\n")
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-deploy=Procfile", "-p", "no:cacheprovider",
                                           "--flask-server-args=procfile:web=--timeout 5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    errors = [ln for ln in result.stderr.lines if ln.startswith("ERROR: ")]
    assert errors == ["ERROR: pytest-flaskserve: --flask-server-args: procfile:web=--timeout 5: "
                      f"procfile:web runs {pytester.path / 'Procfile'}:1 as written; put the "
                      "arguments in that file"], result.stderr.str()


def test_a_uwsgi_ini_that_loads_no_app_fails_its_start(pytester: pytest.Pytester) -> None:
    """Without need-app uWSGI keeps running with no app and answers 500: the start fails
    with that cause, instead of handing the tests a server that can only fail."""
    pytester.path.joinpath("uwsgi.ini").write_text(
        "[uwsgi]\nmodule = no_such_module:app\nhttp-socket = :8080\nmaster = true\n")
    pytester.makepyfile(test_inner="def test_x(flask_url):\n    pass\n")
    result = pytester.runpytest_subprocess("--flask-deploy=uwsgi.ini", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*uWSGI loaded no app*check module=*"])


def test_an_entrypoint_script_that_hands_over_is_seen_through(tmp_path: Path) -> None:
    """ENTRYPOINT ["./docker-entrypoint.sh"] with CMD [gunicorn ...]: the script ends in
    exec "$@", so the CMD's server is the one rewritten."""
    (tmp_path / "docker-entrypoint.sh").write_text("#!/bin/sh\nset -e\nexec \"$@\"\n")
    [(_, argv, _, _)] = planned(
        tmp_path, "Dockerfile", 'FROM python:3.12\nWORKDIR /app\nCOPY . .\n'
        'ENTRYPOINT ["./docker-entrypoint.sh"]\nCMD ["gunicorn", "-b", "0.0.0.0:8000", "w:app"]\n')
    assert argv == ["./docker-entrypoint.sh", "gunicorn", "--bind", "127.0.0.1:41234", "w:app",
                    *NO_CTL]


def test_a_start_script_that_uses_port_is_run_as_written(pytester: pytest.Pytester) -> None:
    """ENTRYPOINT ["./boot.sh"] / web: ./boot.sh: a script that listens on $PORT is
    trusted like a Python script that reads PORT; one that does not, or a path that is not
    there, is a usage error naming it."""
    boot = pytester.path / "boot.sh"
    boot.write_text("#!/bin/sh\nexec gunicorn -b 127.0.0.1:${PORT:-5000} hello:app\n")
    boot.chmod(0o755)
    pytester.path.joinpath("hello.py").write_text(
        "from flask import Flask\napp = Flask(__name__)\napp.get('/')(lambda: 'booted')\n")
    pytester.path.joinpath("Procfile").write_text("web: ./boot.sh\n")
    pytester.makepyfile(test_inner="""
        import requests

        def test_x(flask_url):
            assert requests.get(flask_url, timeout=10).text == "booted"
    """)
    result = pytester.runpytest_subprocess("--flask-deploy=Procfile", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    boot.write_text("#!/bin/sh\nexec gunicorn -b 127.0.0.1:5000 hello:app\n")
    result = pytester.runpytest_subprocess("--flask-deploy=Procfile", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "boot.sh (the script the command runs) does not use $PORT" in result.stderr.str()
    pytester.path.joinpath("Procfile").write_text("web: bin/start-web\n")
    result = pytester.runpytest_subprocess("--flask-deploy=Procfile", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"bin/start-web does not exist in {pytester.path}" in result.stderr.str()


@pytest.fixture
def shop(pytester: pytest.Pytester) -> Path:
    """A copy of example_apps/deploy as the pytester project (its own pytest.ini)."""
    shutil.copytree(DEPLOY_EXAMPLE, pytester.path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return pytester.path


def test_example_project_runs_on_its_procfile(pytester: pytest.Pytester, shop: Path) -> None:
    before = {p.pid for p in owned_processes()}
    result = pytester.runpytest_subprocess("--flask-deploy=Procfile", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*test_home?procfile:web? PASSED*",
        "*test_procfile_serves_its_own_wsgi_entry?procfile:web? PASSED*",
        "*test_gunicorn_conf_hooks_and_preload?gunicorn.conf.py? PASSED*",
        "*test_uwsgi_ini_env?uwsgi.ini? PASSED*",
        "*test_dockerfile_env_and_command?dockerfile? PASSED*",
    ])
    # -v: the command as written beside the one run, and the move to loopback
    result.stdout.fnmatch_lines([
        "procfile:web *ready * ms, stop * ms, exit 0; cold start*",
        "    /bin/sh -c 'exec gunicorn wsgi:app --bind 127.0.0.1:* --workers 2 --access-logfile -"
        + CTL + "'",
        "    (*Procfile:2 as written: gunicorn wsgi:app --bind 0.0.0.0:$PORT --workers 2 --access-logfile -)",
        "    (listen address 0.0.0.0:$PORT -> 127.0.0.1:*)",
    ])
    assert "0.0.0.0:8080 listens on every interface; the tests run it on loopback" in out
    assert "gunicorn.conf.py *ready" not in out
    assert not [p for p in owned_processes() if p.pid not in before]


@pytest.mark.parametrize("how", ["ini", "env"])
def test_deploy_option_twins(pytester: pytest.Pytester, shop: Path, monkeypatch: pytest.MonkeyPatch,
                             how: str) -> None:
    if how == "ini":
        ini = shop / "pytest.ini"
        ini.write_text(ini.read_text() + "flask_deploy =\n    Dockerfile\n")
    else:
        monkeypatch.setenv("FLASKSERVE_DEPLOY", "Dockerfile")
    result = pytester.runpytest_subprocess("-k", "test_home", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_home?dockerfile? PASSED*"])


def test_factory_command_with_a_port_placeholder(flask_server_factory) -> None:  # type: ignore[no-untyped-def]
    import requests

    handle = flask_server_factory.command(
        [sys.executable, "-m", "waitress", "--listen=127.0.0.1:{port}", "hello:app"],
        cwd=EXAMPLES)
    assert requests.get(handle.url, timeout=5).text == "Hello, World!"
    assert handle.argv[2:4] == ["waitress", f"--listen=127.0.0.1:{handle.port}"]


def test_factory_command_moves_a_known_servers_address(flask_server_factory) -> None:  # type: ignore[no-untyped-def]
    import requests

    handle = flask_server_factory.command("gunicorn --workers 2 hello:app", cwd=EXAMPLES)
    assert requests.get(handle.url + "/ping", timeout=5).json() == {"pong": "ok"}
    assert handle.argv[-1].endswith(f"--bind 127.0.0.1:{handle.port}{CTL}")
    assert handle.stop() == 0


def test_a_command_that_binds_every_interface_itself_is_named(flask_server_factory) -> None:  # type: ignore[no-untyped-def]
    """http.server binds 0.0.0.0 unless told: the tests cannot move it, so the start
    warns, and -v's note says, that the machine's network reaches it."""
    from pytest_flaskserve import FlaskServeWarning

    with pytest.warns(FlaskServeWarning, match="every interface of this machine"):
        handle = flask_server_factory.command(f"{sys.executable} -m http.server $PORT",
                                              cwd=EXAMPLES)
    assert any(f"0.0.0.0:{handle.port}" in n for n in handle.notes), handle.notes


def test_factory_command_runs_anything_that_listens_on_port(flask_server_factory) -> None:  # type: ignore[no-untyped-def]
    import requests

    handle = flask_server_factory.command(f"{sys.executable} -m http.server $PORT --bind 127.0.0.1",
                                          cwd=EXAMPLES)
    assert "hello.py" in requests.get(handle.url, timeout=5).text


def test_factory_command_that_cannot_be_moved_is_a_usage_error(flask_server_factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match="does not use \\$PORT"):
        flask_server_factory.command(["daphne", "hello:app"])

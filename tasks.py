#!/usr/bin/env python3
"""Developer entry points that work on a fresh machine with only python3.

    python3 tasks.py example   # run the plugin on the bundled hello app over every server
    python3 tasks.py test      # run the whole test suite, warm (default) and cold (what CI runs)

Both create ``.venv`` (if needed) and install the project with every server into it, so
nothing is installed by hand. Only the standard library is used here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("FLASKSERVE_VENV", ROOT / ".venv"))
BIN = VENV / "bin"


def run(*argv: str | Path, check: bool = True) -> int:
    print("+", " ".join(map(str, argv)), flush=True)
    return subprocess.run([str(a) for a in argv], cwd=ROOT, check=check).returncode


#: Debian packages mod_wsgi is built against (apxs, the headers) and runs (httpd)
APACHE_PACKAGES = ("apache2-dev", "apache2-bin")
#: the browser tests' Chromium and ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver);
#: Playwright and Selenium drive these, nothing downloads a browser of its own
BROWSER_PACKAGES = ("chromium", "chromium-driver")


def apt_install(*packages: str) -> None:
    """``apt-get install`` as root on Debian (after ``apt-get update``); else nothing."""
    if os.geteuid() != 0 or not Path("/usr/bin/apt-get").exists():
        print(f"not root or no apt-get: install {' '.join(packages)} yourself", flush=True)
        return
    run("apt-get", "update", "-q", check=False)
    run("apt-get", "install", "-y", "-q", "--no-install-recommends", *packages, check=False)


def ensure_mod_wsgi(pip: list[str | Path]) -> None:
    """Build mod_wsgi against Apache (the ``mod_wsgi`` server), installing Apache first.

    ``--no-cache-dir``: pip would reuse a cached wheel built for another interpreter of
    the same Python version, linked to the wrong libpython.
    """
    if not (shutil.which("apxs") and Path("/usr/sbin/apache2").exists()):
        apt_install(*APACHE_PACKAGES, "build-essential", "python3-dev")
    if run(*pip, "install", "--no-cache-dir", "mod-wsgi>=5", check=False) != 0:
        print("mod_wsgi did not build: its tests will be skipped", flush=True)


def ensure_env() -> None:
    """Create the virtual environment and install the project with all servers and test tools."""
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    # nginx (a Debian package, not a pip one) runs in front of the servers in the
    # SERVER+nginx tests; installing it does not start it.
    import shutil

    if (os.geteuid() == 0 and Path("/usr/bin/apt-get").exists()
            and not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists())):
        run("apt-get", "update", "-q", check=False)
        run("apt-get", "install", "-y", "-q", "nginx", check=False)
    pip = [BIN / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    run(*pip, "install", "--upgrade", "pip", check=False)
    ensure_mod_wsgi(pip)
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        apt_install(*BROWSER_PACKAGES)
    # uWSGI compiles from source (gcc and the Python headers are needed, about 20 s).
    if run(*pip, "install", "-e", ".[all,test]", check=False) != 0:
        print("uwsgi did not build: installing build tools, then retrying", flush=True)
        apt_install("build-essential", "python3-dev")
        if run(*pip, "install", "-e", ".[all,test]", check=False) != 0:
            print("falling back to the pyuwsgi wheel (the same server, prebuilt)", flush=True)
            run(*pip, "install", "-e", ".[gunicorn,waitress,test]", "pyuwsgi")


def example(extra: list[str]) -> int:
    ensure_env()
    return run(BIN / "pytest", "example_apps/tests", "--flask-app=example_apps/hello.py",
               "-v", "-p", "no:cacheprovider", *extra, check=False)


def test(extra: list[str]) -> int:
    """The whole suite twice: as users run it (warm starts, the default), then with every
    server started cold (``FLASKSERVE_COLD=1`` reaches every inner pytest run)."""
    ensure_env()
    argv = [BIN / "pytest", "tests", "-p", "no:cacheprovider", "-n", "2", *extra]
    print("== suite, default (warm starts where exact)", flush=True)
    warm = run(*argv, check=False)
    print("== suite, cold starts (--flask-cold)", flush=True)
    os.environ["FLASKSERVE_COLD"] = "1"
    try:
        cold = run(*argv, check=False)
    finally:
        del os.environ["FLASKSERVE_COLD"]
    print(f"== warm: exit {warm}; cold: exit {cold}", flush=True)
    return warm or cold


def main() -> int:
    commands = {"example": example, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())

"""gevent's own WSGI server: ``gevent.pywsgi.WSGIServer`` after ``monkey.patch_all()``.

Flask's "Deploying to Production" runs gevent from a small script that imports the
server and the app; the plugin ships that script (``pytest_flaskserve._child.
gevent_server``), so every spec form reaches it through the generated entry module. One
process, one greenlet per connection; the standard library is patched first, so an app
whose blocking calls misbehave under gevent shows it here. SIGTERM ends it at once
(exit -15: the docs' script installs no handler, and gevent has none of its own).
"""

from __future__ import annotations

from pytest_flaskserve.servers import register
from pytest_flaskserve.servers.shipped_script import ShippedScriptServer


@register
class Gevent(ShippedScriptServer):
    name = "gevent"
    description = "gevent.pywsgi.WSGIServer((HOST, PORT), app) after monkey.patch_all() (greenlets)"
    requires = "gevent"
    install_hint = "pip install 'pytest-flaskserve[gevent]'"
    entry = "pytest_flaskserve._child.gevent_server"
    serves_with = "gevent.pywsgi.WSGIServer"
    docs_page = "gevent"

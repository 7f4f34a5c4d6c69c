"""The entry point only the Procfile names: it wraps the app in the middleware the
production deployment has (a header saying who served the request)."""

from app import create_app


class ServedBy:
    def __init__(self, wsgi_app, name):
        self.wsgi_app, self.name = wsgi_app, name

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            return start_response(status, [*headers, ("X-Served-By", self.name)], exc_info)

        return self.wsgi_app(environ, start)


app = ServedBy(create_app(), "wsgi.py")

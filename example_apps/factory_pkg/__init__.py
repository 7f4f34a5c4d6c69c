"""An application factory package: create_app(config_name) like the Flask tutorial's flaskr.

Run it as a script with ``python -m factory_pkg`` (see ``__main__.py``).
"""

from flask import Flask

CONFIGS = {
    "default": {"GREETING": "hello from default"},
    "dev": {"GREETING": "hello from dev"},
    "test": {"GREETING": "hello from test", "TESTING": True},
    "prod": {"GREETING": "hello from prod"},
}


def create_app(config_name: str = "default", **overrides: object) -> Flask:
    if config_name not in CONFIGS:
        raise ValueError(f"unknown config {config_name!r}; choose from {sorted(CONFIGS)}")
    app = Flask(__name__)
    app.config.update(CONFIGS[config_name], CONFIG_NAME=config_name, **overrides)

    from .views import bp

    app.register_blueprint(bp)
    return app

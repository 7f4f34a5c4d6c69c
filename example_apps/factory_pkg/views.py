from flask import Blueprint, current_app, jsonify

bp = Blueprint("main", __name__)


@bp.get("/")
def index() -> str:
    return current_app.config["GREETING"]


@bp.get("/config")
def config() -> object:
    cfg = current_app.config
    return jsonify(name=cfg["CONFIG_NAME"], testing=bool(cfg.get("TESTING")))

"""The control API mounted by both apps under `/_emulator/` (EMULATOR.md §4)."""
from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from .clock import ClockError
from .config import ConfigError
from .faults import FaultError

if TYPE_CHECKING:
    from .sandbox import Sandbox


def _bad(message: str, status: int = 400) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def _json_body() -> dict:
    body = request.get_json(force=True, silent=True)
    if body is None and request.get_data():
        raise ValueError("the body must be JSON")
    if body is not None and not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body or {}


def _int_arg(name: str, default: int | None = None) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None


def token_refusal(sandbox: "Sandbox") -> tuple[Response, int] | None:
    """Every `/_emulator/` route of either app (the control blueprint and each app's inspection routes) needs the
    control token when one is set."""
    token = sandbox.config.get("control_token")
    if token and request.path.startswith("/_emulator/") and not hmac.compare_digest(
            request.headers.get("X-Emulator-Token", ""), token):
        return _bad("the control API needs the X-Emulator-Token header (--control-token)", 401)
    return None


def create_control_blueprint(sandbox: "Sandbox", app_name: str) -> Blueprint:
    bp = Blueprint(f"control_{app_name}", __name__, url_prefix="/_emulator")

    @bp.errorhandler(ValueError)
    def _value_error(exc: ValueError) -> tuple[Response, int]:
        return _bad(str(exc))

    @bp.get("/health")
    def health() -> Response:
        return jsonify(sandbox.health())

    @bp.post("/reset")
    def reset() -> Response:
        sandbox.reset()
        return jsonify({"reset": True, "clock": sandbox.clock.describe()})

    @bp.route("/clock", methods=["GET", "POST"])
    def clock() -> Any:
        if request.method == "POST":
            body = _json_body()
            moves = [k for k in ("advance", "set") if k in body]
            if len(moves) != 1 or set(body) - {"advance", "set"}:
                return _bad('send exactly one of {"advance": "31d"} or {"set": "2026-02-01T00:00:00Z"}')
            try:
                if "advance" in body:
                    sandbox.advance(body["advance"])
                else:
                    sandbox.set_time(body["set"])
            except ClockError as exc:
                return _bad(str(exc))
        return jsonify(sandbox.clock.describe())

    @bp.post("/flush")
    def flush() -> Response:
        return jsonify(sandbox.flush())

    @bp.route("/config", methods=["GET", "PUT"])
    def config() -> Any:
        if request.method == "PUT":
            try:
                sandbox.configure(_json_body())
            except ConfigError as exc:
                return _bad(str(exc))
        return jsonify(sandbox.config)

    @bp.route("/faults", methods=["GET", "PUT", "POST", "DELETE"])
    def faults() -> Any:
        if request.method in ("PUT", "POST"):
            body = request.get_json(force=True, silent=True)
            rules = body.get("faults") if isinstance(body, dict) and "faults" in body else body
            try:
                if request.method == "PUT":
                    sandbox.faults.set(rules if isinstance(rules, list) else [rules])
                else:
                    sandbox.faults.add(**rules) if isinstance(rules, dict) else sandbox.faults.set(
                        sandbox.faults.describe() + list(rules or []))
            except (FaultError, TypeError) as exc:
                return _bad(str(exc))
        elif request.method == "DELETE":
            sandbox.faults.clear()
        return jsonify({"faults": sandbox.faults.describe()})

    @bp.get("/requests")
    def requests_journal() -> Response:
        status = _int_arg("status")
        return jsonify({"requests": sandbox.journal.search(
            app=request.args.get("app"), method=request.args.get("method"), path=request.args.get("path"),
            status=status, limit=_int_arg("limit", 100) or 100)})

    return bp

"""The Braze app. Braze answers errors as `{"message": ...}` (SPEC.md §2 "Braze")."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, Response, jsonify

from ..webapp import create_base_app

if TYPE_CHECKING:
    from ..sandbox import Sandbox


def _error_body(status: int, message: str) -> dict:
    return {"message": {404: "Not Found", 405: "Method Not Allowed"}.get(status, message)}


def create_braze_app(sandbox: "Sandbox") -> Flask:
    app = create_base_app(sandbox, "braze", _error_body)

    @app.errorhandler(404)
    def not_found(_exc: Exception) -> tuple[Response, int]:
        return jsonify({"message": "Not Found"}), 404

    return app

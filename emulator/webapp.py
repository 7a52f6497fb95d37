"""What both Flask apps share: the request journal hook, JSON error handling and the control API mount."""
from __future__ import annotations

import logging
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable

from flask import Flask, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from . import jsonbody
from .faults import FAULT_MESSAGES

if TYPE_CHECKING:
    from .sandbox import Sandbox

ErrorBody = Callable[[int, str], dict]
log = logging.getLogger("emulator")


class _JSONProvider(DefaultJSONProvider):
    """`request.get_json()` with the lone-surrogate rule of every body the apps read (jsonbody.py)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return jsonbody.loads(s, **kwargs)


def create_base_app(sandbox: "Sandbox", name: str, error_body: ErrorBody,
                    rate_limited_headers: Callable[[float], dict[str, str]] | None = None) -> Flask:
    """A Flask app for one emulated service: journals every request, answers errors in the service's shape.
    `rate_limited_headers(retry_after)`: what the service adds to a 429 besides `Retry-After`."""
    from .control import create_control_blueprint, token_refusal

    app = Flask(f"emulator.{name}")
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.json = _JSONProvider(app)
    app.json.sort_keys = False
    app.extensions["sandbox"] = sandbox
    app.register_blueprint(create_control_blueprint(sandbox, name))

    @app.before_request
    def _control_token() -> tuple[Response, int] | None:
        return token_refusal(sandbox)

    @app.before_request
    def _start_timer_and_inject_faults() -> Response | None:
        g.started = time.perf_counter()
        if request.path.startswith("/_emulator/") or not sandbox.faults.rules:
            return None
        fault = sandbox.faults.draw(name, request.method, request.path)
        if fault is None:
            return None
        response = jsonify(fault.body if fault.body is not None else error_body(
            fault.status, fault.message or FAULT_MESSAGES.get(fault.status) or HTTP_STATUS_CODES.get(fault.status, "Error")))
        response.status_code = fault.status
        if fault.retry_after is not None:
            response.headers["Retry-After"] = f"{fault.retry_after:g}"
            if fault.status == 429 and rate_limited_headers is not None:
                response.headers.update(rate_limited_headers(fault.retry_after))
        response.headers["X-Emulator-Fault"] = "injected"
        return response

    @app.after_request
    def _reason_phrase(response: Response) -> Response:
        # RFC 9110's phrase ("400 Bad Request"), as Segment's and Braze's servers send it; werkzeug upper-cases it,
        # and clients show it in their errors (analytics-node: "[400] BAD REQUEST")
        code = response.status_code
        if code in HTTP_STATUS_CODES:
            response.status = f"{code} {HTTP_STATUS_CODES[code]}"
        return response

    @app.after_request
    def _journal(response: Response) -> Response:
        if request.path.startswith("/_emulator/"):
            return response  # the control plane does not fill the journal it serves
        body = g.pop("journal_body", None)
        if body is None and request.content_length:
            if request.content_length > request.max_content_length:
                body = f"[a body of {request.content_length:,} bytes, over the {request.max_content_length:,} read]"
            else:
                body = request.get_data(cache=True, as_text=True)
        response_body = None if response.direct_passthrough else response.get_data(as_text=True)
        sandbox.journal.record(
            app=name, method=request.method, path=request.path, query=request.query_string.decode("latin-1"),
            status=response.status_code, headers=dict(request.headers), request_body=body,
            response_body=response_body, duration_ms=(time.perf_counter() - g.get("started", time.perf_counter())) * 1000)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        original = getattr(exc, "original_exception", None)
        if status >= 500 and original is not None:  # an error Flask caught outside the view (an after_request hook)
            sandbox.internal_errors.append(f"{request.method} {request.path}: " + "".join(
                traceback.format_exception(type(original), original, original.__traceback__)))
        response = jsonify(error_body(status, exc.description or exc.name))
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response, status

    @app.errorhandler(Exception)
    def _internal_error(exc: Exception) -> tuple[Response, int]:
        # A 500 is always an emulator bug: keep it so the pytest plugin can fail the test that caused it.
        sandbox.internal_errors.append(f"{request.method} {request.path}: {traceback.format_exc()}")
        log.error("internal error on %s %s", request.method, request.path, exc_info=exc)
        return jsonify(error_body(500, f"emulator internal error: {type(exc).__name__}: {exc}")), 500

    return app

"""The Segment app: the Tracking API under `/v1/` and Segment's part of the control API."""
from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..webapp import create_base_app
from . import errors
from .errors import SegmentError
from .profile_api import ProfileApiError, create_profile_api_blueprint
from .engage.public_api import create_public_api_blueprint, error_body as public_api_error
from .tracking import ENDPOINTS, limit_for

if TYPE_CHECKING:
    from ..sandbox import Sandbox

# analytics.js posts from web pages: answer CORS like the real API so a browser sandbox works.
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding, X-Retry-Count",
    "Access-Control-Max-Age": "86400",
}


def _error_body(status: int, message: str) -> dict:
    """An error Flask answers itself (unknown path, wrong method, body too large), in the shape of the API the path
    belongs to: the Public API's `errors[]`, the Profile API's `error{}`, or the Tracking API's `{code, message}`."""
    path = request.path
    if path.startswith("/spaces/"):
        kind = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(status, "error")
        return public_api_error(kind, message)
    if path.startswith("/v1/spaces/"):  # the Profile API's own codes
        code = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found",
                405: "method_not_allowed", 413: "invalid_request_error"}.get(status, "api_error")
        return ProfileApiError(status, code, message).body()
    code = {400: "invalid_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
            413: "invalid_request"}.get(status, "internal_error" if status >= 500 else "error")
    if status == 405:
        return errors.METHOD_NOT_ALLOWED.body()
    return {"code": code, "message": message}


def _answer(body: dict, status: int) -> tuple[Response, int]:
    response = jsonify(body)
    response.headers.update(_CORS)
    return response, status


def _read_body(kind: str) -> bytes:
    """The request body, decompressed, refusing oversize bodies before they are read whole."""
    limit = limit_for(kind)
    if request.content_length is not None and request.content_length > limit and not _gzipped():
        raise errors.payload_too_large(request.content_length, limit)
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:  # compressed, and still past what the app reads at all: past any limit
        raise errors.payload_too_large(request.content_length or limit + 1, limit) from None
    if _gzipped():
        raw = _gunzip(raw, limit)
    return raw


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Every member of a gzip body (RFC 1952 allows several, as Go's reader does), at most `limit` + 1 bytes of it;
    a truncated member or bytes after the last one are not valid gzip."""
    out, rest = bytearray(), raw
    while True:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += decompressor.decompress(rest, limit + 1 - len(out))
        except zlib.error:
            raise errors.invalid_request("Content-Encoding is gzip but the body is not valid gzip") from None
        if len(out) > limit or decompressor.unconsumed_tail:
            raise errors.payload_too_large(max(len(out), limit + 1), limit)
        if not decompressor.eof:
            raise errors.invalid_request("Content-Encoding is gzip but the body is not valid gzip (it is cut short)")
        rest = decompressor.unused_data
        if not rest:
            return bytes(out)


def _gzipped() -> bool:
    return request.headers.get("Content-Encoding", "").strip().lower() == "gzip"


def create_segment_app(sandbox: "Sandbox") -> Flask:
    # Segment's 429: "Retry-After and X-RateLimit-Reset headers, which contains the number of seconds after which
    # you can retry" (segment-api.md §1)
    app = create_base_app(sandbox, "segment", _error_body,
                          lambda retry_after: {"X-RateLimit-Reset": f"{retry_after:g}"})
    tracking = sandbox.segment.tracking
    app.register_blueprint(create_profile_api_blueprint(sandbox))

    @app.route("/v1/<kind>", methods=["POST", "OPTIONS"])
    def tracking_api(kind: str) -> Any:
        if kind not in ENDPOINTS:
            return _answer(errors.NOT_FOUND.body() | {"message": f"No such endpoint: /v1/{kind}"}, 404)
        if request.method == "OPTIONS":
            return _answer({}, 200)
        try:
            raw = _read_body(kind)
            g.journal_body = raw.decode("utf-8", errors="replace")
            tracking.receive(kind, raw, authorization=request.headers.get("Authorization"),
                             host=request.host, path=request.path)
        except SegmentError as exc:
            return _answer(exc.body(), exc.status)
        return _answer(errors.SUCCESS_BODY, 200)

    @app.get("/_emulator/segment/debugger")
    def debugger() -> Response:
        args = request.args
        try:
            limit = int(args.get("limit", 100))
            before_id = int(args["before_id"]) if args.get("before_id") else None
        except ValueError:
            return jsonify({"error": "limit and before_id must be integers"}), 400
        entries = sandbox.segment.debugger(
            source=args.get("source"), status=args.get("status"), type=args.get("type"), event=args.get("event"),
            user_id=args.get("userId") or args.get("user_id"),
            anonymous_id=args.get("anonymousId") or args.get("anonymous_id"),
            message_id=args.get("messageId") or args.get("message_id"), text=args.get("q") or args.get("text"),
            before_id=before_id, limit=limit)
        return jsonify({"messages": entries, "count": len(entries)})

    app.register_blueprint(create_public_api_blueprint(sandbox))

    @app.get("/_emulator/segment/engage/debugger")
    def engage_debugger() -> Any:
        try:
            limit = int(request.args.get("limit", 100))
        except ValueError:
            return jsonify({"error": "limit must be an integer"}), 400
        messages = sandbox.engage.computations.messages(destination=request.args.get("destination"),
                                                        definition_key=request.args.get("key"), limit=limit)
        return jsonify({"messages": messages, "count": len(messages)})

    @app.get("/_emulator/segment/engage/audiences/<key>/members")
    def audience_members(key: str) -> Any:
        if sandbox.engage.computations.definitions.by_key("audience", key) is None:
            return jsonify({"error": f"no audience with key {key!r}"}), 404
        members = sandbox.engage.computations.members(key)
        return jsonify({"key": key, "members": members, "count": len(members)})

    @app.get("/_emulator/segment/deliveries")
    def deliveries() -> Any:
        args = request.args
        try:
            limit = int(args.get("limit", 100))
        except ValueError:
            return jsonify({"error": "limit must be an integer"}), 400
        try:
            entries = sandbox.segment.deliveries(destination=args.get("destination"),
                                                 message_id=args.get("messageId") or args.get("message_id"),
                                                 status=args.get("status") or args.get("outcome"), limit=limit)
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify({"deliveries": entries, "count": len(entries), "summary": sandbox.outbox.summary()})

    @app.errorhandler(404)
    def not_found(_exc: Exception) -> tuple[Response, int]:
        return jsonify(_error_body(404, f"No such endpoint: {request.method} {request.path}")), 404

    return app

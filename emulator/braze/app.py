"""The Braze app: the REST endpoints, partner cohorts and Braze's part of the control API.

Views are thin: authenticate, count the request against its rate-limit bucket, parse JSON, call one method of
`sandbox.braze`, shape the answer. Errors are `{"message": ...}` (SPEC.md §2 "Braze"); every answer outside
`/_emulator/` carries the `X-RateLimit-*` headers; `X-Emulator-Delivery-Id` makes a redelivery idempotent (see
`emulator/braze/auth.py`).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from flask import Flask, Response, g, jsonify, request

from .. import jsonbody
from ..webapp import create_base_app
from . import errors
from .auth import DELIVERY_HEADER
from .errors import BrazeError
from .segments import SegmentDefinitionError

if TYPE_CHECKING:
    from ..sandbox import Sandbox

_STATUS_MESSAGES = {404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large"}


def _error_body(status: int, message: str) -> dict:
    return {"message": _STATUS_MESSAGES.get(status, message)}


def _parse_json() -> tuple[Any, bool]:
    raw = request.get_data(cache=True)
    try:
        return jsonbody.loads(raw), True
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested thousands deep
        return None, False


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def rest_endpoint(sandbox: "Sandbox", handler: Callable[[Any], dict], status: int = 201, bucket: str = "default",
                  permission: str | None = None) -> Callable[[], Any]:
    """A Flask view for one Braze REST endpoint: key and permission (None: the handler authenticates from the
    body), rate limit, JSON object body, redelivery dedup; `handler(body)` returns the success body or raises
    BrazeError. Other Braze modules (campaigns, messages) add their endpoints with it:
    `app.add_url_rule(path, endpoint=path, methods=["POST"], view_func=rest_endpoint(sandbox, fn, 201, "default",
    "messages.send"))`."""
    auth = sandbox.braze.auth

    def answer(body: dict, code: int) -> tuple[Response, int]:
        return jsonify(body), code

    def view() -> Any:
        body, parsed = _parse_json()
        try:
            if permission is not None:
                key = _bearer() or (body.get("api_key") if isinstance(body, dict) else None)
                auth.authorize(key if isinstance(key, str) else None, permission)
            g.rate = auth.rate(bucket)
            if g.rate.limited:
                raise errors.RATE_LIMITED()
            if not parsed or not isinstance(body, dict):
                raise errors.INVALID_JSON()
        except BrazeError as exc:
            return answer(exc.body(), exc.status)
        delivery_id = request.headers.get(DELIVERY_HEADER)
        with sandbox.store.transaction():  # the answer to a delivery id is stored with its effects
            if delivery_id:
                stored = auth.delivered(delivery_id, request.path)
                if stored is not None:
                    return answer(stored[1], stored[0])
            try:
                result, code = handler(body), status
            except BrazeError as exc:
                result, code = exc.body(), exc.status
            if delivery_id:
                auth.remember(delivery_id, request.path, code, result)
        return answer(result, code)

    return view


def create_braze_app(sandbox: "Sandbox") -> Flask:
    # Braze's 429: no quota left, the window resetting at an epoch second (SPEC.md §2 "Braze")
    app = create_base_app(sandbox, "braze", _error_body, lambda retry_after: {
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(math.ceil(sandbox.clock.now().timestamp() + retry_after))})
    braze = sandbox.braze
    auth = braze.auth

    routes: list[tuple[str, Callable[[Any], dict], int, str, str | None]] = [
        ("/users/track", braze.users.track, 201, "users.track", "users.track"),
        ("/users/export/ids", braze.exporter.export_ids, 201, "users.export.ids", "users.export.ids"),
        ("/users/alias/new", braze.identity.alias_new, 201, "users.identity", "users.alias.new"),
        ("/users/identify", braze.identity.identify, 201, "users.identity", "users.identify"),
        ("/users/delete", braze.identity.delete, 201, "users.identity", "users.delete"),
        ("/users/merge", braze.identity.merge, 202, "users.identity", "users.merge"),
        ("/partners/segment/cohorts", braze.cohorts.upsert, 201, "partners.cohorts", None),
        ("/partners/segment/cohorts/users", braze.cohorts.change_users, 201, "partners.cohorts", None),
    ]
    for path, handler, status, bucket, permission in routes:
        app.add_url_rule(path, endpoint=path, methods=["POST"],
                         view_func=rest_endpoint(sandbox, handler, status, bucket, permission))

    @app.after_request
    def _rate_headers(response: Response) -> Response:
        if request.path.startswith("/_emulator/"):
            return response
        state = g.get("rate") or auth.rate("default", count=False)
        for name, value in state.headers().items():
            response.headers.setdefault(name, value)  # an injected 429's own reset stays
        return response

    @app.errorhandler(404)
    def not_found(_exc: Exception) -> tuple[Response, int]:
        return jsonify(errors.NOT_FOUND.body()), 404

    _control_routes(app, sandbox)
    return app


def _control_routes(app: Flask, sandbox: "Sandbox") -> None:
    """Braze's part of the control API: segments, cohorts and profiles, for tests and the dashboard."""
    braze = sandbox.braze

    def bad(message: str, status: int = 400) -> tuple[Response, int]:
        return jsonify({"error": message}), status

    @app.route("/_emulator/braze/segments", methods=["GET", "POST"])
    def segments() -> Any:
        if request.method == "POST":
            body, parsed = _parse_json()
            if not parsed:
                return bad("the body must be a JSON segment definition")
            try:
                return jsonify(braze.define_segment(body)), 201
            except SegmentDefinitionError as exc:
                return bad(str(exc))
        return jsonify({"segments": braze.segments.list()})

    @app.route("/_emulator/braze/segments/<path:name>", methods=["GET", "PUT", "DELETE"])
    def segment(name: str) -> Any:
        if name.endswith("/members") and request.method == "GET":
            name = name[: -len("/members")]
            if braze.segments.get(name) is None:
                return bad(f"no segment named {name!r}", 404)
            members = braze.segment_members(name)
            return jsonify({"name": name, "at": sandbox.clock.describe()["now"], "count": len(members),
                            "members": members})
        if request.method == "PUT":
            body, parsed = _parse_json()
            if not parsed or not isinstance(body, dict):
                return bad("the body must be a JSON segment definition")
            try:
                return jsonify(braze.define_segment({**body, "name": name}))
            except SegmentDefinitionError as exc:
                return bad(str(exc))
        if request.method == "DELETE":
            return (jsonify({"deleted": name}), 200) if braze.remove_segment(name) else \
                bad(f"no segment named {name!r}", 404)
        definition = braze.segments.get(name)
        return jsonify(definition) if definition is not None else bad(f"no segment named {name!r}", 404)

    @app.get("/_emulator/braze/cohorts")
    def cohorts() -> Response:
        return jsonify({"cohorts": braze.cohorts.list()})

    @app.get("/_emulator/braze/cohorts/<path:cohort>/members")
    def cohort_members(cohort: str) -> Response:
        members = braze.cohort_members(cohort)
        return jsonify({"cohort": cohort, "count": len(members), "members": members})

    @app.get("/_emulator/braze/users")
    def user() -> Any:
        args = request.args
        alias = (args["alias_name"], args["alias_label"]) if "alias_name" in args and "alias_label" in args else None
        given = {"external_id": args.get("external_id"), "braze_id": args.get("braze_id"), "alias": alias,
                 "email": args.get("email")}
        count = sum(v is not None for v in given.values())
        if count == 0:  # a page of profiles, for the dashboard
            try:
                limit, offset = int(args.get("limit", 100)), int(args.get("offset", 0))
            except ValueError:
                return bad("limit and offset must be integers")
            if not 0 < limit <= 1000 or offset < 0:
                return bad("limit must be 1..1000 and offset >= 0")
            rows = braze.profiles.list(limit, offset, args.get("q"))
            return jsonify({"users": rows, "count": len(rows), "total": braze.users_count(args.get("q"))})
        if count != 1:
            return bad("give one of external_id, braze_id, email, or alias_name with alias_label")
        profile = braze.user(given["external_id"], braze_id=given["braze_id"], alias=given["alias"],
                             email=given["email"])
        return jsonify(profile) if profile is not None else bad("no such user", 404)

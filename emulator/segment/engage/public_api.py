"""The Segment Public API subset for Engage: audiences and computed traits under `/spaces/{spaceId}/...`.

Shapes from the Public API SDKs (segment-query-language.md §1): `{"data": {...}}` on success,
`{"errors": [{"type", "message", "field"?}]}` on failure, Bearer token auth, `pagination.count` /
`pagination.cursor`. Both the current audience body (`audienceType`) and the legacy one (`definition.type`,
`options.includeAnonymousUsers`) are accepted. Destination connections are not part of these bodies (Segment
makes them in its app): set them in the configuration or with `sandbox.engage.computations.update(...)`.
"""
from __future__ import annotations

import hmac
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from flask import Blueprint, Response, jsonify, request

from .definitions import AUDIENCE, TRAIT, Definition, DefinitionError, lookback_option, snake_key

if TYPE_CHECKING:
    from ...sandbox import Sandbox

MAX_PAGE = 200


def error_body(type_: str, message: str, field: str | None = None) -> dict:
    """The Public API's error envelope."""
    error: dict[str, Any] = {"type": type_, "message": message}
    if field:
        error["field"] = field
    return {"errors": [error]}


def _errors(status: int, type_: str, message: str, field: str | None = None) -> tuple[Response, int]:
    return jsonify(error_body(type_, message, field)), status


def _summary(definition: Definition, space_id: str, size: int | None) -> dict:
    body: dict[str, Any] = {
        "id": definition.id, "spaceId": space_id, "name": definition.name, "key": definition.key,
        "enabled": definition.enabled, "status": ("Live" if definition.enabled else "Disabled"),
        "createdBy": "emulator", "updatedBy": "emulator",
        "createdAt": definition.created_at, "updatedAt": definition.updated_at,
    }
    if definition.description is not None:
        body["description"] = definition.description
    if definition.kind == AUDIENCE:
        body["definition"] = {"query": definition.query_text}
        body["audienceType"] = "USERS"
        body["computeCadence"] = {"type": "BATCH" if definition.is_batch else "REALTIME"}
        body["options"] = {"includeHistoricalData": definition.backfill,
                           "filterByExternalIds": list(definition.external_id_types)}
        if definition.lookback_days is not None:
            body["options"]["backfillEventDataDays"] = definition.lookback_days
        if size is not None:
            body["size"] = {"count": size, "type": "USERS"}
    else:
        body["definition"] = {"query": definition.query_text, "type": "USERS"}
        body["options"] = {"includeHistoricalData": definition.backfill,
                           "includeAnonymousUsers": definition.include_anonymous}
        if definition.lookback_days is not None:
            body["options"]["backfillDurationDays"] = definition.lookback_days
    return body


_PUBLIC_FIELDS = {"query": "definition.query", "external_id_types": "options.filterByExternalIds",
                  "backfill": "options.includeHistoricalData"}
# Each model's options (reference/segment-query-language.md §1.4 AudienceOptions, §1.6 TraitOptions); the lookback
# field differs: audiences say backfillEventDataDays, computed traits backfillDurationDays
_OPTIONS = {AUDIENCE: ("includeHistoricalData", "includeAnonymousUsers", "filterByExternalIds", "backfillEventDataDays"),
            TRAIT: ("includeHistoricalData", "includeAnonymousUsers", "backfillDurationDays")}
_LOOKBACK = {AUDIENCE: "backfillEventDataDays", TRAIT: "backfillDurationDays"}


def _check_options(kind: str, options: dict) -> None:
    unknown = [name for name in options if name not in _OPTIONS[kind]]
    if unknown:  # an option we would not apply is refused, never ignored (SPEC.md §3)
        raise DefinitionError(f"options.{unknown[0]} is not an option of this API (known: "
                              f"{', '.join(_OPTIONS[kind])})", f"options.{unknown[0]}")
    for flag in ("includeHistoricalData", "includeAnonymousUsers"):
        if flag in options and not isinstance(options[flag], bool):
            raise DefinitionError(f"options.{flag} must be true or false", f"options.{flag}")


def _lookback(kind: str, options: dict, backfill: Any) -> int | None:
    name = _LOOKBACK[kind]
    return lookback_option(options.get(name), backfill, f"options.{name}")


@contextmanager
def _public_field_names() -> Iterator[None]:
    """A refusal names the field as the Public API body spells it."""
    try:
        yield
    except DefinitionError as exc:
        exc.field = _PUBLIC_FIELDS.get(exc.field, exc.field)
        raise


def create_public_api_blueprint(sandbox: "Sandbox") -> Blueprint:
    bp = Blueprint("segment_public_api", __name__)
    computations = sandbox.engage.computations

    @bp.before_request
    def _auth() -> Any:
        header = request.headers.get("Authorization", "")
        token = sandbox.config["segment"]["space"]["public_api_token"]
        if not header.startswith("Bearer ") or not hmac.compare_digest(header[7:].strip(), token):
            return _errors(401, "unauthorized", "Unauthorized: a valid Public API token is required "
                                                "(Authorization: Bearer <token>)")
        space_id = (request.view_args or {}).get("space_id")
        if space_id is not None and space_id != sandbox.config["segment"]["space"]["id"]:
            return _errors(404, "not-found", f"Space {space_id} was not found")
        return None

    def body() -> dict:
        parsed = request.get_json(force=True, silent=True)
        if not isinstance(parsed, dict):
            raise DefinitionError("the body must be a JSON object")
        return parsed

    @bp.errorhandler(DefinitionError)
    def _refused(exc: DefinitionError) -> tuple[Response, int]:
        return _errors(400, "validation", exc.message, exc.field)

    def kind_of(collection: str) -> str:
        return AUDIENCE if collection == "audiences" else TRAIT

    def envelope(kind: str, definition: Definition) -> dict:
        size = computations.size(definition.key) if kind == AUDIENCE else None
        name = "audience" if kind == AUDIENCE else "computedTrait"
        return {"data": {name: _summary(definition, sandbox.config["segment"]["space"]["id"], size)}}

    def find(kind: str, definition_id: str) -> Definition | None:
        definition = computations.definitions.get(definition_id)
        return definition if definition is not None and definition.kind == kind else None

    def not_found(kind: str, definition_id: str) -> tuple[Response, int]:
        label = "Audience" if kind == AUDIENCE else "Computed Trait"
        return _errors(404, "not-found", f"{label} {definition_id} was not found")

    @bp.post("/spaces/<space_id>/<any(audiences, 'computed-traits'):collection>")
    def create(space_id: str, collection: str) -> Any:
        kind, data = kind_of(collection), body()
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise DefinitionError("name is required", "name")
        definition_body = data.get("definition")
        if not isinstance(definition_body, dict):
            raise DefinitionError("definition is required: {\"query\": \"...\"}", "definition")
        entity = data.get("audienceType") or definition_body.get("type") or "USERS"
        if not isinstance(entity, str) or entity.upper() not in ("USERS", "ACCOUNTS", "LINKED"):
            raise DefinitionError("audienceType must be one of USERS, ACCOUNTS, LINKED", "audienceType")
        if entity.upper() != "USERS":
            raise DefinitionError(f"{entity.upper()} {collection} are not supported by this emulator (USERS only)",
                                  "audienceType")
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise DefinitionError("options must be an object", "options")
        _check_options(kind, options)
        lookback = _lookback(kind, options, options.get("includeHistoricalData", True))
        if "enabled" in data and not isinstance(data["enabled"], bool):
            raise DefinitionError("enabled must be true or false", "enabled")
        with _public_field_names():
            definition = computations.create(
                kind, key=snake_key(name), name=name, query=definition_body.get("query"),
                description=data.get("description"), enabled=data.get("enabled", True),
                backfill=options.get("includeHistoricalData", True), lookback_days=lookback,
                include_anonymous=options.get("includeAnonymousUsers", False),
                external_id_types=options.get("filterByExternalIds"))
        return jsonify(envelope(kind, definition))

    @bp.get("/spaces/<space_id>/<any(audiences, 'computed-traits'):collection>")
    def list_(space_id: str, collection: str) -> Any:
        kind = kind_of(collection)
        try:
            count = int(request.args.get("pagination.count", MAX_PAGE))
            start = int(request.args.get("pagination.cursor") or 0)
        except ValueError:
            raise DefinitionError("pagination.count and pagination.cursor must be integers", "pagination") from None
        if start < 0:
            raise DefinitionError("pagination.cursor must be a cursor this API returned (0 or more)",
                                  "pagination.cursor")
        if not 1 <= count <= MAX_PAGE:
            raise DefinitionError(f"pagination.count must be from 1 to {MAX_PAGE}", "pagination.count")
        everything = computations.definitions.all(kind)
        page = everything[start:start + count]
        pagination: dict[str, Any] = {"current": str(start), "totalEntries": len(everything)}
        if start + count < len(everything):
            pagination["next"] = str(start + count)
        if start > 0:
            pagination["previous"] = str(max(0, start - count))
        name = "audiences" if kind == AUDIENCE else "computedTraits"
        items = [next(iter(envelope(kind, d)["data"].values())) for d in page]
        return jsonify({"data": {name: items, "pagination": pagination}})

    @bp.get("/spaces/<space_id>/<any(audiences, 'computed-traits'):collection>/<definition_id>")
    def get(space_id: str, collection: str, definition_id: str) -> Any:
        kind = kind_of(collection)
        definition = find(kind, definition_id)
        return jsonify(envelope(kind, definition)) if definition else not_found(kind, definition_id)

    @bp.patch("/spaces/<space_id>/<any(audiences, 'computed-traits'):collection>/<definition_id>")
    def update(space_id: str, collection: str, definition_id: str) -> Any:
        kind, data = kind_of(collection), body()
        current = find(kind, definition_id)
        if current is None:
            return not_found(kind, definition_id)
        if "audienceType" in data:
            raise DefinitionError("audienceType cannot be changed", "audienceType")
        definition_body = data.get("definition") or {}
        options = data.get("options") or {}
        if not isinstance(definition_body, dict) or not isinstance(options, dict):
            raise DefinitionError("definition and options must be objects", "definition")
        for field_name in ("name", "description"):
            if field_name in data and not isinstance(data[field_name], str):
                raise DefinitionError(f"{field_name} must be a string", field_name)
        if "enabled" in data and not isinstance(data["enabled"], bool):
            raise DefinitionError("enabled must be true or false", "enabled")
        _check_options(kind, options)
        if options.get("includeAnonymousUsers", current.include_anonymous) != current.include_anonymous:
            # segment-query-language.md §3.1: you can't "toggle anonymous users by editing; must recreate"
            raise DefinitionError("includeAnonymousUsers cannot be changed by editing (Segment: create a new "
                                  f"{'audience' if kind == AUDIENCE else 'computed trait'})",
                                  "options.includeAnonymousUsers")
        lookback = _lookback(kind, options, options.get("includeHistoricalData", current.backfill))
        with _public_field_names():
            definition = computations.update(
                definition_id, name=data.get("name"), description=data.get("description"),
                enabled=data.get("enabled"), query=definition_body.get("query"),
                backfill=options.get("includeHistoricalData"), lookback_days=lookback,
                external_id_types=options.get("filterByExternalIds"))
        return jsonify(envelope(kind, definition))

    @bp.delete("/spaces/<space_id>/<any(audiences, 'computed-traits'):collection>/<definition_id>")
    def delete(space_id: str, collection: str, definition_id: str) -> Any:
        kind = kind_of(collection)
        if find(kind, definition_id) is None:
            return not_found(kind, definition_id)
        computations.delete(definition_id)
        return jsonify({"data": {"status": "SUCCESS"}})

    return bp

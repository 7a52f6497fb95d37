"""The Segment Profile API (`/v1/spaces/<space>/collections/<collection>/profiles/<id>/<resource>`).

Facts: reference/segment-api.md §2.5 and segment-docs `src/unify/profile-api.md`. HTTP Basic auth with the
space's access token as the username (blank password); answers `{"traits"|"data"|"metadata": ..., "cursor":
{url, has_more, next, limit}}`; errors `{"error": {"code", "message"}}`. `ProfileApi` holds the rules and is
callable without HTTP; the blueprint only parses the request and shapes the answer.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Mapping

from flask import Blueprint, Response, jsonify, request

from ..apierror import CatalogueError
from ..clock import iso
from .engage import profiles as _profiles
from .engage.identity import extract_ids
from .tracking import parse_time, write_key_from_basic

if TYPE_CHECKING:
    from ..sandbox import Sandbox

EVENTS_WINDOW = timedelta(days=14)  # "Get up to 14 days of a profile's historical events"
# Traits: "By default, the response includes 10 traits. You can return up to 200"; other lists: limit
# "between 1 and 100"; links: "The return limit for the /links endpoint is 20 records".
LIMITS = {"traits": (10, 200), "external_ids": (10, 100), "events": (10, 100), "links": (20, 100)}
RESOURCES = {"users": ("traits", "external_ids", "events", "metadata", "links"),
             "accounts": ("traits", "external_ids", "metadata", "links")}
TRAIT_CLASSES = ("audience", "computed_trait", "trait")


@dataclass(eq=False)
class ProfileApiError(CatalogueError):
    status: int
    code: str
    message: str

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


UNAUTHENTICATED = ProfileApiError(401, "authentication_error", "No valid Access Token provided.")
PROFILE_NOT_FOUND = ProfileApiError(404, "not_found", "Profile was not found.")
SPACE_NOT_FOUND = ProfileApiError(404, "not_found", "Space was not found.")


def _invalid(message: str) -> ProfileApiError:
    return ProfileApiError(400, "invalid_request_error", message)


def _validation(message: str) -> ProfileApiError:
    return ProfileApiError(400, "validation_error", message)


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _invalid(f"The parameter `next` is not a valid cursor: {cursor!r}") from None


def _csv(args: Mapping[str, str], name: str) -> list[str] | None:
    raw = args.get(name)
    if raw is None:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


def _bool(args: Mapping[str, str], name: str) -> bool:
    raw = args.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise _invalid(f"The parameter `{name}` must be true or false, not {raw!r}")


def _limit(args: Mapping[str, str], resource: str) -> int:
    default, maximum = LIMITS[resource]
    raw = args.get("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise _invalid(f"The parameter `limit` must be an integer between 1 and {maximum}, not {raw!r}")
    return value


def _external_id(row: dict, *, verbose: bool = True) -> dict:
    out = {"source_id": row["source_id"], "collection": row["collection"], "id": row["id"], "type": row["type"],
           "created_at": row["created_at"], "encoding": "none"}
    if verbose and row.get("first_message_id") is not None:
        out["first_message_id"] = row["first_message_id"]
    return out


class ProfileApi:
    """The Profile API's rules over `sandbox.engage`'s tables."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox

    def authenticate(self, authorization: str | None) -> None:
        token = write_key_from_basic(authorization)
        if token is None or token != self.sandbox.config["segment"]["space"]["access_token"]:
            raise UNAUTHENTICATED()

    def get(self, space_id: str, collection: str, identifier: str, resource: str, args: Mapping[str, str],
            query_string: str = "") -> dict:
        """One GET; `args` are the query parameters. Raises ProfileApiError for 400/404."""
        if space_id != self.sandbox.config["segment"]["space"]["id"]:
            raise SPACE_NOT_FOUND()
        if not collection.replace("_", "").isalnum():
            bad = "".join(sorted({c for c in collection if not (c.isalnum() or c == "_")}))
            raise _validation(f"The parameter `collection` has invalid character(s) `{bad}`")
        if collection not in RESOURCES or resource not in RESOURCES[collection]:
            raise ProfileApiError(404, "not_found", f"No such route: collections/{collection}/profiles/"
                                  f"<identifier>/{resource}")
        if ":" not in identifier and not identifier.startswith(("use_", "acc_")):
            raise _validation(f"The identifier {identifier!r} must be of the form <type>:<value>, "
                              "for example user_id:u1234")
        id_type, _, value = identifier.partition(":")
        if ":" in identifier and (not id_type or not value):
            raise _validation(f"The identifier {identifier!r} must be of the form <type>:<value>")
        profile_id = _profiles.resolve(self.sandbox.store, identifier, collection)
        if profile_id is None:
            raise PROFILE_NOT_FOUND()
        url = f"/v1/spaces/{space_id}/collections/{collection}/profiles/{profile_id}/{resource}"
        if query_string:
            url += "?" + query_string
        return getattr(self, "_" + resource)(profile_id, collection, args, url)

    # --- resources ---------------------------------------------------------------------------------
    def _traits(self, profile_id: str, collection: str, args: Mapping[str, str], url: str) -> dict:
        limit = _limit(args, "traits")
        verbose = _bool(args, "verbose")
        cls = args.get("class") or None
        if cls is not None and cls not in TRAIT_CLASSES:
            raise _invalid(f"The parameter `class` must be audience or computed_trait, not {cls!r}")
        start = args.get("next") or None
        rows = _profiles.traits(self.sandbox.store, profile_id, cls=cls, include=_csv(args, "include"),
                                from_key=start, limit=limit + 1)
        more = len(rows) > limit
        traits = {}
        for row in rows[:limit]:
            traits[row["key"]] = ({"value": row["value"], "source_id": row["source_id"],
                                   "updated_at": row["updated_at"]} if verbose else row["value"])
        return {"traits": traits, "cursor": self._cursor(url, more, rows[limit]["key"] if more else "", limit)}

    def _external_ids(self, profile_id: str, collection: str, args: Mapping[str, str], url: str) -> dict:
        limit = _limit(args, "external_ids")
        _bool(args, "verbose")
        start = None
        if args.get("next"):
            raw = args["next"]
            if not raw.startswith("map_") or not raw[4:].isdigit():
                raise _invalid(f"The parameter `next` is not a valid cursor: {raw!r}")
            start = int(raw[4:])
        rows = _profiles.external_ids(self.sandbox.store, profile_id, include=_csv(args, "include"),
                                      from_cursor=start, limit=limit + 1)
        more = len(rows) > limit
        data = [_external_id(row) for row in rows[:limit]]
        return {"data": data, "cursor": self._cursor(url, more, f"map_{rows[limit]['cursor']}" if more else "", limit)}

    def _events(self, profile_id: str, collection: str, args: Mapping[str, str], url: str) -> dict:
        limit = _limit(args, "events")
        sort = (args.get("sort") or "desc").lower()
        if sort not in ("asc", "desc"):
            raise _invalid(f"The parameter `sort` must be asc or desc, not {args.get('sort')!r}")
        window_start = iso(self.sandbox.clock.now() - EVENTS_WINDOW)
        start = self._time(args, "start")
        start = max(start, window_start) if start else window_start
        end = self._time(args, "end")
        position = None
        if args.get("next"):
            timestamp, _, seq = _decode(args["next"]).rpartition("::")
            if not timestamp or not seq.isdigit():
                raise _invalid(f"The parameter `next` is not a valid cursor: {args['next']!r}")
            position = (timestamp, int(seq))
        rows = _profiles.events(self.sandbox.store, profile_id, start=start, end=end, include=_csv(args, "include"),
                                exclude=_csv(args, "exclude"), descending=sort == "desc",
                                from_position=position, limit=limit + 1)
        more = len(rows) > limit
        data = [self._event(message, profile_id) for message in rows[:limit]]
        nxt = _encode(f"{rows[limit]['timestamp']}::{rows[limit]['_seq']}") if more else ""
        return {"data": data, "cursor": self._cursor(url, more, nxt, limit)}

    def _metadata(self, profile_id: str, collection: str, args: Mapping[str, str], url: str) -> dict:
        _bool(args, "verbose")
        meta = _profiles.metadata(self.sandbox.store, profile_id) or {}
        return {"metadata": {"created_at": meta.get("created_at"), "updated_at": meta.get("updated_at"),
                             "expires_at": None, "first_message_id": meta.get("first_message_id"),
                             "first_source_id": meta.get("first_source_id"),
                             "last_message_id": meta.get("last_message_id"),
                             "last_source_id": meta.get("last_source_id")}}

    def _links(self, profile_id: str, collection: str, args: Mapping[str, str], url: str) -> dict:
        limit = _limit(args, "links")
        other = "accounts" if collection == "users" else "users"
        linked = _profiles.links(self.sandbox.store, profile_id, collection, limit=limit)
        return {"data": [{"to_collection": other,
                          "external_ids": [_external_id(row, verbose=False) for row in link["external_ids"]]}
                         for link in linked]}

    # --- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _cursor(url: str, has_more: bool, nxt: str, limit: int) -> dict:
        return {"url": url, "has_more": has_more, "next": nxt, "limit": limit}

    @staticmethod
    def _time(args: Mapping[str, str], name: str) -> str | None:
        raw = args.get(name)
        if raw is None or raw == "":
            return None
        parsed = parse_time(raw)
        if parsed is None:
            raise _invalid(f"The parameter `{name}` must be an ISO 8601 time, not {raw!r}")
        return iso(parsed)

    def _event(self, message: dict, profile_id: str) -> dict:
        item: dict[str, Any] = {
            "external_ids": [{"collection": "users", "type": t, "id": v, "encoding": "none"}
                             for t, v in extract_ids(message)],
            "context": message.get("context") or {},
            "type": message["type"],
            "message_id": message["messageId"],
            "source_id": message["_source"],
            "timestamp": message["timestamp"],
            "properties": message.get("properties") or {},
            "event": message.get("event"),
            "related": {"users": profile_id},
        }
        if message["type"] in ("identify", "group"):
            item["traits"] = message.get("traits") or {}
        if message["type"] in ("page", "screen") and message.get("name") is not None:
            item["name"] = message["name"]
        return item


def create_profile_api_blueprint(sandbox: "Sandbox") -> Blueprint:
    bp = Blueprint("profile_api", __name__)
    api = ProfileApi(sandbox)

    # <path:…> so that a value with an encoded slash (%2F) still reaches the lookup
    @bp.get("/v1/spaces/<space_id>/collections/<collection>/profiles/<path:identifier>/<resource>")
    def profile_resource(space_id: str, collection: str, identifier: str, resource: str) -> tuple[Response, int]:
        try:
            api.authenticate(request.headers.get("Authorization"))
            body, status = api.get(space_id, collection, identifier, resource, request.args,
                                   request.query_string.decode("latin-1")), 200
        except ProfileApiError as exc:
            body, status = exc.body(), exc.status
        response = jsonify(body)
        response.headers["Request-Id"] = sandbox.ids.uuid()
        return response, status

    return bp

"""Braze user profiles and `POST /users/track` (reference/braze-api.md §2), callable without HTTP.

`Profiles` is the table of profiles (one row each, standard fields and custom attributes as JSON, event and
purchase aggregates beside it). `UserTrack.track(body)` applies one `/users/track` body with Braze's rules:

- identifiers: one primary (`external_id`, `user_alias`, `braze_id`) per object, more is rejected; `email`, then
  `phone`, identify only when no primary is given, and an unknown email makes an email-only profile; with a
  primary, `email`/`phone` are attributes of the resolved profile;
- `_update_existing_only`: true never creates; omitted means false, except with `user_alias` where it means
  true (user_attributes_object.md);
- order inside a request: attributes, then events, then purchases (api_limits.md);
- every array holds at most 75 objects; a bad object is reported in `errors[{type, input_array, index}]` and
  the rest applied; nothing valid left is a 400.

The emulator applies synchronously what Braze queues (201): an export right after a track sees the change.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..store import contains_pattern
from . import errors
from .values import country_code, is_email, is_time_zone, parse_time, time_text, time_text_of

if TYPE_CHECKING:
    import sqlite3

    from ..sandbox import Sandbox

MAX_OBJECTS = 75
ARRAY_LIMIT = 25  # default max elements of a custom attribute array; oldest dropped (custom_attributes.md)
MAX_STRING = 255
MAX_NESTED_BYTES = 100 * 1024
MAX_EXTERNAL_ID_BYTES = 987
OCCURRENCE_DAYS = 30  # "X times in Y days" counters go back 30 days (custom_events.md)
PRIMARY = ("external_id", "user_alias", "braze_id")
SUBSCRIPTION_STATES = ("opted_in", "unsubscribed", "subscribed")
GENDERS = ("M", "F", "O", "N", "P")

IDENTIFIER_KEYS = {"external_id", "user_alias", "braze_id", "email", "phone", "_update_existing_only"}
# Profile ("standard") fields: everything else in an attributes object is a custom attribute.
STANDARD_FIELDS = (
    "first_name", "last_name", "email", "phone", "gender", "dob", "country", "home_city", "language", "time_zone",
    "email_subscribe", "push_subscribe", "email_open_tracking_disabled", "email_click_tracking_disabled",
    "current_location", "date_of_first_session", "date_of_last_session", "marked_email_as_spam_at",
    "image_url", "facebook", "twitter", "push_tokens", "subscription_groups",
)
# Accepted and not kept: `bio` "will not be processed as a custom attribute"; alias_* name an alias elsewhere.
IGNORED_FIELDS = {"bio", "alias_name", "alias_label", "push_token_import", "_merge_objects", "api_key"}
EVENT_KEYS = IDENTIFIER_KEYS | {"app_id", "name", "time", "properties"}
PURCHASE_KEYS = IDENTIFIER_KEYS | {"app_id", "product_id", "currency", "price", "quantity", "time", "properties"}


# The statements of one event or purchase; `_Writes` runs the same ones with executemany, in the same order.
EVENT_UPSERT = ("INSERT INTO braze_user_events (braze_id, name, count, first, last) VALUES (?, ?, 1, ?, ?) "
                "ON CONFLICT (braze_id, name) DO UPDATE SET count = count + 1, first = min(first, excluded.first), "
                "last = max(last, excluded.last)")
PURCHASE_UPSERT = (
    "INSERT INTO braze_user_purchases (braze_id, product_id, count, first, last, revenue) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (braze_id, product_id) DO UPDATE SET count = count + excluded.count, "
    "first = min(first, excluded.first), last = max(last, excluded.last), revenue = revenue + excluded.revenue")
OCCURRENCE_DELETE = "DELETE FROM braze_occurrences WHERE braze_id = ? AND kind = ? AND name = ? AND time < ?"
OCCURRENCE_INSERT = "INSERT INTO braze_occurrences (braze_id, kind, name, time, quantity) VALUES (?, ?, ?, ?, ?)"
USER_INSERT = ("INSERT INTO braze_users (braze_id, external_id, email, phone, random_bucket, created_at, updated_at, "
               "updated_seq, profile, custom, total_revenue) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
USER_SAVE = ("UPDATE braze_users SET external_id = ?, email = ?, phone = ?, updated_at = ?, updated_seq = ?, "
             "profile = ?, custom = ?, total_revenue = ? WHERE braze_id = ?")
USER_TOUCH = "UPDATE braze_users SET updated_at = ?, updated_seq = ? WHERE braze_id = ?"


def occurrence_horizon(now: datetime) -> str:
    """Occurrences older than this are out of every "in the last Y days" window."""
    return time_text(now - timedelta(days=OCCURRENCE_DAYS + 1))


class ObjectError(Exception):
    """One `/users/track` object refused; `type` is the `errors[].type` text."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.type = kind


class NestedValueError(ObjectError):
    """An invalid value (null, bad `$time`) inside a nested custom attribute: Braze then "drops all nested updates
    of the request" (reference/braze-api.md §2.2, FAQ); the object's other attributes still apply."""


# --- profiles -------------------------------------------------------------------------------------------
@dataclass
class Profile:
    braze_id: str
    external_id: str | None
    random_bucket: int
    created_at: str
    updated_at: str
    fields: dict = field(default_factory=dict)
    custom: dict = field(default_factory=dict)
    total_revenue: float = 0.0


class Profiles:
    """The profile table. Callers hold `store.transaction()` around writes."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox

    @property
    def conn(self) -> Any:
        return self.sandbox.store.conn

    def _one(self, sql: str, params: tuple) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    # lookups: each answers a braze_id or None
    def by_external_id(self, external_id: str) -> str | None:
        return self._one("SELECT braze_id FROM braze_users WHERE external_id = ?", (external_id,))

    def by_external_ids(self, external_ids: list[str]) -> dict[str, str]:
        """external_id -> braze_id for those of `external_ids` that name a profile, in a few SELECTs."""
        found: dict[str, str] = {}
        for _chunk, params in _padded_chunks(external_ids):
            found.update(self.conn.execute("SELECT external_id, braze_id FROM braze_users WHERE external_id IN "
                                           f"({', '.join('?' * len(params))})", params))
        return found

    def by_braze_id(self, braze_id: str) -> str | None:
        return self._one("SELECT braze_id FROM braze_users WHERE braze_id = ?", (braze_id,))

    def by_alias(self, alias_name: str, alias_label: str) -> str | None:
        return self._one("SELECT braze_id FROM braze_aliases WHERE alias_label = ? AND alias_name = ?",
                         (alias_label, alias_name))

    def by_email(self, email: str) -> str | None:
        # Several profiles with one email: the most recently updated with an external_id, else the most recently
        # updated (post_user_track FAQ).
        return self._one("SELECT braze_id FROM braze_users WHERE email = ? "
                         "ORDER BY external_id IS NULL, updated_seq DESC LIMIT 1", (email.lower(),))

    def by_phone(self, phone: str) -> str | None:
        return self._one("SELECT braze_id FROM braze_users WHERE phone = ? "
                         "ORDER BY external_id IS NULL, updated_seq DESC LIMIT 1", (phone,))

    def all_by(self, column: str, value: str) -> list[dict]:
        assert column in ("email", "phone")
        value = value.lower() if column == "email" else value
        return self.sandbox.store.query(
            f"SELECT braze_id, external_id, updated_seq FROM braze_users WHERE {column} = ? ORDER BY updated_seq DESC",
            (value,))

    def _next_seq(self) -> int:
        return (self._one("SELECT max(updated_seq) FROM braze_users", ()) or 0) + 1

    def new(self, external_id: str | None = None, fields: dict | None = None) -> Profile:
        """A profile not yet stored (`insert` stores it): braze_id and random_bucket from the sandbox RNG."""
        now = time_text(self.sandbox.clock.now())
        ids = self.sandbox.ids
        return Profile(braze_id=ids.hex(24), external_id=external_id, random_bucket=ids.randint(0, 9999),
                       created_at=now, updated_at=now, fields=dict(fields or {}))

    def insert(self, profile: Profile, alias: tuple[str, str] | None = None) -> Profile:
        self.conn.execute(
            USER_INSERT,
            (profile.braze_id, profile.external_id, _lower(profile.fields.get("email")), profile.fields.get("phone"),
             profile.random_bucket, profile.created_at, profile.updated_at, self._next_seq(),
             json.dumps(profile.fields), json.dumps(profile.custom), profile.total_revenue))
        if alias:
            self.add_alias(profile.braze_id, *alias)
        return profile

    def create(self, external_id: str | None = None, alias: tuple[str, str] | None = None,
               fields: dict | None = None) -> Profile:
        return self.insert(self.new(external_id, fields), alias)

    def load(self, braze_id: str) -> Profile | None:
        row = self.conn.execute(
            "SELECT braze_id, external_id, random_bucket, created_at, updated_at, profile, custom, total_revenue "
            "FROM braze_users WHERE braze_id = ?", (braze_id,)).fetchone()
        if row is None:
            return None
        return Profile(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), json.loads(row[6]), row[7])

    def save(self, profile: Profile) -> None:
        profile.updated_at = time_text(self.sandbox.clock.now())
        self.conn.execute(
            USER_SAVE,
            (profile.external_id, _lower(profile.fields.get("email")), profile.fields.get("phone"),
             profile.updated_at, self._next_seq(), json.dumps(profile.fields), json.dumps(profile.custom),
             profile.total_revenue, profile.braze_id))

    def touch(self, braze_id: str) -> None:
        self.conn.execute(USER_TOUCH, (time_text(self.sandbox.clock.now()), self._next_seq(), braze_id))

    def aliases(self, braze_id: str) -> list[dict]:
        rows = self.conn.execute("SELECT alias_name, alias_label FROM braze_aliases WHERE braze_id = ? "
                                 "ORDER BY rowid", (braze_id,)).fetchall()
        return [{"alias_name": name, "alias_label": label} for name, label in rows]

    def add_alias(self, braze_id: str, alias_name: str, alias_label: str) -> bool:
        """False when the alias names another profile, or this one already has an alias with that label."""
        owner = self.by_alias(alias_name, alias_label)
        if owner is not None:
            return owner == braze_id
        if self._one("SELECT 1 FROM braze_aliases WHERE braze_id = ? AND alias_label = ?", (braze_id, alias_label)):
            return False
        self.conn.execute("INSERT INTO braze_aliases (alias_label, alias_name, braze_id) VALUES (?, ?, ?)",
                          (alias_label, alias_name, braze_id))
        return True

    def delete(self, braze_id: str) -> None:
        for table in ("braze_users", "braze_aliases", "braze_user_events", "braze_user_purchases",
                      "braze_occurrences", "braze_cohort_members"):
            self.conn.execute(f"DELETE FROM {table} WHERE braze_id = ?", (braze_id,))

    def record_event(self, braze_id: str, name: str, at: str) -> None:
        self.conn.execute(EVENT_UPSERT, (braze_id, name, at, at))
        self._occurrence(braze_id, "event", name, at, 1)

    def record_purchase(self, braze_id: str, product_id: str, at: str, quantity: int, price: float) -> None:
        # "Braze treats quantity X as X purchases of 1" (purchase_object.md); no currency conversion.
        revenue = price * quantity
        self.conn.execute(PURCHASE_UPSERT, (braze_id, product_id, quantity, at, at, revenue))
        self.conn.execute("UPDATE braze_users SET total_revenue = total_revenue + ? WHERE braze_id = ?",
                          (revenue, braze_id))
        self._occurrence(braze_id, "purchase", product_id, at, quantity)

    def _occurrence(self, braze_id: str, kind: str, name: str, at: str, quantity: int) -> None:
        horizon = occurrence_horizon(self.sandbox.clock.now())
        if at >= horizon:
            # what fell out of the 30-day window since the last write goes, so the table stays small
            self.conn.execute(OCCURRENCE_DELETE, (braze_id, kind, name, horizon))
            self.conn.execute(OCCURRENCE_INSERT, (braze_id, kind, name, at, quantity))

    def events(self, braze_id: str) -> list[dict]:
        return self.sandbox.store.query("SELECT name, first, last, count FROM braze_user_events WHERE braze_id = ? "
                                        "ORDER BY name", (braze_id,))

    def purchases(self, braze_id: str) -> list[dict]:
        return self.sandbox.store.query("SELECT product_id AS name, first, last, count FROM braze_user_purchases "
                                        "WHERE braze_id = ? ORDER BY product_id", (braze_id,))

    def count(self, text: str | None = None) -> int:
        """Profiles, or those `text` matches (as `list` matches them)."""
        where, params = _matching(text)
        return self._one(f"SELECT count(*) FROM braze_users {where}", params)

    def list(self, limit: int = 100, offset: int = 0, text: str | None = None) -> list[dict]:
        """Profiles, most recently updated first; `text` matches external id, email, phone, braze_id or an alias."""
        where, params = _matching(text)
        return self.sandbox.store.query(
            f"SELECT braze_id, external_id, email, phone, created_at, updated_at FROM braze_users {where} "
            "ORDER BY updated_seq DESC LIMIT ? OFFSET ?", (*params, limit, offset))


def _matching(text: str | None) -> tuple[str, tuple]:
    if not text:
        return "", ()
    like = "LIKE ? ESCAPE '\\'"
    return (f"WHERE external_id {like} OR email {like} OR phone {like} OR braze_id {like} OR braze_id IN "
            f"(SELECT braze_id FROM braze_aliases WHERE alias_name {like})", (contains_pattern(text),) * 5)


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


# --- validation of one object ---------------------------------------------------------------------------
@dataclass(slots=True)
class Target:
    """Who an object is about: the identifier kind and value, and whether it may create a profile."""

    kind: str
    value: Any
    update_only: bool


def parse_target(obj: dict) -> Target:
    external_id = obj.get("external_id")
    if external_id is not None and obj.get("user_alias") is None and obj.get("braze_id") is None:
        # the common case, the checks below in the same order
        update_only = obj.get("_update_existing_only")
        if update_only is not None and not isinstance(update_only, bool):
            raise ObjectError(errors.not_valid("_update_existing_only"))
        if not isinstance(external_id, str) or not external_id:
            raise ObjectError(errors.not_valid("external_id"))
        # (encode() also raises on a lone surrogate, as before)
        if (len(external_id) if external_id.isascii() else len(external_id.encode())) > MAX_EXTERNAL_ID_BYTES:
            raise ObjectError(errors.EXTERNAL_ID_TOO_LARGE)
        return Target("external_id", external_id, False if update_only is None else update_only)
    primaries = [key for key in PRIMARY if obj.get(key) is not None]
    if len(primaries) > 1:
        raise ObjectError(errors.ONE_PRIMARY_IDENTIFIER)
    update_only = obj.get("_update_existing_only")
    if update_only is not None and not isinstance(update_only, bool):
        raise ObjectError(errors.not_valid("_update_existing_only"))
    if primaries:
        kind = primaries[0]
        value = obj[kind]
        if kind == "external_id":
            if not isinstance(value, str) or not value:
                raise ObjectError(errors.not_valid("external_id"))
            if len(value.encode()) > MAX_EXTERNAL_ID_BYTES:
                raise ObjectError(errors.EXTERNAL_ID_TOO_LARGE)
        elif kind == "user_alias":
            value = parse_alias(value)
            if value is None:
                raise ObjectError(errors.not_valid("user_alias"))
        elif not isinstance(value, str) or not value:
            raise ObjectError(errors.not_valid("braze_id"))
        # With `user_alias`, "Update Only" defaults to true (user_attributes_object.md).
        default = kind == "user_alias"
        return Target(kind, value, default if update_only is None else update_only)
    if obj.get("email") is not None:
        if not is_email(obj["email"]):
            raise ObjectError(errors.EMAIL_BAD_FORMAT)
        return Target("email", obj["email"], bool(update_only))
    if obj.get("phone") is not None:
        if not isinstance(obj["phone"], str) or not obj["phone"].strip():
            raise ObjectError(errors.not_valid("phone"))
        return Target("phone", obj["phone"], bool(update_only))
    raise ObjectError(errors.IDENTIFIER_REQUIRED)


def parse_alias(value: Any) -> tuple[str, str] | None:
    if not isinstance(value, dict):
        return None
    name, label = value.get("alias_name"), value.get("alias_label")
    if not (isinstance(name, str) and name and isinstance(label, str) and label):
        return None
    return name, label


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or _is_number(value)


_SKIP = object()  # a best-effort field Braze leaves unset (country it cannot map, unknown time zone)


def _standard(key: str, value: Any) -> Any:
    """The stored form of a profile field, `_SKIP`, or ObjectError."""
    if key in ("first_name", "last_name", "home_city", "image_url"):
        if not isinstance(value, str):
            raise ObjectError(errors.not_valid(key))
        return value
    if key == "email":
        if not is_email(value):
            raise ObjectError(errors.EMAIL_BAD_FORMAT)
        return value
    if key == "phone":
        if not isinstance(value, str) or not value.strip():
            raise ObjectError(errors.not_valid("phone"))
        return value
    if key == "gender":
        # M, F, O, N, P or nil; any other value (Segment passes "nonbinary" through) is left unset.
        if not isinstance(value, str):
            raise ObjectError(errors.not_valid("gender"))
        return value.upper() if value.upper() in GENDERS else _SKIP
    if key == "dob":
        time = parse_time(value) if isinstance(value, str) else None
        if time is None:
            raise ObjectError(errors.not_valid("dob"))
        return time.strftime("%Y-%m-%d")
    if key == "country":
        if not isinstance(value, str):
            raise ObjectError(errors.not_valid("country"))
        # "if the input doesn't match ... the country value is set to NULL" (user_attributes_object.md)
        return country_code(value)
    if key == "language":
        if not isinstance(value, str) or len(value.strip()) != 2 or not value.strip().isalpha():
            raise ObjectError(errors.not_valid("language"))
        return value.strip().lower()
    if key == "time_zone":
        if not isinstance(value, str):
            raise ObjectError(errors.not_valid("time_zone"))
        return value if is_time_zone(value) else _SKIP  # "Only valid time zone values are set"
    if key == "email_subscribe":
        if value not in SUBSCRIPTION_STATES:
            raise ObjectError(errors.BAD_EMAIL_SUBSCRIPTION_STATE)
        return value
    if key == "push_subscribe":
        if value not in SUBSCRIPTION_STATES:
            raise ObjectError(errors.BAD_PUSH_SUBSCRIPTION_STATE)
        return value
    if key in ("email_open_tracking_disabled", "email_click_tracking_disabled"):
        if not isinstance(value, bool):
            raise ObjectError(errors.not_valid(key))
        return value
    if key == "current_location":
        if (not isinstance(value, dict) or set(value) != {"latitude", "longitude"}
                or not all(_is_number(v) for v in value.values())
                or not -90 <= value["latitude"] <= 90 or not -180 <= value["longitude"] <= 180):
            raise ObjectError(errors.BAD_LOCATION_UPDATE)
        return {"longitude": value["longitude"], "latitude": value["latitude"]}
    if key in ("date_of_first_session", "date_of_last_session", "marked_email_as_spam_at"):
        text = time_text_of(value)
        if text is None:
            raise ObjectError(errors.not_valid(key))
        return text
    if key == "subscription_groups":
        return _subscription_groups(value)
    if key == "push_tokens":
        if not isinstance(value, list):
            raise ObjectError(errors.not_valid("push_tokens"))
        for token in value:
            if not isinstance(token, dict) or not isinstance(token.get("app_id"), str):
                raise ObjectError(errors.BAD_PUSH_TOKEN_APP_ID)
            if not isinstance(token.get("token"), str) or not token["token"]:
                raise ObjectError(errors.BAD_PUSH_TOKEN_STRING)
        return value
    if key in ("facebook", "twitter"):
        if not isinstance(value, dict):
            raise ObjectError(errors.not_valid(key))
        return value
    raise AssertionError(key)


def _subscription_groups(value: Any) -> list:
    if not isinstance(value, list):
        raise ObjectError(errors.BAD_SUBSCRIPTION_GROUP_ARRAY)
    for group in value:
        if not isinstance(group, dict):
            raise ObjectError(errors.BAD_SUBSCRIPTION_GROUP_HASH)
        if not isinstance(group.get("subscription_group_id"), str) or not group["subscription_group_id"]:
            raise ObjectError(errors.BAD_SUBSCRIPTION_GROUP_ID)
        if group.get("subscription_state") not in ("subscribed", "unsubscribed"):
            raise ObjectError(errors.BAD_SUBSCRIPTION_GROUP_STATE)
        if "use_double_opt_in_logic" in group and not isinstance(group["use_double_opt_in_logic"], bool):
            raise ObjectError(errors.BAD_SUBSCRIPTION_GROUP_HASH)
    return value


def _check_key(key: Any, nested: bool = False) -> None:
    if not isinstance(key, str) or not key or len(key) > MAX_STRING:
        raise ObjectError(f"'{str(key)[:64]}' is not a valid custom attribute name")
    if key.startswith("$") or (nested and (" " in key or "." in key or "$" in key)):
        raise ObjectError(f"'{key[:64]}' is not a valid custom attribute name")


def _custom_scalar(key: str, value: Any, in_array: bool = False) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ObjectError(f"'{key}' is longer than {MAX_STRING} characters")
        if in_array:
            return value  # arrays hold strings; only a top-level value is taken as a time
        text = time_text_of(value)  # date-like strings are stored as time (custom_attributes.md)
        return text if text is not None else value
    if isinstance(value, bool) or _is_number(value):
        return value
    raise ObjectError(errors.not_valid(key))


def _nested(key: str, value: Any, depth: int = 0) -> Any:
    """A nested value with `{"$time": ...}` turned into a time; one bad value refuses the object (FAQ)."""
    if depth > 50:
        raise ObjectError(f"'{key}' is nested too deeply")
    if isinstance(value, dict):
        if set(value) == {"$time"}:
            text = time_text_of(value["$time"])
            if text is None:
                raise NestedValueError(f"'{key}' has an invalid $time value")
            return text
        out = {}
        for sub, item in value.items():
            _check_key(sub, nested=True)
            out[sub] = _nested(key, item, depth + 1)
        return out
    if isinstance(value, list):
        return [_nested(key, item, depth + 1) for item in value]
    if value is None:
        raise NestedValueError(f"'{key}' has a null inside a nested object")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise ObjectError(f"'{key}' has a value longer than {MAX_STRING} characters")
    if not _is_scalar(value):
        raise ObjectError(errors.not_valid(key))
    return value


def _json_size(value: Any, what: str) -> int:
    try:
        return len(json.dumps(value))
    except RecursionError:
        raise ObjectError(f"{what} is nested too deeply") from None


def _check_size(key: str, value: Any) -> None:
    if _json_size(value, f"'{key}'") > MAX_NESTED_BYTES:
        raise ObjectError(f"'{key}' is larger than 100 KB")


def _identifier_spec(key: str, item: Any, with_new_object: bool) -> dict:
    if (not isinstance(item, dict) or not isinstance(item.get("$identifier_key"), str)
            or "$identifier_value" not in item or not _is_scalar(item["$identifier_value"])):
        raise ObjectError(f"'{key}' needs objects with '$identifier_key' and '$identifier_value'")
    if with_new_object:
        if not isinstance(item.get("$new_object"), dict):
            raise ObjectError(f"'{key}' $update needs a '$new_object' object")
        return {"key": item["$identifier_key"], "value": item["$identifier_value"],
                "new": _nested(key, item["$new_object"])}
    return {"key": item["$identifier_key"], "value": item["$identifier_value"]}


def parse_custom(key: str, value: Any, merge_objects: bool) -> tuple:
    """One custom attribute write as an operation tuple."""
    _check_key(key)
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:  # the common case, as at the end
        return ("set", key, _custom_scalar(key, value))
    if value is None:
        return ("unset", key)
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            items = [_nested(key, item) for item in value]
            _check_size(key, items)
            return ("set", key, items)
        if not all(_is_scalar(item) for item in value):
            raise ObjectError(f"'{key}' must be an array of strings, numbers and booleans, or of objects")
        return ("set", key, _dedupe([_custom_scalar(key, item, True) for item in value])[-ARRAY_LIMIT:])
    if isinstance(value, dict):
        keys = set(value)
        if keys == {"inc"}:  # increment: the key is `inc`, no `$` (user_attributes_object.md)
            if not _is_number(value["inc"]):
                raise ObjectError(f"'{key}' inc must be a number")
            return ("inc", key, value["inc"])
        if keys and keys <= {"add", "remove"}:
            ops = {}
            for op in ("add", "remove"):
                items = value.get(op, [])
                if not isinstance(items, list) or not all(_is_scalar(item) for item in items):
                    raise ObjectError(f"'{key}' {op} must be an array of strings, numbers and booleans")
                ops[op] = [_custom_scalar(key, item, True) for item in items]
            return ("add_remove", key, ops["add"], ops["remove"])
        if keys and keys <= {"$add", "$remove", "$update"}:
            ops = {}
            for op in ("$add", "$remove", "$update"):
                items = value.get(op, [])
                if not isinstance(items, list):
                    raise ObjectError(f"'{key}' {op} must be an array")
                if op == "$add":
                    if not all(isinstance(item, dict) for item in items):
                        raise ObjectError(f"'{key}' $add must be an array of objects")
                    ops[op] = [_nested(key, item) for item in items]
                else:
                    ops[op] = [_identifier_spec(key, item, op == "$update") for item in items]
            if ops["$update"] and not merge_objects:
                raise ObjectError(f"'{key}' $update needs '_merge_objects': true")
            return ("object_array", key, ops["$add"], ops["$remove"], ops["$update"])
        if keys == {"$time"}:
            text = time_text_of(value["$time"])
            if text is None:
                raise ObjectError(f"'{key}' has an invalid $time value")
            return ("set", key, text)
        nested = _nested(key, value)
        _check_size(key, nested)
        return ("merge" if merge_objects else "set", key, nested)
    return ("set", key, _custom_scalar(key, value))


def _same(a: Any, b: Any) -> bool:
    """Equal as Braze's array values are: true is not 1, false is not 0 (Python's == says they are)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _dedupe(items: list) -> list:
    out: list = []
    for item in items:
        out = [kept for kept in out if not _same(kept, item)]  # adding an existing value moves it to the end
        out.append(item)
    return out


def _deep_merge(base: Any, new: Any) -> Any:
    if isinstance(base, dict) and isinstance(new, dict):
        merged = dict(base)
        for key, value in new.items():
            merged[key] = _deep_merge(base.get(key), value)
        return merged
    return copy.deepcopy(new)


_IGNORED, _STANDARD = "ignored", "standard"
# What a key of an attributes object is, in one lookup: ignored (IGNORED_FIELDS, the identifiers), a standard
# field, or (absent) a custom attribute.
_ATTRIBUTE_ROLES = {**{key: _STANDARD for key in STANDARD_FIELDS},
                    **{key: _IGNORED for key in (*IGNORED_FIELDS, "_update_existing_only", *PRIMARY)}}


def parse_attributes(obj: dict) -> tuple[Target, list[tuple]]:
    target = parse_target(obj)
    merge_objects = obj.get("_merge_objects", False)
    if not isinstance(merge_objects, bool):
        raise ObjectError(errors.not_valid("_merge_objects"))
    ops: list[tuple] = []
    for key, value in obj.items():
        role = _ATTRIBUTE_ROLES.get(key)
        if role is _IGNORED:
            continue  # (and the identifier itself: an alias can't be removed or changed here)
        if role is _STANDARD:
            if value is None:
                ops.append(("std_unset", key))
                continue
            stored = _standard(key, value)
            if stored is not _SKIP:
                ops.append(("std", key, stored) if stored is not None else ("std_unset", key))
            continue
        try:
            ops.append(parse_custom(key, value, merge_objects))
        except NestedValueError:
            ops.append(_DROP_NESTED)  # marks the request: its nested updates are all dropped (track)
    return target, ops


_DROP_NESTED = ("drop_nested",)


def _is_nested_update(op: tuple) -> bool:
    if op[0] in ("merge", "object_array", "drop_nested"):
        return True
    value = op[2] if op[0] == "set" else None
    return isinstance(value, dict) or (isinstance(value, list) and bool(value) and isinstance(value[0], dict))


def apply_attribute_ops(profile: Profile, ops: list[tuple]) -> None:
    custom = profile.custom
    for op in ops:
        kind, key = op[0], op[1]
        if kind == "std":
            profile.fields[key] = op[2]
        elif kind == "std_unset":
            profile.fields.pop(key, None)
        elif kind == "unset":
            custom.pop(key, None)
        elif kind == "set":
            custom[key] = op[2]
        elif kind == "merge":
            custom[key] = _deep_merge(custom.get(key) if isinstance(custom.get(key), dict) else {}, op[2])
        elif kind == "inc":
            current = custom.get(key)
            custom[key] = (current if _is_number(current) else 0) + op[2]
        elif kind == "add_remove":
            current = list(custom.get(key)) if isinstance(custom.get(key), list) else []
            if op[3]:
                current = [item for item in current if not any(_same(item, gone) for gone in op[3])]
            custom[key] = _dedupe(current + op[2])[-ARRAY_LIMIT:]
        elif kind == "object_array":
            current = [item for item in custom.get(key, []) if isinstance(item, dict)] \
                if isinstance(custom.get(key), list) else []
            for spec in op[3]:  # $remove removes every matching object
                current = [item for item in current if not _same(item.get(spec["key"]), spec["value"])]
            for spec in op[4]:
                current = [_deep_merge(item, spec["new"]) if _same(item.get(spec["key"]), spec["value"]) else item
                           for item in current]
            custom[key] = current + op[2]


def _properties(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ObjectError(errors.not_valid("properties"))
    # `size` bounds len(json.dumps(value)) without making it while the values are flat and plain JSON types: each
    # character at most 12 (a `\ud83d\ude00` pair), each number at most 25; otherwise json.dumps measures (and
    # raises on what is not JSON) as before.
    size = 2
    for key, item in value.items():
        if not key or len(key) > MAX_STRING or key.startswith("$"):
            raise ObjectError(f"'{key[:64]}' is not a valid property name")
        if key in ("time", "event_name"):  # reserved: "will result in API errors" (event_object.md)
            raise ObjectError(f"'{key}' is a reserved property name")
        kind = type(item)
        if kind is str:
            if len(item) > MAX_STRING:
                raise ObjectError(f"property '{key}' is longer than {MAX_STRING} characters")
            size += 12 * len(item) + 8
        elif isinstance(item, str):
            if len(item) > MAX_STRING:
                raise ObjectError(f"property '{key}' is longer than {MAX_STRING} characters")
            size = _UNKNOWN
        elif kind is float or kind is bool or item is None:
            size += 31
        elif kind is int and -10**18 < item < 10**18:
            size += 26
        else:
            size = _UNKNOWN  # nested, a huge int, or not JSON at all
        if type(key) is not str:
            size = _UNKNOWN
        size += 12 * len(key)  # and 6 above: quotes, ": " and ", "
    if size > MAX_NESTED_BYTES and _json_size(value, "'properties'") > MAX_NESTED_BYTES:
        raise ObjectError("'properties' is larger than 100 KB")
    return value


_UNKNOWN = MAX_NESTED_BYTES + 1  # a size bound that sends `_properties` to json.dumps


def _occurred(obj: dict, now_text: str) -> str:
    text = time_text_of(obj.get("time"))
    if text is None:
        raise ObjectError(errors.not_valid("time"))
    return min(text, now_text)  # "times in the future default to the current time"


def _unknown_keys(obj: dict, allowed: set) -> None:
    if allowed.issuperset(obj):
        return
    for key in obj:
        if key not in allowed:
            raise ObjectError(f"'{str(key)[:64]}' is not a valid field")


def parse_event(obj: dict, now_text: str) -> tuple[Target, dict]:
    target = parse_target(obj)
    _unknown_keys(obj, EVENT_KEYS)
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_STRING:
        raise ObjectError(errors.not_valid("name"))
    if obj.get("app_id") is not None and not isinstance(obj["app_id"], str):
        raise ObjectError(errors.not_valid("app_id"))
    _properties(obj.get("properties"))
    return target, {"name": name, "time": _occurred(obj, now_text)}


def parse_purchase(obj: dict, now_text: str) -> tuple[Target, dict]:
    target = parse_target(obj)
    _unknown_keys(obj, PURCHASE_KEYS)
    product = obj.get("product_id")
    if not isinstance(product, str) or not product or len(product) > MAX_STRING:
        raise ObjectError(errors.not_valid("product_id"))
    currency = obj.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise ObjectError(errors.not_valid("currency"))
    if not _is_number(obj.get("price")):
        raise ObjectError(errors.not_valid("price"))
    quantity = obj.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 100:
        raise ObjectError(errors.not_valid("quantity"))
    if obj.get("app_id") is not None and not isinstance(obj["app_id"], str):
        raise ObjectError(errors.not_valid("app_id"))
    _properties(obj.get("properties"))
    return target, {"product_id": product, "price": float(obj["price"]), "quantity": quantity,
                    "time": _occurred(obj, now_text)}


# --- /users/track -----------------------------------------------------------------------------------------
ARRAYS = ("attributes", "events", "purchases")
_PARSERS: dict[str, Callable[[dict, str], tuple]] = {
    "attributes": lambda obj, _now_text: parse_attributes(obj), "events": parse_event, "purchases": parse_purchase}
# Lengths the variable lists of a statement are padded to (repeating an item), so a handful of statements are
# prepared once and then found in the connection's statement cache.
_PAD_SIZES = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
_ROW_COLUMNS = "SELECT external_id, total_revenue, profile, custom, braze_id, email, phone, rowid FROM braze_users"


def _padded(items: list) -> list:
    size = next(n for n in _PAD_SIZES if n >= len(items))
    return items + [items[-1]] * (size - len(items))


def _padded_chunks(values: Iterable) -> Iterator[tuple[list, list]]:
    """`values` without repeats, cut for `IN (...)` lists: (chunk, its parameters padded to a cached length)."""
    wanted = list(dict.fromkeys(values))
    for start in range(0, len(wanted), _PAD_SIZES[-1]):
        chunk = wanted[start:start + _PAD_SIZES[-1]]
        yield chunk, _padded(chunk)


class _Row:
    """A `braze_users` row as the request has left it so far. `fields`/`custom` are parsed on first use (an
    event or purchase only needs updated_at, updated_seq and total_revenue); `texts` are their JSON as stored."""

    __slots__ = ("braze_id", "external_id", "revenue", "texts", "contact", "fields", "custom", "parsed", "stored",
                 "fields_changed", "custom_changed", "seq", "random_bucket", "rowid")

    def __init__(self, braze_id: str, external_id: str | None, revenue: float, texts: tuple[str, str],
                 stored: bool, contact: tuple = (None, None)) -> None:
        self.braze_id = braze_id
        self.external_id = external_id
        self.revenue = revenue
        self.texts = texts
        self.contact = contact  # the email and phone columns as stored
        self.fields: dict = {}
        self.custom: dict = {}
        self.parsed = not stored
        self.stored = stored  # in the table already (else INSERT at flush)
        # changed since the last flush (else the stored text is written again: no json.dumps)
        self.fields_changed = self.custom_changed = not stored
        self.seq = 0
        self.random_bucket = 0
        self.rowid: int | None = None  # the UPDATEs find the row by rowid (no braze_id index lookup)


class _Writes:
    """The writes of one `/users/track` request for objects naming an external_id, run at `flush()`.

    Exactly what the object-by-object statements leave, with fewer statements: updated_seq is handed out from
    one `max(updated_seq)` in the same order (every insert, save and touch took max + 1); a row's final
    profile/custom/updated_*/total_revenue are written once (total_revenue summed in the same order, so the same
    float); new rows are inserted in creation order (same rowids); event, purchase and occurrence statements are
    the same statements in the same order through executemany. `created_at`/`updated_at` are the request's
    time (a manual clock is the same at every write anyway; a real-time one differs by the request's duration).
    """

    def __init__(self, conn: "sqlite3.Connection", profiles: Profiles, now: datetime) -> None:
        self.profiles = profiles
        self.conn = conn
        self.now_text = time_text(now)
        self.horizon = occurrence_horizon(now)
        self.seq: int | None = None  # the last updated_seq handed out; read from the table when first needed
        self.ids: dict[str, str | None] = {}  # external_id -> braze_id (None: no such profile)
        self.fetched: dict[str, tuple] = {}  # braze_id -> its `_ROW_COLUMNS` as read, until `find` takes it
        self.rows: dict[str, _Row] = {}
        self.dirty: dict[str, _Row] = {}  # insertion order: new rows in creation order
        self.events: list[tuple] = []
        self.purchases: list[tuple] = []
        self.occurrences: list[tuple] = []

    # --- reading -------------------------------------------------------------------------------------
    def prefetch(self, external_ids: list[str]) -> None:
        """One SELECT for every external id of the request (instead of one per object)."""
        for chunk, params in _padded_chunks(external_ids):
            for value in chunk:
                self.ids[value] = None
            for row in self.conn.execute(f"{_ROW_COLUMNS} WHERE external_id IN ({', '.join('?' * len(params))})",
                                         params):
                self.ids[row[0]] = row[4]
                self.fetched[row[4]] = row

    def find(self, external_id: str) -> _Row | None:
        braze_id = self.ids[external_id]  # prefetch looked every external id of the request up
        if braze_id is None:
            return None
        row = self.rows.get(braze_id)
        if row is None:
            data = self.fetched.pop(braze_id, None)
            if data is None:
                data = self.conn.execute(f"{_ROW_COLUMNS} WHERE braze_id = ?", (braze_id,)).fetchone()
            row = self.rows[braze_id] = _Row(braze_id, data[0], data[1], (data[2], data[3]), True, data[5:7])
            row.rowid = data[7]
        return row

    def attributes(self, row: _Row, ops: list[tuple]) -> None:
        """An attributes object on a stored profile: `Profiles.load`, `apply_attribute_ops`, `Profiles.save`."""
        if not row.parsed:
            row.fields, row.custom = json.loads(row.texts[0]), json.loads(row.texts[1])
            row.parsed = True
        fields = row.fields
        for op in ops:
            kind = op[0]
            if kind == "std":
                # setting a string field to the string it holds changes nothing (not even the key order)
                current = fields.get(op[1])
                if not (type(current) is str and type(op[2]) is str and current == op[2]):
                    row.fields_changed = True
            elif kind == "std_unset":
                if op[1] in fields:
                    row.fields_changed = True
            else:
                row.custom_changed = True
        apply_attribute_ops(row, ops)
        self.bump(row)

    # --- writing -------------------------------------------------------------------------------------
    def bump(self, row: _Row) -> None:
        """An insert, save or touch of the row: the next updated_seq."""
        if self.seq is None:
            self.seq = self.conn.execute("SELECT max(updated_seq) FROM braze_users").fetchone()[0] or 0
        self.seq += 1
        row.seq = self.seq
        self.dirty[row.braze_id] = row

    def create(self, external_id: str) -> _Row:
        """A new profile (its braze_id and random_bucket drawn by `Profiles.new`), counted as inserted."""
        profile = self.profiles.new(external_id)
        braze_id = profile.braze_id
        row = _Row(braze_id, external_id, 0.0, ("{}", "{}"), False)
        row.random_bucket = profile.random_bucket
        self.ids[external_id] = braze_id
        self.rows[braze_id] = row
        self.bump(row)
        return row

    def event(self, row: _Row, name: str, at: str) -> None:
        self.events.append((row.braze_id, name, at, at))
        if at >= self.horizon:
            self.occurrences.append((row.braze_id, "event", name, at, 1))

    def purchase(self, row: _Row, product_id: str, at: str, quantity: int, price: float) -> None:
        revenue = price * quantity  # as `Profiles.record_purchase`
        self.purchases.append((row.braze_id, product_id, quantity, at, at, revenue))
        row.revenue = row.revenue + revenue
        if at >= self.horizon:
            self.occurrences.append((row.braze_id, "purchase", product_id, at, quantity))

    def flush(self) -> None:
        conn, now_text = self.conn, self.now_text
        if self.dirty:
            inserts, saves, saves_contact, touches = [], [], [], []
            for row in self.dirty.values():
                if row.fields_changed or row.custom_changed:
                    row.texts = (json.dumps(row.fields) if row.fields_changed else row.texts[0],
                                 json.dumps(row.custom) if row.custom_changed else row.texts[1])
                    contact = (_lower(row.fields.get("email")), row.fields.get("phone"))
                    if not row.stored:
                        inserts.append((row.braze_id, row.external_id, *contact, row.random_bucket, now_text,
                                        now_text, row.seq, *row.texts, row.revenue))
                    else:
                        # external_id never changes here; email/phone are set only when they do (fewer index writes)
                        save = (now_text, row.seq, *row.texts, row.revenue, self._rowid(row))
                        if contact == row.contact:
                            saves.append(save)
                        else:
                            saves_contact.append(contact + save)
                    row.contact = contact
                else:
                    touches.append((now_text, row.seq, row.revenue, self._rowid(row)))
                row.stored = True
                row.fields_changed = row.custom_changed = False
            if inserts:
                conn.executemany(USER_INSERT, inserts)
            if saves:
                conn.executemany("UPDATE braze_users SET updated_at = ?, updated_seq = ?, profile = ?, custom = ?, "
                                 "total_revenue = ? WHERE rowid = ?", saves)
            if saves_contact:
                conn.executemany("UPDATE braze_users SET email = ?, phone = ?, updated_at = ?, updated_seq = ?, "
                                 "profile = ?, custom = ?, total_revenue = ? WHERE rowid = ?", saves_contact)
            if touches:
                conn.executemany("UPDATE braze_users SET updated_at = ?, updated_seq = ?, total_revenue = ? "
                                 "WHERE rowid = ?", touches)
            self.dirty = {}
        if self.events:
            conn.executemany(EVENT_UPSERT, self.events)
            self.events = []
        if self.purchases:
            conn.executemany(PURCHASE_UPSERT, self.purchases)
            self.purchases = []
        if self.occurrences:
            self._flush_occurrences()

    def _rowid(self, row: _Row) -> int:
        if row.rowid is None:  # inserted by an earlier flush of this request
            row.rowid = self.conn.execute("SELECT rowid FROM braze_users WHERE braze_id = ?",
                                          (row.braze_id,)).fetchone()[0]
        return row.rowid

    def _flush_occurrences(self) -> None:
        """Each occurrence was `DELETE` (rows of its key older than the horizon), then `INSERT`. New rows are never
        older than the horizon, so only a key's first DELETE can remove anything; one query finds the keys that
        have such rows, and the rest (nearly always all) is a plain executemany of the INSERTs."""
        old: set = set()
        for _chunk, keys in _padded_chunks(occurrence[:3] for occurrence in self.occurrences):
            values = ", ".join(["(?, ?, ?)"] * len(keys))
            old.update(self.conn.execute(
                f"WITH k(b, kd, n) AS (VALUES {values}) SELECT DISTINCT o.braze_id, o.kind, o.name FROM k "
                "JOIN braze_occurrences o ON o.braze_id = k.b AND o.kind = k.kd AND o.name = k.n AND o.time < ?",
                [item for key in keys for item in key] + [self.horizon]))
        if not old:
            self.conn.executemany(OCCURRENCE_INSERT, self.occurrences)
        else:  # the same statements in the same order (a DELETE can free the highest id the next INSERT reuses)
            for occurrence in self.occurrences:
                if occurrence[:3] in old:
                    old.discard(occurrence[:3])
                    self.conn.execute(OCCURRENCE_DELETE, (*occurrence[:3], self.horizon))
                self.conn.execute(OCCURRENCE_INSERT, occurrence)
        self.occurrences = []

    def find_or_create(self, target: Any) -> "_Row | None":
        """The profile of an external_id target, created unless the object only updates existing users."""
        row = self.find(target.value)
        if row is None and not target.update_only:
            row = self.create(target.value)
        return row

    def slow(self, apply_one: Callable[[], str | None]) -> None:
        """Run one object the slow way (straight SQL, which reads the table as it is: flushed first); forget what
        was read of the profile it wrote, and the updated_seq count, which it moved."""
        self.flush()
        braze_id = apply_one()
        if braze_id is not None:
            self.rows.pop(braze_id, None)
            self.fetched.pop(braze_id, None)
        self.seq = None


class UserTrack:
    def __init__(self, sandbox: "Sandbox", profiles: Profiles) -> None:
        self.sandbox = sandbox
        self.profiles = profiles

    def lookup(self, target: Target) -> str | None:
        p = self.profiles
        if target.kind == "external_id":
            return p.by_external_id(target.value)
        if target.kind == "user_alias":
            return p.by_alias(*target.value)
        if target.kind == "braze_id":
            return p.by_braze_id(target.value)
        if target.kind == "email":
            return p.by_email(target.value)
        return p.by_phone(target.value)

    def new_profile(self, target: Target) -> Profile | None:
        """The profile Braze would create for an object that matched nobody (not stored yet), or None."""
        if target.update_only or target.kind == "braze_id":  # Braze assigns braze_ids: an unknown one creates nothing
            return None
        if target.kind == "external_id":
            return self.profiles.new(external_id=target.value)
        if target.kind in ("email", "phone"):  # an "email-only" (or phone-only) profile
            return self.profiles.new(fields={target.kind: target.value})
        return self.profiles.new()

    def resolve(self, target: Target) -> str | None:
        """The profile an object is about, created when Braze would create it; None when it is skipped."""
        found = self.lookup(target)
        if found is None:
            profile = self.new_profile(target)
            if profile is not None:
                alias = target.value if target.kind == "user_alias" else None
                found = self.profiles.insert(profile, alias).braze_id
        return found

    # --- one object the slow way: straight SQL, for the identifiers `_Writes` does not keep (alias, braze_id, email,
    # phone); the caller flushes `_Writes` first, so these reads see every earlier object of the request.
    # Each writes one profile and answers its braze_id (None: skipped).
    def _attributes_one(self, target: Target, ops: list[tuple]) -> str | None:
        braze_id = self.lookup(target)
        if braze_id is None:  # a new profile is written once, with its attributes
            profile = self.new_profile(target)
            if profile is not None:
                apply_attribute_ops(profile, ops)
                self.profiles.insert(profile, target.value if target.kind == "user_alias" else None)
            return None  # a new profile: nothing read about it before
        profile = self.profiles.load(braze_id)
        assert profile is not None
        apply_attribute_ops(profile, ops)
        self.profiles.save(profile)
        return braze_id

    def _event_one(self, target: Target, event: dict) -> str | None:
        braze_id = self.resolve(target)
        if braze_id is not None:
            self.profiles.record_event(braze_id, event["name"], event["time"])
            self.profiles.touch(braze_id)
        return braze_id

    def _purchase_one(self, target: Target, purchase: dict) -> str | None:
        braze_id = self.resolve(target)
        if braze_id is not None:
            self.profiles.record_purchase(braze_id, purchase["product_id"], purchase["time"],
                                          purchase["quantity"], purchase["price"])
            self.profiles.touch(braze_id)
        return braze_id

    def _apply(self, plans: dict[str, list], now: datetime) -> None:
        """Apply the parsed objects in Braze's order (attributes, events, purchases), inside the caller's
        transaction. Objects naming an `external_id` (what the Segment destination sends) go through `_Writes`:
        one SELECT for the request's external ids, rows changed in memory, statements run with executemany at
        the end; the stored rows are the ones the object-by-object statements (`_attributes_one`, ...) make."""
        writes = _Writes(self.sandbox.store.conn, self.profiles, now)
        writes.prefetch([target.value for name in ARRAYS for target, _ in plans[name]
                         if target.kind == "external_id"])
        for target, ops in plans["attributes"]:
            if target.kind != "external_id":
                writes.slow(lambda: self._attributes_one(target, ops))
                continue
            row = writes.find(target.value)
            if row is None:
                if target.update_only:
                    continue
                row = writes.create(target.value)  # a new profile is written once, with its attributes
                apply_attribute_ops(row, ops)
                continue
            writes.attributes(row, ops)
        for target, event in plans["events"]:
            if target.kind != "external_id":
                writes.slow(lambda: self._event_one(target, event))  # run at once: the loop variables are current
            elif (row := writes.find_or_create(target)) is not None:
                writes.event(row, event["name"], event["time"])
                writes.bump(row)
        for target, purchase in plans["purchases"]:
            if target.kind != "external_id":
                writes.slow(lambda: self._purchase_one(target, purchase))
            elif (row := writes.find_or_create(target)) is not None:
                writes.purchase(row, purchase["product_id"], purchase["time"], purchase["quantity"], purchase["price"])
                writes.bump(row)
        writes.flush()

    def track(self, body: Any) -> dict:
        """Apply a `/users/track` body; answers the 201 body or raises BrazeError (400)."""
        if not isinstance(body, dict):
            raise errors.INVALID_JSON()
        for key in body:
            if key not in ARRAYS and key != "api_key":
                raise errors.bad_request(f"'{str(key)[:64]}' is not a valid field; send 'attributes', 'events' "
                                         "or 'purchases'")
        present = [name for name in ARRAYS if body.get(name) is not None]
        for name in present:
            if not isinstance(body[name], list):
                raise errors.bad_request(f"'{name}' must be an array of objects")
            if len(body[name]) > MAX_OBJECTS:
                raise errors.too_many_objects(name, len(body[name]))
        now = self.sandbox.clock.now()
        now_text = time_text(now)
        problems: list[dict] = []
        plans: dict[str, list] = {name: [] for name in ARRAYS}
        for name in present:
            plan = plans[name]
            parse = _PARSERS[name]
            for index, obj in enumerate(body[name]):
                try:
                    if not isinstance(obj, dict):
                        raise ObjectError(f"each item of '{name}' must be an object")
                    plan.append(parse(obj, now_text))
                except ObjectError as exc:
                    problems.append(errors.object_error(exc.type, name, index))
        if not any(plans.values()):
            raise errors.no_valid_data(problems)
        if any(_DROP_NESTED in ops for _target, ops in plans["attributes"]):
            plans["attributes"] = [(target, [op for op in ops if not _is_nested_update(op)])
                                   for target, ops in plans["attributes"]]
        with self.sandbox.store.transaction():
            self._apply(plans, now)
        answer: dict = {"message": errors.SUCCESS}
        for name in present:
            answer[f"{name}_processed"] = len(plans[name])
        if problems:
            answer["errors"] = problems
        return answer

"""The Segment Tracking API's rules: auth, limits, validation, drops, dedup, timestamps.

Facts: reference/segment-api.md §1; decisions: SPEC.md §2 "Segment Tracking API". Everything a request is
told was accepted is committed (debugger row, event-log row, and whatever the accept listeners add, such
as outbox rows) in one transaction before the answer leaves.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .. import jsonbody
from ..clock import UTC, iso
from . import errors
from .errors import Drop

if TYPE_CHECKING:
    from ..sandbox import Sandbox

TYPES = ("identify", "track", "page", "screen", "group", "alias")
BATCH_KINDS = ("batch", "import")
# analytics.js posts single events to the first letter of their type, and batches to /b.
SHORT_PATHS = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias", "b": "batch"}
ENDPOINTS = TYPES + BATCH_KINDS + tuple(SHORT_PATHS)

REQUEST_LIMIT = 32 * 1024
BATCH_REQUEST_LIMIT = 500 * 1024
EVENT_LIMIT = 32 * 1024
MAX_BATCH_ITEMS = 2500
MAX_MESSAGE_ID = 100
DEDUP_WINDOW = timedelta(hours=24)
_TRIM_EVERY = 500
_DEDUP_PRUNE_EVERY = 5000

AcceptListener = Callable[[list[dict], sqlite3.Connection], None]


@dataclass
class Receipt:
    """What one request (or one `ingest` call) did: counts, and the debugger ids of its messages."""

    accepted: int = 0
    dropped: int = 0
    rejected: int = 0
    source: str | None = None
    reasons: list[str] = field(default_factory=list)


def limit_for(kind: str) -> int:
    return BATCH_REQUEST_LIMIT if kind in BATCH_KINDS or kind == "b" else REQUEST_LIMIT


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    """A JSON number past a double's range (1e400) is refused, as Segment's Go parser does, not read as infinity."""
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse_body(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.invalid_json(f"body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise errors.invalid_json("empty body")
    try:
        return jsonbody.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise errors.invalid_json(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise errors.invalid_json(str(exc) or "nested too deeply") from None


def write_key_from_basic(header: str | None) -> str | None:
    """`Basic base64(key:)`; the colon is optional (segment-docs: "encoding without a colon might work")."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _id_value(message: dict, key: str) -> tuple[str | None, Drop | None]:
    """Ids may be strings or numbers (libraries stringify them); null and "" count as absent."""
    value = message.get(key)
    if type(value) is str:  # the common case first: it runs twice for every message
        return value or None, None
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None, errors.invalid_field(key, "a string")
    return str(value), None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
_REMOVED_KEYS = ("writeKey", "userId", "anonymousId", "messageId")


class _Times:
    """timestamp = receivedAt - (sentAt - originalTimestamp), memoised per request: a batch's items mostly
    share their sentAt and often their timestamps, and formatting dominates the cost of ingest."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._memo: dict[tuple[Any, Any], tuple[str | None, str | None, str | None]] = {}

    def resolve(self, original_raw: Any, sent_raw: Any) -> tuple[str | None, str | None, str | None]:
        key = (original_raw, sent_raw) if isinstance(original_raw, (str, type(None))) and isinstance(
            sent_raw, (str, type(None))) else None
        if key is not None and key in self._memo:
            return self._memo[key]
        original, sent = parse_time(original_raw), parse_time(sent_raw)
        timestamp = original
        if original is not None and sent is not None:
            try:
                timestamp = self.now - (sent - original)
            except OverflowError:
                timestamp = original
        result = (_iso_or_none(original), _iso_or_none(sent), _iso_or_none(timestamp))
        if key is not None:
            self._memo[key] = result
        return result


def _iso_or_none(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    try:
        return iso(dt)
    except (OverflowError, ValueError):
        return None


class Tracking:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self.listeners: list[AcceptListener] = []
        self._since_trim: dict[str | None, int] = {}
        self._since_prune = 0

    # --- configuration views -------------------------------------------------------------------
    def source_for(self, write_key: str | None) -> dict | None:
        if not write_key:
            return None
        for source in self.sandbox.config["segment"]["sources"]:
            if source["write_key"] == write_key:
                return source
        return None

    def endpoint_region(self, host: str | None) -> str:
        if host and "eu1" in host.lower():
            return "EU"
        return self.sandbox.config["segment"]["region"]

    # --- entry points ----------------------------------------------------------------------------
    def receive(self, kind: str, raw: bytes, *, authorization: str | None = None, host: str | None = None,
                path: str | None = None) -> Receipt:
        """An HTTP request's body (already decompressed). Raises SegmentError for the 4xx answers."""
        kind = SHORT_PATHS.get(kind, kind)
        limit = limit_for(kind)
        if len(raw) > limit:
            raise errors.payload_too_large(len(raw), limit)
        body = parse_body(raw)
        if not isinstance(body, dict):
            raise errors.invalid_request("the body must be a JSON object")
        write_key = write_key_from_basic(authorization)
        if write_key is None and isinstance(body.get("writeKey"), str):
            write_key = body["writeKey"]
        return self._receive(kind, body, raw.decode("utf-8"), len(raw), write_key, host, path or f"/v1/{kind}")

    def ingest(self, messages: dict | list[dict], write_key: str | None = None, *, kind: str | None = None) -> Receipt:
        """The same rules without HTTP: one message (`kind` defaults to its `type`) or a list (a batch)."""
        if write_key is None:
            write_key = self.sandbox.config["segment"]["sources"][0]["write_key"]
        if isinstance(messages, list):
            body, kind = {"batch": messages}, "batch"
        else:
            body, kind = dict(messages), kind or messages.get("type", "track")
        if kind not in TYPES + BATCH_KINDS:
            raise errors.invalid_request(f"unknown message kind {kind!r}")
        text = _dumps(body)
        return self._receive(kind, body, text, len(text.encode("utf-8")), write_key, None, f"/v1/{kind}")

    # --- the rules ------------------------------------------------------------------------------
    def _receive(self, kind: str, body: dict, body_text: str, body_size: int, write_key: str | None,
                 host: str | None, path: str) -> Receipt:
        if kind in BATCH_KINDS:
            items = body.get("batch")
            if not isinstance(items, list):
                raise errors.invalid_request("batch must be an array of messages")
            if body_size > EVENT_LIMIT:  # a smaller request cannot hold an oversize event
                for index, item in enumerate(items):
                    size = len(_dumps(item).encode("utf-8"))
                    if size > EVENT_LIMIT:
                        raise errors.payload_too_large(size, EVENT_LIMIT, f"event at batch[{index}]")
            context = body.get("context") if isinstance(body.get("context"), dict) else None
            integrations = body.get("integrations") if isinstance(body.get("integrations"), dict) else None
            sent_at = body.get("sentAt")
            indexes: Iterable[int | None] = range(len(items))
        else:
            items, indexes = [body], [None]
            context = integrations = sent_at = None

        source = self.source_for(write_key)
        drop_all: Drop | None = None
        if source is None:
            if self.sandbox.config["segment"]["strict"]:
                raise errors.UNAUTHORIZED()
            drop_all = errors.UNKNOWN_WRITE_KEY if write_key else errors.MISSING_WRITE_KEY
        elif source.get("region", self.sandbox.config["segment"]["region"]) != self.endpoint_region(host):
            drop_all = errors.WRONG_REGION

        now = self.sandbox.clock.now()
        received_at = iso(now)
        times = _Times(now)
        source_name = source["name"] if source else None
        receipt = Receipt(source=source_name)
        debugger_rows: list[list] = []
        accepted: list[dict] = []

        for index, item in zip(indexes, items):
            if drop_all is not None:
                message, drop = None, drop_all
            elif index is not None and index >= MAX_BATCH_ITEMS:
                message, drop = None, errors.BATCH_LIMIT
            else:
                message, drop = self._normalize(item, kind, context, integrations, sent_at, times, received_at)
            if drop is None:
                accepted.append(message)
                # an accepted message's debugger entry is its event row (debugger.search)
                debugger_rows.append(["accepted", None, None, None, None, None, None, None, source_name, index])
            else:
                status = "rejected" if drop is drop_all else "dropped"
                if status == "rejected":
                    receipt.rejected += 1
                else:
                    receipt.dropped += 1
                receipt.reasons.append(drop.reason)
                summary = item if isinstance(item, dict) else {}
                msg_type = kind if kind in TYPES else _str_or_none(summary.get("type"))
                debugger_rows.append([status, drop.code, drop.reason, msg_type, _str_or_none(summary.get("event")),
                                      _id_value(summary, "userId")[0], _id_value(summary, "anonymousId")[0],
                                      _str_or_none(summary.get("messageId")), source_name, index])

        with self.sandbox.store.transaction() as conn:
            if accepted:
                accepted = self._dedup(conn, accepted, debugger_rows, receipt, now)
            # debugger ids continue from the newest request (never trimmed while the limit is positive)
            newest = conn.execute("SELECT base_id + n_rows FROM segment_payloads ORDER BY id DESC LIMIT 1").fetchone()
            base_id = newest[0] if newest else 1
            first_seq = last_seq = None
            if accepted:
                first_seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM segment_events").fetchone()[0]
                last_seq = first_seq + len(accepted) - 1
            payload_id = conn.execute(
                "INSERT INTO segment_payloads (source, write_key, path, received_at, base_id, n_rows, visible_from,"
                " first_seq, last_seq, body) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (source_name, write_key, path, received_at, base_id, len(debugger_rows), base_id, first_seq,
                 last_seq, body_text)).lastrowid
            if accepted:
                self._append_events(conn, accepted, source_name, debugger_rows, first_seq)
            others = [[base_id + position, *row] for position, row in enumerate(debugger_rows)
                      if row[0] != "accepted"]
            if others:
                conn.executemany(
                    "INSERT INTO segment_debugger (id, status, reason_code, reason, type, event, user_id, anonymous_id,"
                    f" message_id, source, item_index, payload_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,{int(payload_id)})",
                    others)
            if accepted:
                for listener in self.listeners:
                    listener(accepted, conn)
            self._maintain(conn, source_name, len(debugger_rows), now)
        receipt.accepted = len(accepted)
        return receipt

    def _normalize(self, item: Any, kind: str, context: dict | None, integrations: dict | None, batch_sent_at: Any,
                   times: "_Times", received_at: str) -> tuple[dict | None, Drop | None]:
        # On the ingest path for every message: plain str/dict values take the short branches.
        if not isinstance(item, dict):
            return None, errors.NOT_AN_OBJECT
        get = item.get
        if kind in BATCH_KINDS:
            msg_type = get("type")
            if msg_type not in TYPES:
                return None, errors.INVALID_TYPE
        else:
            msg_type = kind
        user_id, problem = _id_value(item, "userId")
        if problem:
            return None, problem
        anonymous_id, problem = _id_value(item, "anonymousId")
        if problem:
            return None, problem
        for name in _OBJECT_FIELDS:
            value = get(name)
            if value is not None and not isinstance(value, dict):
                return None, errors.invalid_field(name, "an object")
        if user_id is None and anonymous_id is None:
            return None, errors.NO_USER_ANON_ID
        if msg_type == "track":
            event = get("event")
            if not isinstance(event, str) or not event.strip():
                return None, errors.MISSING_EVENT if event in (None, "") else errors.invalid_field("event", "a string")
        elif msg_type == "group":
            group_id, problem = _id_value(item, "groupId")
            if problem or group_id is None:
                return None, problem or errors.MISSING_GROUP_ID
        elif msg_type == "alias":
            previous_id, problem = _id_value(item, "previousId")
            if problem or previous_id is None:
                return None, problem or errors.MISSING_PREVIOUS_ID
        value = get("name")
        if value is not None and not isinstance(value, str):
            return None, errors.invalid_field("name", "a string")
        value = get("category")
        if value is not None and not isinstance(value, str):
            return None, errors.invalid_field("category", "a string")

        message_id = get("messageId")
        if type(message_id) is not str or not message_id:
            if message_id is None or message_id == "":
                message_id = "api-" + self.sandbox.ids.uuid()
            elif isinstance(message_id, bool) or not isinstance(message_id, (str, int)):
                return None, errors.invalid_field("messageId", "a string")
            message_id = str(message_id)
        if len(message_id) > MAX_MESSAGE_ID:
            return None, errors.MESSAGE_ID_TOO_LONG

        message = dict(item)
        for name in _REMOVED_KEYS:
            if name in message:
                del message[name]
        message["type"] = msg_type
        if user_id is not None:
            message["userId"] = user_id
        if anonymous_id is not None:
            message["anonymousId"] = anonymous_id
        for name in ("groupId", "previousId"):
            if name in message and isinstance(message[name], (int, float)) and not isinstance(message[name], bool):
                message[name] = str(message[name])
        message["messageId"] = message_id
        own = get("context")
        message["context"] = deep_merge(context, own or {}) if context else (own or {})
        own = get("integrations")
        message["integrations"] = deep_merge(integrations, own or {}) if integrations else (own or {})

        original_raw = get("timestamp")
        if original_raw is None:
            original_raw = get("originalTimestamp")
        sent_raw = get("sentAt")
        if sent_raw is None:
            sent_raw = batch_sent_at
        original_iso, sent_iso, timestamp_iso = times.resolve(original_raw, sent_raw)
        if original_iso is not None:
            message["originalTimestamp"] = original_iso
        elif "originalTimestamp" in message:
            del message["originalTimestamp"]
        if sent_iso is not None:
            message["sentAt"] = sent_iso
        elif "sentAt" in message:
            del message["sentAt"]
        message["receivedAt"] = received_at
        message["timestamp"] = timestamp_iso or received_at
        return message, None

    def _dedup(self, conn: sqlite3.Connection, accepted: list[dict], rows: list[list], receipt: Receipt,
               now: datetime) -> list[dict]:
        """Drop messageIds seen within 24 h (across every source), and repeats inside this request."""
        cutoff = iso(now - DEDUP_WINDOW)
        ids = [m["messageId"] for m in accepted]
        seen: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            seen.update(r[0] for r in conn.execute(
                f"SELECT message_id FROM segment_message_ids WHERE received_at > ? AND message_id IN ({marks})",
                [cutoff, *chunk]))
        accepted_rows = [row for row in rows if row[0] == "accepted"]
        kept: list[dict] = []
        for message, row in zip(accepted, accepted_rows):
            if message["messageId"] in seen:
                drop = errors.DUPLICATE_MESSAGE_ID
                row[:8] = ["dropped", drop.code, drop.reason, message["type"], message.get("event"),
                           message.get("userId"), message.get("anonymousId"), message["messageId"]]
                receipt.dropped += 1
                receipt.reasons.append(drop.reason)
                continue
            seen.add(message["messageId"])
            kept.append(message)
        if kept:
            conn.executemany("INSERT OR REPLACE INTO segment_message_ids (message_id, received_at) VALUES (?, ?)",
                             [(m["messageId"], m["receivedAt"]) for m in kept])
        return kept

    def _append_events(self, conn: sqlite3.Connection, accepted: list[dict], source: str, rows: list[list],
                       first_seq: int) -> None:
        event_rows = []
        indexes = [row[9] for row in rows if row[0] == "accepted"]
        for seq, message, index in zip(range(first_seq, first_seq + len(accepted)), accepted, indexes):
            event_rows.append((seq, message["messageId"], source, message["type"], message.get("event"),
                               message.get("userId"), message.get("anonymousId"), message["timestamp"],
                               message["receivedAt"], _dumps(message), index))
            message["_seq"], message["_source"] = seq, source
        conn.executemany(
            "INSERT INTO segment_events (seq, message_id, source, type, event, user_id, anonymous_id, timestamp,"
            " received_at, message, item_index) VALUES (?,?,?,?,?,?,?,?,?,?,?)", event_rows)

    def _maintain(self, conn: sqlite3.Connection, source: str | None, added: int, now: datetime) -> None:
        """Keep the debugger bounded per source and the dedup table to its 24 h window."""
        count = self._since_trim.get(source, 0) + added
        limit = self.sandbox.config["segment"]["debugger_limit"]
        if count >= min(_TRIM_EVERY, limit):
            self._trim(conn, source, limit)
            count = 0
        self._since_trim[source] = count
        self._since_prune += added
        if self._since_prune >= _DEDUP_PRUNE_EVERY:
            conn.execute("DELETE FROM segment_message_ids WHERE received_at <= ?", (iso(now - DEDUP_WINDOW),))
            self._since_prune = 0

    @staticmethod
    def _trim(conn: sqlite3.Connection, source: str | None, limit: int) -> None:
        """Keep the newest `limit` messages of `source`. Its requests' debugger ids grow with their payload ids, and
        a request's messages have consecutive ids: count what is held, then walk the oldest requests to the cutoff
        (most trims find nothing to remove, and then read no request at all)."""
        held = conn.execute("SELECT coalesce(sum(base_id + n_rows - visible_from), 0) FROM segment_payloads"
                            " WHERE source IS ?", (source,)).fetchone()[0]
        excess = held - max(limit, 0)
        if excess <= 0:
            return
        cutoff = last_whole = partial = None
        rows = conn.execute("SELECT id, base_id, n_rows, visible_from FROM segment_payloads WHERE source IS ?"
                            " ORDER BY id", (source,))
        for payload_id, base_id, n_rows, visible_from in rows:
            visible = base_id + n_rows - visible_from
            if visible <= excess:  # the whole request goes
                excess -= visible
                cutoff, last_whole = base_id + n_rows - 1, payload_id
                if excess == 0:
                    break
                continue
            cutoff, partial = visible_from + excess - 1, payload_id  # the newest id trimmed away
            break
        rows.close()
        conn.execute("DELETE FROM segment_debugger WHERE source IS ? AND id <= ?", (source, cutoff))
        if partial is not None:
            conn.execute("UPDATE segment_payloads SET visible_from = ? WHERE id = ?", (cutoff + 1, partial))
            conn.execute("DELETE FROM segment_payloads WHERE source IS ? AND id < ?", (source, partial))
        else:
            conn.execute("DELETE FROM segment_payloads WHERE source IS ? AND id <= ?", (source, last_whole))

    def reset(self) -> None:
        self._since_trim.clear()
        self._since_prune = 0

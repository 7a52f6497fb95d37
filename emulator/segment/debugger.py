"""The source debugger: every message each source received, raw as sent, newest first."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..store import contains_pattern

if TYPE_CHECKING:
    from ..store import Store

MAX_PAGE = 1000


def _raw(row: dict, payloads: dict[int, Any]) -> Any:
    """The message as sent: its request body, or its item of the batch."""
    payload_id = row["payload_id"]
    if payload_id not in payloads:
        payloads[payload_id] = json.loads(row["body"])
    body = payloads[payload_id]
    return body if row["item_index"] is None else body["batch"][row["item_index"]]


def _entry(row: dict, payloads: dict[int, Any]) -> dict:
    return {
        "id": row["id"],
        "source": row["source"],
        "write_key": row["write_key"],
        "path": row["path"],
        "received_at": row["received_at"],
        "status": row["status"],
        "reason": row["reason"],
        "reason_code": row["reason_code"],
        "type": row["type"],
        "event": row["event"],
        "userId": row["user_id"],
        "anonymousId": row["anonymous_id"],
        "messageId": row["message_id"],
        "raw": _raw(row, payloads),
        "message": json.loads(row["message"]) if row.get("message") else None,
    }


# Every message held, one row each: dropped and rejected ones from segment_debugger, accepted ones from their event
# rows (tracking.py). A request's messages take consecutive ids from its payload's base_id; trimming raises the
# payload's visible_from (and deletes payloads and debugger rows wholly trimmed away).
_HELD = (
    "SELECT d.id AS id, d.source AS source, d.status AS status, d.reason AS reason, d.reason_code AS reason_code,"
    " d.type AS type, d.event AS event, d.user_id AS user_id, d.anonymous_id AS anonymous_id,"
    " d.message_id AS message_id, d.payload_id AS payload_id, d.item_index AS item_index, NULL AS seq,"
    " p.write_key AS write_key FROM segment_debugger d JOIN segment_payloads p ON p.id = d.payload_id"
    " UNION ALL"
    " SELECT p.base_id + coalesce(e.item_index, 0), e.source, 'accepted', NULL, NULL, e.type, e.event, e.user_id,"
    " e.anonymous_id, e.message_id, p.id, e.item_index, e.seq, p.write_key"
    " FROM segment_payloads p JOIN segment_events e ON e.seq BETWEEN p.first_seq AND p.last_seq"
    " WHERE p.base_id + coalesce(e.item_index, 0) >= p.visible_from")


def search(store: "Store", *, source: str | None = None, status: str | None = None, type: str | None = None,
           event: str | None = None, user_id: str | None = None, anonymous_id: str | None = None,
           message_id: str | None = None, text: str | None = None, write_key: str | None = None,
           before_id: int | None = None, limit: int = 100) -> list[dict]:
    """Filters combine with AND; `text` matches anywhere in the raw message (case-insensitive)."""
    where, params = [], []
    filters: list[tuple[str, Any]] = [
        ("h.source = ?", source), ("h.status = ?", status), ("h.type = ?", type), ("h.event = ?", event),
        ("h.user_id = ?", user_id), ("h.anonymous_id = ?", anonymous_id), ("h.message_id = ?", message_id),
        ("h.write_key = ?", write_key), ("h.id < ?", before_id),
    ]
    for clause, value in filters:
        if value is not None:
            where.append(clause)
            params.append(value)
    if text:
        where.append("h.payload_id IN (SELECT id FROM segment_payloads WHERE body LIKE ? ESCAPE '\\')")
        params.append(contains_pattern(text))
    # Order and page on the narrow rows; request bodies and messages are read for the page only.
    sql = ("SELECT h.id, h.source, h.status, h.reason, h.reason_code, h.type, h.event, h.user_id, h.anonymous_id,"
           " h.message_id, h.payload_id, h.item_index, h.seq FROM (" + _HELD + ") h")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY h.id DESC"
    limit = max(1, min(int(limit), MAX_PAGE))
    if not text:
        sql += " LIMIT ?"
        params.append(limit)
    payloads: dict[int, Any] = {}
    requests: dict[int, tuple] = {}
    found: list[dict] = []
    needle = text.lower() if text else None
    with store.lock:
        conn = store.conn
        cursor = conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        for values in cursor.fetchall():
            row = dict(zip(names, values))
            request = requests.get(row["payload_id"])
            if request is None:
                request = requests[row["payload_id"]] = conn.execute(
                    "SELECT write_key, path, received_at, body FROM segment_payloads WHERE id = ?",
                    (row["payload_id"],)).fetchone()
            row["write_key"], row["path"], row["received_at"], row["body"] = request
            if needle is not None:
                # The body matched, but in a batch only some items may: check each item's own text.
                if needle not in json.dumps(_raw(row, payloads), ensure_ascii=False).lower():
                    continue
            row["message"] = None if row["seq"] is None else conn.execute(
                "SELECT message FROM segment_events WHERE seq = ?", (row["seq"],)).fetchone()[0]
            found.append(_entry(row, payloads))
            if len(found) >= limit:
                break
    return found

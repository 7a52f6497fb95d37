"""The source debugger: every message each source received, raw as sent, newest first."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

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


def search(store: "Store", *, source: str | None = None, status: str | None = None, type: str | None = None,
           event: str | None = None, user_id: str | None = None, anonymous_id: str | None = None,
           message_id: str | None = None, text: str | None = None, write_key: str | None = None,
           before_id: int | None = None, limit: int = 100) -> list[dict]:
    """Filters combine with AND; `text` matches anywhere in the raw message (case-insensitive)."""
    where, params = [], []
    filters: list[tuple[str, Any]] = [
        ("d.source = ?", source), ("d.status = ?", status), ("coalesce(d.type, e.type) = ?", type),
        ("coalesce(d.event, e.event) = ?", event), ("coalesce(d.user_id, e.user_id) = ?", user_id),
        ("coalesce(d.anonymous_id, e.anonymous_id) = ?", anonymous_id),
        ("coalesce(d.message_id, e.message_id) = ?", message_id), ("p.write_key = ?", write_key),
        ("d.id < ?", before_id),
    ]
    for clause, value in filters:
        if value is not None:
            where.append(clause)
            params.append(value)
    if text:
        where.append("p.body LIKE ? ESCAPE '\\'")
        params.append("%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    # An accepted message's row leaves type, event and ids to its event row (tracking keeps them equal).
    sql = ("SELECT d.id, d.source, p.write_key, p.path, p.received_at, d.status, d.reason, d.reason_code,"
           " coalesce(d.type, e.type) AS type, coalesce(d.event, e.event) AS event,"
           " coalesce(d.user_id, e.user_id) AS user_id, coalesce(d.anonymous_id, e.anonymous_id) AS anonymous_id,"
           " coalesce(d.message_id, e.message_id) AS message_id, d.payload_id, d.item_index,"
           " e.message AS message, p.body AS body FROM segment_debugger d"
           " JOIN segment_payloads p ON p.id = d.payload_id LEFT JOIN segment_events e ON e.seq = d.event_seq")
    if where:
        sql += " WHERE " + " AND ".join(where)
    limit = max(1, min(int(limit), MAX_PAGE))
    sql += " ORDER BY d.id DESC"
    payloads: dict[int, Any] = {}
    if not text:
        return [_entry(row, payloads) for row in store.query(sql + " LIMIT ?", [*params, limit])]
    # The body matched, but in a batch only some items may: check each item's own text.
    needle, found = text.lower(), []
    with store.lock:
        cursor = store.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        for values in cursor:
            entry = _entry(dict(zip(names, values)), payloads)
            if needle in json.dumps(entry["raw"], ensure_ascii=False).lower():
                found.append(entry)
                if len(found) >= limit:
                    break
    return found


def counts(store: "Store") -> dict[str, dict[str, int]]:
    """Per source, how many messages are held by status."""
    result: dict[str, dict[str, int]] = {}
    for row in store.query("SELECT coalesce(source, '(unknown)') AS source, status, count(*) AS n"
                           " FROM segment_debugger GROUP BY 1, 2"):
        result.setdefault(row["source"], {})[row["status"]] = row["n"]
    return result

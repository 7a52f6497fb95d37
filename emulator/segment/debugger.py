"""The source debugger: every message each source received, raw as sent, newest first."""
from __future__ import annotations

import heapq
import json
from typing import TYPE_CHECKING, Any, Iterator

from ..store import contains_pattern

if TYPE_CHECKING:
    import sqlite3

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
# payload's visible_from (and deletes payloads and debugger rows wholly trimmed away). Each kind is read newest first
# by its own query (filtered, ordered by its keys, limited), and the two are merged: no statement sorts everything.
_COLUMNS = ("id", "source", "status", "reason", "reason_code", "type", "event", "user_id", "anonymous_id",
            "message_id", "payload_id", "item_index", "seq")
_HELD_DEBUGGER = (
    "SELECT d.id, d.source, d.status, d.reason, d.reason_code, d.type, d.event, d.user_id, d.anonymous_id,"
    " d.message_id, d.payload_id, d.item_index, NULL FROM segment_debugger d", "d.id",
    {"source": "d.source", "status": "d.status", "type": "d.type", "event": "d.event", "user_id": "d.user_id",
     "anonymous_id": "d.anonymous_id", "message_id": "d.message_id", "id": "d.id", "payload_id": "d.payload_id"})
_ACCEPTED_ID = "p.base_id + coalesce(e.item_index, 0)"
_HELD_EVENTS = (
    f"SELECT {_ACCEPTED_ID}, e.source, 'accepted', NULL, NULL, e.type, e.event, e.user_id, e.anonymous_id,"
    " e.message_id, p.id, e.item_index, e.seq FROM segment_payloads p"
    " JOIN segment_events e ON e.seq BETWEEN p.first_seq AND p.last_seq", "p.id DESC, e.seq",
    # `+`: no index on these columns, and no automatic one either; requests are walked newest first and the walk
    # stops when the page is full
    {"source": "p.source", "type": "+e.type", "event": "+e.event", "user_id": "+e.user_id",
     "anonymous_id": "+e.anonymous_id", "message_id": "+e.message_id", "id": _ACCEPTED_ID, "payload_id": "p.id"})


def _held(conn: "sqlite3.Connection", branch: tuple, filters: dict[str, Any], payload_ids: str | None,
          write_key: str | None, limit: int | None) -> Iterator[tuple]:
    """One kind of held message, newest first."""
    select, order, columns = branch
    where, params = [], []
    for name, value in filters.items():
        if value is not None:
            # `+` drops the column's text affinity: a number given through the Python API is compared as text
            where.append(f"{columns[name]} < ?" if name == "id" else f"{columns[name]} = CAST(? AS TEXT)")
            params.append(value)
    if branch is _HELD_EVENTS:
        where.append(f"{_ACCEPTED_ID} >= p.visible_from")
        if filters.get("id") is not None:
            where.append("p.base_id < ?")  # whole requests past the page start are skipped by their key
            params.append(filters["id"])
    if write_key is not None:
        where.append(f"{columns['payload_id']} IN (SELECT id FROM segment_payloads WHERE write_key = ?)")
        params.append(write_key)
    if payload_ids is not None:
        where.append(f"{columns['payload_id']} IN (SELECT id FROM segment_payloads WHERE body LIKE ? ESCAPE '\\')")
        params.append(payload_ids)
    sql = select + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {order} DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return conn.execute(sql, params)


def search(store: "Store", *, source: str | None = None, status: str | None = None, type: str | None = None,
           event: str | None = None, user_id: str | None = None, anonymous_id: str | None = None,
           message_id: str | None = None, text: str | None = None, write_key: str | None = None,
           before_id: int | None = None, limit: int = 100) -> list[dict]:
    """Filters combine with AND; `text` matches anywhere in the raw message (case-insensitive)."""
    limit = max(1, min(int(limit), MAX_PAGE))
    filters = {"source": source, "type": type, "event": event, "user_id": user_id, "anonymous_id": anonymous_id,
               "message_id": message_id, "id": before_id}
    pattern = contains_pattern(text) if text else None
    # Order and page on the narrow rows; request bodies and messages are read for the page only. With `text`, a
    # matching body may hold non-matching items of a batch: rows are read until the page is full.
    branch_limit = None if text else limit
    payloads: dict[int, Any] = {}
    requests: dict[int, tuple] = {}
    found: list[dict] = []
    needle = text.lower() if text else None
    with store.lock:
        conn = store.conn
        streams = []
        if status != "accepted":
            streams.append(_held(conn, _HELD_DEBUGGER, {**filters, "status": status}, pattern, write_key,
                                 branch_limit))
        if status in (None, "accepted"):
            streams.append(_held(conn, _HELD_EVENTS, filters, pattern, write_key, branch_limit))
        for values in heapq.merge(*streams, key=lambda row: -row[0]):
            row = dict(zip(_COLUMNS, values))
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

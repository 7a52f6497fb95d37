"""`sandbox.segment`: the Segment workspace as a plain Python object (no HTTP needed)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import debugger as _debugger
from .tracking import Receipt, Tracking

if TYPE_CHECKING:
    from ..sandbox import Sandbox


class SegmentWorkspace:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self.tracking = Tracking(sandbox)

    def ingest(self, messages: dict | list[dict], write_key: str | None = None, *, kind: str | None = None) -> Receipt:
        """Send messages as a source would, with every Tracking API rule (default: the first source's key)."""
        return self.tracking.ingest(messages, write_key, kind=kind)

    def debugger(self, source: str | None = None, **filters: Any) -> list[dict]:
        """Source debugger entries, newest first. Filters: status, type, event, user_id, anonymous_id,
        message_id, text, write_key, before_id, limit."""
        return _debugger.search(self.sandbox.store, source=source, **filters)

    def events(self, *, user_id: str | None = None, source: str | None = None, limit: int | None = None) -> list[dict]:
        """Accepted messages as Segment keeps them, oldest first."""
        sql, where, params = "SELECT message FROM segment_events", [], []
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [json.loads(r["message"]) for r in self.sandbox.store.query(sql, params)]

    def deliveries(self, destination: str | None = None, **filters: Any) -> list[dict]:
        """The event-delivery trace, newest first. Filters: message_id, status (delivered, filtered, retrying,
        discarded), limit."""
        return self.sandbox.outbox.deliveries(destination=destination, **filters)

    def reset(self) -> None:
        self.tracking.reset()

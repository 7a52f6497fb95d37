"""The request journal: every request either app received, bounded (oldest trimmed first)."""
from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from .clock import iso

if TYPE_CHECKING:
    from .sandbox import Sandbox

BODY_LIMIT = 64 * 1024
_TRIM_EVERY = 200
_WRITE_EVERY = 50
_MASKED_HEADERS = {"authorization", "x-emulator-token"}
_KEPT_HEADERS = {"content-type", "content-encoding", "user-agent", "authorization", "x-retry-count",
                 "x-braze-batch", "x-emulator-token", "host"}


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= BODY_LIMIT:
        return text
    return text[:BODY_LIMIT] + f"... [{len(text) - BODY_LIMIT:,} more characters]"


def _mask(name: str, value: str) -> str:
    if name.lower() not in _MASKED_HEADERS:
        return value
    scheme, _, secret = value.partition(" ")
    shown = secret or scheme
    return (scheme + " " if secret else "") + (shown[:4] + "…" if len(shown) > 4 else "…")


class Journal:
    """Entries are kept in memory and written in groups (at most `_WRITE_EVERY` at a time, and before any read):
    a request then costs no transaction of its own. The journal is a diagnostic: the few entries not yet written
    when a process is killed are not acknowledged data."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self._since_trim = 0
        self._pending: list[tuple] = []
        self._lock = threading.Lock()

    def record(self, *, app: str, method: str, path: str, query: str, status: int, headers: dict[str, str],
               request_body: str | None, response_body: str | None, duration_ms: float) -> None:
        kept = {k: _mask(k, v) for k, v in headers.items() if k.lower() in _KEPT_HEADERS}
        entry = (app, iso(self.sandbox.clock.now()), method, path, query or None, status, json.dumps(kept),
                 _clip(request_body), _clip(response_body), round(duration_ms, 3))
        with self._lock:
            self._pending.append(entry)
            full = len(self._pending) >= _WRITE_EVERY
        if full:
            self.write()

    def write(self) -> None:
        """Write what is kept in memory (reads call it first)."""
        with self.sandbox.store.transaction() as conn:
            with self._lock:
                pending, self._pending = self._pending, []
            if not pending:
                return
            conn.executemany(
                "INSERT INTO requests (app, at, method, path, query, status, request_headers, request_body,"
                " response_body, duration_ms) VALUES (?,?,?,?,?,?,?,?,?,?)", pending)
            self._since_trim += len(pending)
            if self._since_trim >= _TRIM_EVERY:
                conn.execute("DELETE FROM requests WHERE id <= (SELECT max(id) FROM requests) - ?",
                             (self.sandbox.config["journal_limit"],))
                self._since_trim = 0

    def search(self, *, app: str | None = None, method: str | None = None, path: str | None = None,
               status: int | None = None, limit: int = 100) -> list[dict]:
        """Newest first. `path` ending in `*` matches a prefix."""
        self.write()
        where, params = [], []
        if app:
            where.append("app = ?")
            params.append(app)
        if method:
            where.append("method = ?")
            params.append(method.upper())
        if path:
            if path.endswith("*"):
                where.append("path LIKE ?")
                params.append(path[:-1].replace("%", "") + "%")
            else:
                where.append("path = ?")
                params.append(path)
        if status is not None:
            where.append("status = ?")
            params.append(int(status))
        sql = "SELECT * FROM requests" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(max(1, min(int(limit), 1000)))
        return [_entry(row) for row in self.sandbox.store.query(sql, params)]

    def reset(self) -> None:
        with self._lock:
            self._pending = []
        self._since_trim = 0


def _entry(row: dict[str, Any]) -> dict:
    def body(text: str | None) -> Any:
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    return {"id": row["id"], "app": row["app"], "at": row["at"], "method": row["method"], "path": row["path"],
            "query": row["query"], "status": row["status"], "request_headers": json.loads(row["request_headers"]),
            "request_body": body(row["request_body"]), "response_body": body(row["response_body"]),
            "duration_ms": row["duration_ms"]}

"""The one SQLite schema, as numbered migrations.

Each migration runs once, in order, inside a transaction, and is recorded in `schema_version`; a file store
opened by a newer emulator is brought up to date, one opened by an older one is refused. Append new
migrations at the end, never edit one that has shipped. `reset()` empties every table but `schema_version`
and `meta`, so a new table is covered by reset without further work.
"""
from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "foundation: meta, request journal, Segment source debugger and event log", """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT
);

-- Every request either app received (bounded; oldest trimmed first).
CREATE TABLE requests (
    id            INTEGER PRIMARY KEY,
    app           TEXT NOT NULL,              -- 'segment' | 'braze'
    at            TEXT NOT NULL,              -- sandbox clock
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    query         TEXT,
    status        INTEGER NOT NULL,
    request_headers TEXT,                     -- JSON object (Authorization masked)
    request_body  TEXT,
    response_body TEXT,
    duration_ms   REAL
);
CREATE INDEX requests_app_path ON requests(app, path, id);

-- Every message a Segment source received, raw as sent (bounded per source).
CREATE TABLE segment_debugger (
    id           INTEGER PRIMARY KEY,
    source       TEXT,                        -- NULL when the write key is unknown
    write_key    TEXT,
    path         TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    status       TEXT NOT NULL,               -- 'accepted' | 'dropped' | 'rejected'
    reason_code  TEXT,
    reason       TEXT,
    type         TEXT,
    event        TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    message_id   TEXT,
    event_seq    INTEGER,                     -- segment_events.seq when accepted
    raw          TEXT NOT NULL
);
CREATE INDEX segment_debugger_source ON segment_debugger(source, id);

-- Every accepted message as Segment keeps it (receivedAt, timestamp, merged context): unbounded,
-- because Engage and the destinations read it and nothing acknowledged may be lost.
CREATE TABLE segment_events (
    seq          INTEGER PRIMARY KEY,
    message_id   TEXT NOT NULL,
    source       TEXT NOT NULL,
    type         TEXT NOT NULL,
    event        TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    timestamp    TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    message      TEXT NOT NULL
);
CREATE INDEX segment_events_user ON segment_events(user_id);
CREATE INDEX segment_events_anon ON segment_events(anonymous_id);

-- messageIds seen in the last 24 h of sandbox time (dedup is global, not per source).
CREATE TABLE segment_message_ids (
    message_id  TEXT PRIMARY KEY,
    received_at TEXT NOT NULL
);
"""),
]

# Tables that hold configuration-independent bookkeeping and survive reset().
KEPT_ON_RESET = {"schema_version", "meta"}

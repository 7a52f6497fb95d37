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

-- The source debugger: every message a source received, raw as sent, bounded per source. One request is one
-- segment_payloads row; its messages take the debugger ids base_id .. base_id + n_rows - 1 in batch order.
-- Dropped and rejected messages have a row here; an accepted one is its segment_events row (item_index), so
-- ingest writes no second row per event (emulator/segment/debugger.py reads both).
CREATE TABLE segment_debugger (
    id           INTEGER PRIMARY KEY,
    source       TEXT,                        -- NULL when the write key is unknown
    status       TEXT NOT NULL,               -- 'dropped' | 'rejected'
    reason_code  TEXT,
    reason       TEXT,
    type         TEXT,
    event        TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    message_id   TEXT,
    payload_id   INTEGER NOT NULL,            -- segment_payloads.id: the request, raw as sent
    item_index   INTEGER                      -- position in its batch; NULL for a single-message request
);
CREATE INDEX segment_debugger_source ON segment_debugger(source, id);

-- Requests as sent, once per request, so the debugger shows each message raw without storing it twice.
CREATE TABLE segment_payloads (
    id           INTEGER PRIMARY KEY,
    source       TEXT,
    write_key    TEXT,
    path         TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    base_id      INTEGER NOT NULL,            -- debugger id of its first message
    n_rows       INTEGER NOT NULL,            -- messages it holds (debugger ids it took)
    visible_from INTEGER NOT NULL,            -- its lowest debugger id not yet trimmed away
    first_seq    INTEGER,                     -- segment_events.seq range of its accepted messages
    last_seq     INTEGER,
    body         TEXT NOT NULL
);
CREATE INDEX segment_payloads_source ON segment_payloads(source, id);

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
    message      TEXT NOT NULL,
    item_index   INTEGER                      -- position in its request's batch (the debugger's raw message)
);
-- Reads by profile go through engage_event_profiles; an index here would only slow every ingest.

-- messageIds seen in the last 24 h of sandbox time (dedup is global, not per source).
CREATE TABLE segment_message_ids (
    message_id  TEXT PRIMARY KEY,
    received_at TEXT NOT NULL
);
"""),
    (3, "engage: identity and profiles", """
-- One row per Engage profile ('use_…' users, 'acc_…' accounts). A merged profile keeps its row with
-- merged_into = the surviving profile, so an old id still resolves; everything else moves to the survivor.
CREATE TABLE engage_profiles (
    profile_id       TEXT PRIMARY KEY,
    collection       TEXT NOT NULL DEFAULT 'users',   -- 'users' | 'accounts'
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    merged_into      TEXT,
    first_message_id TEXT,
    first_source_id  TEXT,
    last_message_id  TEXT,
    last_source_id   TEXT
);
CREATE INDEX engage_profiles_live ON engage_profiles(collection, merged_into);
CREATE INDEX engage_profiles_merged ON engage_profiles(merged_into) WHERE merged_into IS NOT NULL;

-- The identity graph: an external id belongs to exactly one live profile.
CREATE TABLE engage_external_ids (
    profile_id       TEXT NOT NULL,
    collection       TEXT NOT NULL DEFAULT 'users',
    type             TEXT NOT NULL,
    value            TEXT NOT NULL,
    source_id        TEXT,
    first_message_id TEXT,
    created_at       TEXT NOT NULL,
    UNIQUE (collection, type, value)
);
CREATE INDEX engage_external_ids_profile ON engage_external_ids(profile_id);

-- Traits per profile, one value per key; class 'trait' (identify / context.traits / group traits),
-- 'computed_trait' or 'audience' (written by Engage computations; messages never overwrite those).
CREATE TABLE engage_traits (
    profile_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT,                             -- JSON
    class       TEXT NOT NULL DEFAULT 'trait',
    source_id   TEXT,
    updated_at  TEXT NOT NULL,
    message_seq INTEGER,                          -- segment_events.seq that set it (NULL when computed)
    PRIMARY KEY (profile_id, key)
) WITHOUT ROWID;
CREATE INDEX engage_traits_key ON engage_traits(key, class);

-- Which profile each accepted message belongs to (events per profile are a join with segment_events).
CREATE TABLE engage_event_profiles (
    seq        INTEGER PRIMARY KEY,               -- segment_events.seq
    profile_id TEXT NOT NULL
);
CREATE INDEX engage_event_profiles_profile ON engage_event_profiles(profile_id, seq);

-- User <-> account links made by group calls.
CREATE TABLE engage_links (
    profile_id TEXT NOT NULL,                     -- the user profile
    account_id TEXT NOT NULL,                     -- the account profile
    source_id  TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (profile_id, account_id)
);
CREATE INDEX engage_links_account ON engage_links(account_id);

-- Every merge, for the dashboard and the 100-merges-per-profile limit.
CREATE TABLE engage_merges (
    id           INTEGER PRIMARY KEY,
    from_profile TEXT NOT NULL,
    into_profile TEXT NOT NULL,
    at           TEXT NOT NULL,
    message_id   TEXT
);
CREATE INDEX engage_merges_into ON engage_merges(into_profile);
"""),
    (2, "braze: user profiles, aliases, event and purchase aggregates, partner cohorts, delivery ids, rate windows", """
-- One row per Braze profile; standard fields and custom attributes as JSON so segments filter with json_extract.
CREATE TABLE braze_users (
    braze_id      TEXT PRIMARY KEY,           -- 24 hex
    external_id   TEXT UNIQUE,
    email         TEXT,                       -- lower-cased, for lookup
    phone         TEXT,
    random_bucket INTEGER NOT NULL,           -- 0..9999
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_seq   INTEGER NOT NULL,           -- "most recently updated" even on a clock standing still
    profile       TEXT NOT NULL DEFAULT '{}', -- standard fields
    custom        TEXT NOT NULL DEFAULT '{}', -- custom attributes
    total_revenue REAL NOT NULL DEFAULT 0
);
CREATE INDEX braze_users_email ON braze_users(email, updated_seq);
CREATE INDEX braze_users_phone ON braze_users(phone, updated_seq);
CREATE INDEX braze_users_seq ON braze_users(updated_seq);

-- "Users can have only one alias for a specific label"; an alias (label, name) names one profile.
CREATE TABLE braze_aliases (
    alias_label TEXT NOT NULL,
    alias_name  TEXT NOT NULL,
    braze_id    TEXT NOT NULL,
    PRIMARY KEY (alias_label, alias_name)
);
CREATE INDEX braze_aliases_user ON braze_aliases(braze_id);

-- What the profile keeps of events and purchases: lifetime count, first, last (custom_events.md).
CREATE TABLE braze_user_events (
    braze_id TEXT NOT NULL,
    name     TEXT NOT NULL,
    count    INTEGER NOT NULL,
    first    TEXT NOT NULL,
    last     TEXT NOT NULL,
    PRIMARY KEY (braze_id, name)
);
CREATE TABLE braze_user_purchases (
    braze_id   TEXT NOT NULL,
    product_id TEXT NOT NULL,
    count      INTEGER NOT NULL,
    first      TEXT NOT NULL,
    last       TEXT NOT NULL,
    revenue    REAL NOT NULL,
    PRIMARY KEY (braze_id, product_id)
);
-- Occurrences of the last 30 days, for the "X times in the past Y days" filters.
CREATE TABLE braze_occurrences (
    id       INTEGER PRIMARY KEY,
    braze_id TEXT NOT NULL,
    kind     TEXT NOT NULL,                   -- 'event' | 'purchase'
    name     TEXT NOT NULL,                   -- event name or product id
    time     TEXT NOT NULL,
    quantity INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX braze_occurrences_user ON braze_occurrences(braze_id, kind, name, time);

-- Partner cohorts (Segment's Braze Cohorts destination) and their members.
CREATE TABLE braze_cohorts (
    cohort_id  TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE braze_cohort_members (
    cohort_id TEXT NOT NULL,
    braze_id  TEXT NOT NULL,
    added_at  TEXT NOT NULL,
    PRIMARY KEY (cohort_id, braze_id)
);
CREATE INDEX braze_cohort_members_user ON braze_cohort_members(braze_id);

-- X-Emulator-Delivery-Id: a redelivered request is answered from here and not applied twice.
CREATE TABLE braze_deliveries (
    delivery_id TEXT PRIMARY KEY,
    path        TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    at          TEXT NOT NULL
);

-- Fixed rate-limit windows on the sandbox clock, one row per limit bucket.
CREATE TABLE braze_rate_windows (
    bucket       TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,            -- epoch seconds
    count        INTEGER NOT NULL
);
"""),
]

MIGRATIONS.append((4, "destinations: durable outbox and the event-delivery trace", """
-- One row per (destination, message): enqueued in the transaction that acknowledged the message.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    destination      TEXT NOT NULL,               -- 'braze' | 'braze_cohorts' | a configured name
    message_id       TEXT NOT NULL,
    event_seq        INTEGER,                     -- segment_events.seq for a source event
    message          TEXT,                        -- the message itself when it is not in segment_events (Engage)
    status           TEXT NOT NULL,               -- pending | inflight | delivered | filtered | discarded
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    first_attempt_at TEXT,
    finished_at      TEXT,
    inflight_request INTEGER,                     -- delivery_requests.id of the request carrying it now
    error_code       TEXT,                        -- Segment's code: errors.discarded.400, errors.awaiting-retry.429...
    error            TEXT
);
CREATE INDEX outbox_due ON outbox(destination, status, next_attempt_at, id);
CREATE INDEX outbox_message ON outbox(message_id);
CREATE INDEX outbox_inflight ON outbox(inflight_request) WHERE status = 'inflight';  -- found again after a crash

-- Every request a destination sent, with Braze's answer.
CREATE TABLE delivery_requests (
    id          INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    action      TEXT,
    started_at  TEXT NOT NULL,
    request     TEXT NOT NULL,                    -- {method, url, headers, body}
    status      INTEGER,                          -- NULL until answered (or when the connection failed)
    response    TEXT,                             -- {headers, body}
    error       TEXT,                             -- a connection error code (ECONNREFUSED...)
    latency_ms  REAL
);

-- What each attempt meant for each message it carried.
CREATE TABLE delivery_outcomes (
    outbox_id   INTEGER NOT NULL,
    request_id  INTEGER,                          -- NULL when refused before sending
    attempt     INTEGER NOT NULL,
    at          TEXT NOT NULL,
    outcome     TEXT NOT NULL,                    -- delivered | filtered | retrying | discarded
    status      INTEGER,
    error_code  TEXT,
    error       TEXT
);
CREATE INDEX delivery_outcomes_outbox ON delivery_outcomes(outbox_id);

-- Per-destination memory Segment keeps between batches (e.g. which cohorts were created).
CREATE TABLE destination_state (
    destination TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT,
    PRIMARY KEY (destination, key)
);
"""))

MIGRATIONS.append((6, "engage: audience and computed-trait definitions, emitted messages", """
CREATE TABLE engage_definitions (
    id          TEXT PRIMARY KEY,                 -- aud_… / tra_…
    kind        TEXT NOT NULL,                    -- 'audience' | 'trait'
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    query       TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    options     TEXT NOT NULL,                    -- JSON: backfill, include_anonymous, external_id_types, batch
    connections TEXT NOT NULL,                    -- JSON: destination connections (Send Identify / Send Track)
    origin      TEXT NOT NULL,                    -- 'config' (kept by reset) | 'api'
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    computed_at TEXT,
    next_run_at TEXT,                             -- batch definitions: the next 8-hour run
    synced      TEXT,                             -- JSON list: destinations whose first sync was sent
    UNIQUE (kind, key)
);

-- The Engage source debugger: every message Engage sent to a destination.
CREATE TABLE engage_messages (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT NOT NULL,
    definition_id TEXT,
    profile_id    TEXT,
    destination   TEXT NOT NULL,
    type          TEXT NOT NULL,
    event         TEXT,
    at            TEXT NOT NULL,
    message       TEXT NOT NULL
);
CREATE INDEX engage_messages_definition ON engage_messages(definition_id, id);
"""))

MIGRATIONS.append((5, "engage: evaluation indexes", """
-- Engage audiences and computed traits read a stream of events by name (and time window) for all profiles at once.
-- The expression is the query language's event name (emulator/segment/engage/compute.py EVENT_NAME_SQL):
-- a track's event, 'Page Viewed' for page calls, 'Screen Viewed' for screen calls.
CREATE INDEX segment_events_engage_name ON segment_events(
    (CASE type WHEN 'track' THEN event WHEN 'page' THEN 'Page Viewed' WHEN 'screen' THEN 'Screen Viewed' END),
    timestamp);
-- "is this profile considered" (has an external id of the audience's identifier types) without a table lookup.
CREATE INDEX engage_external_ids_profile_type ON engage_external_ids(profile_id, type);
"""))

MIGRATIONS.append((7, "engage: event name and time on each event's profile row", """
-- A realtime audience reads one profile's events by name (and time window): with the name and timestamp here
-- (the query language's event name, compute.EVENT_NAME_SQL; NULL for identify/group/alias), a count is a range
-- of this index and never touches the event log.
ALTER TABLE engage_event_profiles ADD COLUMN name TEXT;
ALTER TABLE engage_event_profiles ADD COLUMN timestamp TEXT;
UPDATE engage_event_profiles SET (name, timestamp) = (SELECT
    CASE e.type WHEN 'track' THEN e.event WHEN 'page' THEN 'Page Viewed' WHEN 'screen' THEN 'Screen Viewed' END,
    e.timestamp FROM segment_events e WHERE e.seq = engage_event_profiles.seq);
CREATE INDEX engage_event_profiles_name ON engage_event_profiles(profile_id, name, timestamp);
"""))

MIGRATIONS.append((8, "engage: one index of events by profile", """
-- engage_event_profiles_name (profile_id, name, timestamp) answers every read by profile; the older
-- (profile_id, seq) index only cost time on each ingest (profile event lists sort by timestamp anyway).
DROP INDEX engage_event_profiles_profile;
"""))

MIGRATIONS.append((9, "braze: rate-limit counts kept in memory", """
DROP TABLE braze_rate_windows;
"""))

MIGRATIONS.append((10, "engage: one index of external ids by profile", """
-- engage_external_ids_profile_type (profile_id, type), from migration 5, answers every read by profile.
DROP INDEX engage_external_ids_profile;
"""))

MIGRATIONS.append((11, "destinations: no per-message in-flight state", """
-- A message stays 'pending' while a request carries it: the request row itself is the in-flight record (open while
-- it has neither an answer nor an error), so sending costs no UPDATE per message. Only pending rows are indexed
-- (delivered and filtered ones leave the index with their last UPDATE), in id order with their due time: a round
-- reads the oldest due rows and stops at its page, instead of joining and sorting every due row first.
-- round_id (the first request of the round that committed it): after a crash, each request of the round counts an
-- attempt for the messages it carries, answered or not, as the round itself would have counted them.
ALTER TABLE delivery_requests ADD COLUMN round_id INTEGER;
UPDATE delivery_requests SET round_id = id;
-- In flight before: attempts already counted every request of the round. The open ones count again when resumed.
UPDATE outbox SET status = 'pending', attempts = attempts - (SELECT count(*) FROM delivery_requests r,
    json_each(r.request, '$.events') j WHERE r.status IS NULL AND r.error IS NULL AND j.value = outbox.id)
    WHERE status = 'inflight';
DROP INDEX outbox_due;
DROP INDEX outbox_inflight;
-- outbox.inflight_request is left unused rather than dropped: DROP COLUMN needs SQLite 3.35.
CREATE INDEX outbox_pending ON outbox(destination, id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX delivery_requests_open ON delivery_requests(id) WHERE status IS NULL AND error IS NULL;
"""))

MIGRATIONS.append((12, "braze: email and phone indexes without the update order", """
-- Every profile update moves updated_seq; with it in these indexes each update rewrote three index entries. A
-- lookup by email or phone finds a handful of rows and orders them itself.
DROP INDEX braze_users_email;
DROP INDEX braze_users_phone;
CREATE INDEX braze_users_email ON braze_users(email);
CREATE INDEX braze_users_phone ON braze_users(phone);
"""))

# Tables that hold configuration-independent bookkeeping and survive reset().
KEPT_ON_RESET = {"schema_version", "meta"}

"""The durable outbox between Segment and its destinations, and the event-delivery trace.

A message is enqueued in the transaction that acknowledged it (SPEC.md §3 "Durable"), one row per destination.
`deliver_due()` plans Segment's requests for the rows that are due (the pure mapping in `braze_cloud` /
`braze_cohorts`), commits the requests, sends them, and applies Braze's answer per message with Segment's
rules: 2xx delivered; 408, 429 and 5xx retried with backoff (honouring `Retry-After`) for up to 4 hours of sandbox
time; any other status, and refusals before sending, discarded with Segment's error code
(`errors.discarded.400`, ...). A message stays pending while a request carries it: the request's row, committed
before it is sent and answered in the transaction that settles its messages, is the in-flight record. A request
found open after a crash is sent again as it was, with the same delivery id, so our Braze applies it once (at
least once on the wire, exactly once in the profile).
"""
from __future__ import annotations

import json
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterator

from ...clock import iso, parse_duration, parse_instant
from . import braze_cloud, braze_cohorts
from .base import DestinationRefusal, EventOutcome, Plan, PlannedRequest, thrown_failure
from .transport import Transport, TransportError

if TYPE_CHECKING:
    import sqlite3

    from ...sandbox import Sandbox

# Segment's integration names: what an `integrations` object says to turn a destination on or off.
INTEGRATION_NAMES = {"braze": ("Braze Cloud Mode (Actions)", "Braze"), "braze_cohorts": ("Braze Cohorts",)}
PLAN_ROWS = 750  # rows planned at once: ten full Braze batches
NOT_SENT = "not sent: an earlier call of the batch failed"
# the trace's outcomes -> the outbox status; `failed` is EMULATOR.md §5's name of what Segment reports as discarded
OUTCOMES = {"delivered": "delivered", "filtered": "filtered", "retrying": "pending", "discarded": "discarded",
            "failed": "discarded", "pending": "pending"}
EMULATOR_LIMIT = "EMULATOR_LIMIT"  # a refusal's code when the emulator itself could not map the event
RETRYABLE = {408, 429} | set(range(500, 600))
NOT_RETRIED_5XX = {501, 505}  # Segment's clients give up on these (segment-api.md §1.6); its pipeline likewise


@dataclass
class Destination:
    """A configured destination: its kind, settings, and how Segment maps events for it."""

    name: str
    kind: str  # 'braze' (Cloud Mode Actions) | 'braze_cohorts'
    settings: dict

    def subscribed(self, message: dict) -> bool:
        """One of its mappings subscribes to the message (subscriptions memoise their answers themselves)."""
        if self.kind == "braze":
            return bool(braze_cloud.match_presets(message, self.settings.get("preset_set") or "classic"))
        return braze_cohorts.subscribed(message, self.settings.get("subscription"))

    def plan(self, events: list[dict], known_cohorts: set[str]) -> Plan:
        if self.kind == "braze":
            return braze_cloud.build_requests(events, self.settings, self.settings.get("preset_set"))
        return self._plan_cohorts(events, known_cohorts)

    def _plan_cohorts(self, events: list[dict], known_cohorts: set[str]) -> Plan:
        # Segment has one Sync Audience mapping per audience, its key hard-coded: plan each audience on its own.
        by_audience: dict[Any, list[int]] = {}
        for index, event in enumerate(events):
            key = ((event.get("context") or {}).get("personas") or {}).get("computation_key")
            by_audience.setdefault(self.settings.get("personas_audience_key", key), []).append(index)
        merged = Plan(requests=[], refusals={})
        for key, indexes in by_audience.items():
            _merge_into(merged, indexes, braze_cohorts.build_requests(
                [events[i] for i in indexes], {**self.settings, "personas_audience_key": key}, known_cohorts))
        return merged

    def read(self, planned: PlannedRequest, status: int, body: Any) -> list[EventOutcome]:
        reader = braze_cloud.read_response if self.kind == "braze" else braze_cohorts.read_response
        return reader(planned, status, body)

    def wants(self, message: dict) -> bool:
        """The message's `integrations` object: `All: false` turns every destination off unless named."""
        integrations = message.get("integrations")
        if not integrations:
            return True
        names = INTEGRATION_NAMES.get(self.kind, ())
        for name in names:
            if name in integrations:
                return bool(integrations[name])
        return integrations.get("All", True) is not False


def _merge_into(merged: Plan, indexes: list[int], part: Plan) -> None:
    """Add the plan of `indexes`' events to `merged`, its event indexes turned back into the whole batch's."""
    remap = indexes.__getitem__
    for request in part.requests:
        request.events = [remap(i) for i in request.events]
        request.sources = [remap(i) for i in request.sources]
        request.batch_events = [remap(i) for i in request.batch_events]
        request.batch_members = [remap(i) for i in request.batch_members]
        merged.requests.append(request)
    merged.refusals.update({remap(i): r for i, r in part.refusals.items()})
    merged.filtered.extend(remap(i) for i in part.filtered)
    merged.skipped.extend(remap(i) for i in part.skipped)
    merged.created_cohorts |= part.created_cohorts


def configured_destinations(config: dict) -> dict[str, Destination]:
    result = {}
    for name, settings in (config["segment"].get("destinations") or {}).items():
        if not isinstance(settings, dict) or settings.get("enabled", True) is False:
            continue
        kind = settings.get("type", name)
        if kind in ("braze", "braze_cohorts"):
            result[name] = Destination(name, kind, dict(settings))
    return result


class _Settlements:
    """The outbox updates and delivery outcomes of one transaction, written with one executemany each at the end
    (a flush settles thousands of messages; a statement per message was most of its SQL)."""

    def __init__(self, conn: "sqlite3.Connection") -> None:
        self.conn = conn
        self.finished: list[tuple] = []
        self.retried: list[tuple] = []
        self.outcomes: list[tuple] = []

    def __enter__(self) -> "_Settlements":
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is None:
            self.write()

    def write(self) -> None:
        for name, sql in _SETTLEMENT_SQL:
            rows = getattr(self, name)
            if rows:
                self.conn.executemany(sql, rows)
                setattr(self, name, [])


_SETTLEMENT_SQL = (
    ("finished", "UPDATE outbox SET status = ?, finished_at = ?, error_code = ?, error = ?, attempts = ?,"
                 " first_attempt_at = ? WHERE id = ?"),
    ("retried", "UPDATE outbox SET next_attempt_at = ?, error_code = ?, error = ?, attempts = ?, first_attempt_at = ?"
                " WHERE id = ?"),
    ("outcomes", "INSERT INTO delivery_outcomes (outbox_id, request_id, attempt, at, outcome, status, error_code,"
                 " error) VALUES (?,?,?,?,?,?,?,?)"),
)


@dataclass
class _Round:
    """What one delivery round (or the resumption of open requests) knows while it sends: the rows it read, the rows
    it sends (with the attempts their requests make), and the refusals waiting for their batch's answer."""

    read: dict[int, dict]
    inflight: dict[int, dict]  # attempts: as before the round; `sent` adds the calls that went out
    deferred: dict[int, DestinationRefusal]
    sent: dict[int, int] = field(default_factory=dict)  # calls carrying each message sent so far: one attempt each

    def row(self, oid: int) -> dict:
        """The message's row as its settlement writes it now: an attempt per call of it that went out."""
        base = self.inflight[oid]
        return {**base, "attempts": base["attempts"] + self.sent.get(oid, 0)}


@dataclass
class _Calls:
    """The committed calls of one batch, sent in order. Segment stops a batch at its first failed call: a later call
    carrying a failed message is not sent, and is closed in the transaction that settles the failure, so a crash in
    between cannot send it after a restart."""

    unsent: dict[int, list[int]]  # request id -> the outbox ids it carries, in sending order
    failed: set[int] = field(default_factory=set)

    def stopped_by(self, failed_now: set[int]) -> list[int]:
        return [request_id for request_id, events in self.unsent.items() if failed_now.intersection(events)]


class Outbox:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self.transport = Transport(sandbox)
        self._deliver_lock = threading.Lock()
        self._pause_requests = 0  # resets waiting for, or holding, the delivery lock
        self._pause_count_lock = threading.Lock()
        self._destinations: tuple[dict, dict[str, Destination]] | None = None
        sandbox.segment.tracking.listeners.append(self._on_accept)
        sandbox.add_flusher("outbox", self.deliver_due)

    # --- configuration ------------------------------------------------------------------------------------------
    @property
    def destinations(self) -> dict[str, Destination]:
        # cached with the configuration they were read from: one replaced meanwhile is never cached as current
        config = self.sandbox.config
        cached = self._destinations
        if cached is None or cached[0] is not config:
            cached = self._destinations = (config, configured_destinations(config))
        return cached[1]

    def _delivery_setting(self, key: str, default: str) -> timedelta:
        return parse_duration((self.sandbox.config["segment"].get("delivery") or {}).get(key, default))

    # --- enqueue (inside the acknowledging transaction) --------------------------------------------------------
    def _on_accept(self, messages: list[dict], conn: "sqlite3.Connection") -> None:
        """Source events go to the cloud-mode destinations connected to their source."""
        cloud = [d for d in self.destinations.values() if d.kind == "braze"]
        if not cloud:
            return
        sources = {s["name"]: s for s in self.sandbox.config["segment"]["sources"]}
        rows: list[tuple] = []
        now = iso(self.sandbox.clock.now())
        for destination in cloud:
            connected = destination.settings.get("sources")
            wanted: dict[str, bool] = {}  # per source: is it connected to this destination
            for message in messages:
                source = message["_source"]
                takes = wanted.get(source)
                if takes is None:
                    if connected is not None:
                        takes = source in connected
                    else:  # the Braze (Currents) source is not connected back into Braze by default
                        takes = sources.get(source, {}).get("type") != "braze"
                    wanted[source] = takes
                if takes:
                    rows.append(self._row(destination, message, now, event_seq=message["_seq"]))
        self._insert(conn, rows)

    def enqueue(self, conn: "sqlite3.Connection", destination_name: str, messages: list[dict],
                texts: list[str] | None = None) -> int:
        """Engage messages (or any message not in the source event log) for one destination; `texts`: their JSON,
        when the caller has it already."""
        destination = self.destinations.get(destination_name)
        if destination is None:
            return 0
        now = iso(self.sandbox.clock.now())
        if texts is None:
            texts = [json.dumps(_strip(message)) for message in messages]
        rows = [self._row(destination, message, now, stored=text) for message, text in zip(messages, texts)]
        self._insert(conn, rows)
        return len(rows)

    def _row(self, destination: Destination, message: dict, now: str, event_seq: int | None = None,
             stored: str | None = None) -> tuple:
        if not destination.wants(message):
            status, error = "filtered", "the message's integrations object turns this destination off"
        elif not destination.subscribed(message):
            status, error = "filtered", "no mapping of this destination subscribes to the event"
        else:
            status, error = "pending", None
        return (destination.name, message["messageId"], event_seq, stored, status, now, now,
                now if status == "filtered" else None, error)

    @staticmethod
    def _insert(conn: "sqlite3.Connection", rows: list[tuple]) -> None:
        if rows:
            conn.executemany(
                "INSERT INTO outbox (destination, message_id, event_seq, message, status, created_at, next_attempt_at,"
                " finished_at, error) VALUES (?,?,?,?,?,?,?,?,?)", rows)

    # --- delivery ------------------------------------------------------------------------------------------------
    @contextmanager
    def paused(self) -> Iterator[None]:
        """No delivery runs while the caller holds this: one in progress stops after the call it is making (answered
        and settled first; the calls it has not sent stay open, as after a crash). A reset holds it, so nothing
        planned before it reaches Braze after it."""
        with self._pause_count_lock:
            self._pause_requests += 1
        try:
            self._deliver_lock.acquire()
        except BaseException:
            self._unpause()
            raise
        try:
            yield
        finally:
            self._unpause()  # before the lock goes: a flush waiting behind the reset then delivers
            self._deliver_lock.release()

    def _unpause(self) -> None:
        with self._pause_count_lock:
            self._pause_requests -= 1

    def _pausing(self) -> bool:
        return self._pause_requests > 0

    def deliver_due(self, stop: threading.Event | None = None) -> dict:
        """Send everything due now; returns counts (and `progressed` for `Sandbox.flush`). `stop`: a background
        worker's signal to leave between two rounds (a stopping server does not wait for a long backlog)."""
        counts = {"delivered": 0, "retried": 0, "discarded": 0}
        with self._deliver_lock:
            self._resume_inflight(counts)
            for destination in self.destinations.values():
                while not (self._pausing() or (stop is not None and stop.is_set())) \
                        and self._deliver_round(destination, counts):
                    pass
        counts["progressed"] = bool(counts["delivered"] or counts["discarded"])
        return counts

    def _deliver_round(self, destination: Destination, counts: dict) -> bool:
        store = self.sandbox.store
        now = self.sandbox.clock.now()
        rows = store.query(
            "SELECT o.id, o.attempts, o.first_attempt_at, coalesce(o.message, e.message) AS message FROM outbox o"
            " LEFT JOIN segment_events e ON e.seq = o.event_seq WHERE o.destination = ? AND o.status = 'pending'"
            " AND o.next_attempt_at <= ? ORDER BY o.id LIMIT ?", (destination.name, iso(now), PLAN_ROWS))
        if not rows:
            return False
        ids = [r["id"] for r in rows]
        events = [_strip(json.loads(r["message"])) for r in rows]
        by_id = {r["id"]: r for r in rows}
        plan = self._plan(destination, events, self._known_cohorts(destination))
        at = iso(now)
        requests: list[tuple[int, PlannedRequest, dict]] = []  # (request id, plan, as stored)
        # A refusal inside a batch waits for the batch's answer: if its call throws, Segment fails it with the batch.
        in_batches = {i for planned in plan.requests if planned.batch for i in planned.batch_members}
        deferred: dict[int, DestinationRefusal] = {}
        with store.transaction() as conn, _Settlements(conn) as settle:
            for index, refusal in plan.refusals.items():
                if refusal.status == 429:
                    continue  # "retried in another batch": stays pending, due now, planned again next round
                if index in in_batches:
                    deferred[ids[index]] = refusal
                    continue
                self._finish(settle, ids[index], by_id[ids[index]], "discarded", refusal.status,
                             _refusal_code(refusal), refusal.message, at, None, counts)
            for index in plan.filtered:
                self._finish(settle, ids[index], by_id[ids[index]], "filtered", None, None,
                             "no mapping of this destination subscribes to the event", at, None, counts)
            for index in plan.skipped:
                self._finish(settle, ids[index], by_id[ids[index]], "delivered", 200, None,
                             "nothing to send for this event", at, None, counts)
            settle.write()
            round_id = None
            for planned in plan.requests:  # committed before any is sent: the open requests are what is in flight
                stored = _stored_request(planned, ids)  # once: stored here, sent below
                request_id = conn.execute(
                    "INSERT INTO delivery_requests (destination, action, started_at, request, round_id)"
                    " VALUES (?,?,?,?,?)", (destination.name, planned.action, at, json.dumps(stored), round_id)).lastrowid
                if round_id is None:
                    round_id = request_id
                    conn.execute("UPDATE delivery_requests SET round_id = id WHERE id = ?", (request_id,))
                requests.append((request_id, planned, stored))
        calls = _Calls({request_id: stored["events"] for request_id, _, stored in requests})
        last_request = {ids[i]: request_id for request_id, planned, _ in requests for i in planned.events}
        inflight = {oid: {"id": oid, "attempts": by_id[oid]["attempts"],
                          "first_attempt_at": by_id[oid]["first_attempt_at"] or at} for oid in last_request}
        batch = _Round(by_id, inflight, deferred)
        for request_id, _, stored in requests:
            if self._pausing():
                # a reset is waiting: the calls not sent yet stay open (resumed later, or emptied by the reset)
                return False
            final_for = {outbox_id for outbox_id, rid in last_request.items() if rid == request_id}
            self._send(destination, request_id, stored, calls, counts, final_for, batch)
        if batch.deferred:  # their batches' calls did not throw: the refusals stand
            with store.transaction() as conn, _Settlements(conn) as settle:
                for oid, refusal in batch.deferred.items():
                    self._finish(settle, oid, by_id[oid], "discarded", refusal.status,
                                 _refusal_code(refusal), refusal.message, iso(now), None, counts)
        self._remember_cohorts(destination, plan, requests)
        retry_now = any(r.status == 429 for r in plan.refusals.values())  # "retried in another batch"
        # Only such refusals and nothing sent: planning again would loop, so stop here.
        if not (requests or plan.filtered or plan.skipped or any(r.status != 429 for r in plan.refusals.values())):
            return False
        # Another round only when this one may have left due rows: a full page, or refusals to plan again.
        return len(rows) >= PLAN_ROWS or retry_now

    def _plan(self, destination: Destination, events: list[dict], known_cohorts: set[str]) -> Plan:
        """The destination's plan for the events. An event the emulator cannot map (an error of ours, e.g. a message
        nested too deeply for Python's recursion limit) must not hold up the others: it is found by planning each
        event alone, refused with the error (recorded as an internal error too), and the rest planned together."""
        try:
            return destination.plan(events, set(known_cohorts))
        except Exception:  # noqa: BLE001 - isolated below, and surfaced
            pass
        failing: dict[int, DestinationRefusal] = {}
        for index, event in enumerate(events):
            try:
                destination.plan([event], set(known_cohorts))
            except Exception as exc:  # noqa: BLE001
                self.sandbox.internal_errors.append(
                    f"delivery to {destination.name}: mapping {event.get('messageId')!r} failed: "
                    + traceback.format_exc(limit=-5))
                failing[index] = DestinationRefusal(
                    f"the emulator could not map this event ({type(exc).__name__}: {str(exc)[:200]})", None,
                    EMULATOR_LIMIT)  # no HTTP status: nothing was sent, and no answer refused it
        rest = [i for i in range(len(events)) if i not in failing]
        plan = Plan(requests=[], refusals=dict(failing))
        if rest:
            _merge_into(plan, rest, destination.plan([events[i] for i in rest], known_cohorts))
        return plan

    def _send(self, destination: Destination, request_id: int, stored: dict, calls: _Calls, counts: dict,
              final_for: set[int], batch: _Round) -> None:
        """Send one stored request. `final_for`: the messages whose last request this is; a message is settled only
        by its last request, so a crash in between leaves it in flight, not delivered."""
        calls.unsent.pop(request_id, None)
        if calls.failed.intersection(stored["events"]):
            return  # an earlier call of the batch failed (e.g. creating the cohort): closed as not sent with it
        for oid in dict.fromkeys(stored["events"]):
            batch.sent[oid] = batch.sent.get(oid, 0) + 1
        request = stored["request"]
        try:
            answer = self.transport.send(request["endpoint"], request["method"], request["path"], request["headers"],
                                         request["body"], delivery_id=f"{destination.name}:{request_id}")
        except TransportError as exc:
            self._apply(destination, request_id, stored, None, exc, calls, counts, final_for, batch)
            return
        self._apply(destination, request_id, stored, answer, None, calls, counts, final_for, batch)

    def _apply(self, destination: Destination, request_id: int, stored: dict, answer: Any, error: TransportError | None,
               calls: _Calls, counts: dict, final_for: set[int], batch: _Round) -> None:
        now = self.sandbox.clock.now()
        at = iso(now)
        if error is not None:  # the request client throws: a failure of the whole batch
            outcomes = thrown_failure(_planned(stored), 0, error.code, error.detail, None)
            retry_after = None
        else:
            outcomes = destination.read(_planned(stored), answer.status, answer.body)
            retry_after = _retry_after(answer.headers, now)
        rows = {oid: batch.row(oid) for oid in stored["events"] if oid in batch.inflight}
        # an answer can name the batch's refused events too (a failure thrown out of performBatch fails them all;
        # an ecommerce error at a refused payload's position is read onto it): that failure replaces their refusal
        # and counts as an attempt (written with its settlement)
        for outcome in outcomes:
            oid = outcome.index
            if oid in batch.deferred:
                del batch.deferred[oid]
                read = batch.read[oid]
                rows[oid] = {"id": oid, "attempts": read["attempts"] + 1,
                             "first_attempt_at": read["first_attempt_at"] or at}
        with self.sandbox.store.transaction() as conn, _Settlements(conn) as settle:
            conn.execute(
                "UPDATE delivery_requests SET status = ?, response = ?, error = ?, latency_ms = ? WHERE id = ?",
                (answer.status if answer else None,
                 json.dumps({"headers": _kept_headers(answer.headers), "body": answer.body}) if answer else None,
                 error.code if error else None, round(answer.latency_ms, 3) if answer else None, request_id))
            failed_now: set[int] = set()
            for outcome in outcomes:
                row = rows.get(outcome.index)
                if row is None:
                    continue
                if outcome.ok:
                    if outcome.index in final_for:
                        self._finish(settle, outcome.index, row, "delivered", outcome.status, None, None, at,
                                     request_id, counts)
                    else:  # an earlier call of the message (creating its cohort): an attempt of its own in the trace
                        settle.outcomes.append((outcome.index, request_id, row["attempts"], at, "delivered",
                                                outcome.status, None, None))
                    continue
                failed_now.add(outcome.index)
                code = outcome.code if error is not None else str(outcome.status)
                message = outcome.message or (f"{outcome.code}: {outcome.message}" if outcome.code else None)
                if error is not None or (outcome.status in RETRYABLE and outcome.status not in NOT_RETRIED_5XX):
                    self._retry(settle, outcome.index, row, outcome.status or None, code, message, now, retry_after,
                                request_id, counts)
                else:
                    self._finish(settle, outcome.index, row, "discarded", outcome.status,
                                 f"errors.discarded.{outcome.status}", message, at, request_id, counts)
            if failed_now:
                calls.failed |= failed_now
                conn.executemany("UPDATE delivery_requests SET error = ? WHERE id = ?",
                                 [(NOT_SENT, stopped) for stopped in calls.stopped_by(failed_now)])

    def _retry(self, settle: _Settlements, outbox_id: int, row: dict, status: int | None, code: str,
               message: str | None, now: datetime, retry_after: float | None, request_id: int, counts: dict) -> None:
        at = iso(now)
        first = parse_instant(row["first_attempt_at"]) if row["first_attempt_at"] else now
        if now - first >= self._delivery_setting("retry_window", "4h"):
            self._finish(settle, outbox_id, row, "discarded", status, f"errors.discarded.{code}",
                         f"retries exhausted after {self._delivery_setting('retry_window', '4h')}: {message}", at,
                         request_id, counts)
            return
        base = self._delivery_setting("backoff_base", "1s")
        backoff = min(base * (2 ** max(row["attempts"] - 1, 0)), self._delivery_setting("backoff_max", "10m"))
        if retry_after is not None:
            backoff = max(backoff, timedelta(seconds=retry_after))
        error_code = f"errors.awaiting-retry.{code if status is None else ('5xx' if status >= 500 else status)}"
        settle.retried.append((iso(now + backoff), error_code, message, row["attempts"], row["first_attempt_at"],
                               outbox_id))
        settle.outcomes.append((outbox_id, request_id, row["attempts"], at, "retrying", status, error_code, message))
        counts["retried"] += 1

    @staticmethod
    def _finish(settle: _Settlements, outbox_id: int, row: dict, outcome: str, status: int | None,
                error_code: str | None, message: str | None, at: str, request_id: int | None, counts: dict) -> None:
        attempt = row["attempts"] + (1 if request_id is None else 0)  # a refusal before sending is an attempt too
        first = row["first_attempt_at"] or (at if request_id is None and outcome != "filtered" else None)
        settle.finished.append((outcome, at, error_code, message, attempt if outcome != "filtered" else row["attempts"],
                                first, outbox_id))
        settle.outcomes.append((outbox_id, request_id, attempt, at, outcome, status, error_code, message))
        if outcome in counts:
            counts[outcome] += 1

    def _resume_inflight(self, counts: dict) -> None:
        """Requests committed but never answered (the process died, or a round broke off): send them again as they
        were, in order (a cohort is created before its users call); a message is settled by its last one."""
        store = self.sandbox.store
        open_requests = store.query(
            "SELECT id, destination, request, round_id FROM delivery_requests WHERE status IS NULL AND error IS NULL"
            " ORDER BY id")
        if not open_requests:
            return
        destinations = self.destinations
        # a destination no longer configured keeps its requests open, as its messages stay pending
        resumed = [(row["id"], destinations[row["destination"]], json.loads(row["request"])) for row in open_requests
                   if row["destination"] in destinations]
        last_request = {oid: request_id for request_id, _, request in resumed for oid in request["events"]}
        # Attempts as the broken-off rounds counted them: each call of theirs that went out before the crash (an
        # answer, or a connection error) is an attempt of the messages it carried, as each call resent now will be;
        # the first attempt, when the message had none, at the round's start.
        last_open = {}
        for row in open_requests:
            last_open[row["round_id"]] = row["id"]
        sent: dict[int, int] = {}
        started: dict[int, str] = {}
        for round_id, last_id in last_open.items():
            for row in store.query("SELECT request, started_at, status IS NOT NULL OR (error IS NOT NULL AND error != ?)"
                                   " AS went_out FROM delivery_requests WHERE id BETWEEN ? AND ? AND round_id = ?",
                                   (NOT_SENT, round_id, last_id, round_id)):
                for oid in dict.fromkeys(json.loads(row["request"])["events"]):
                    started.setdefault(oid, row["started_at"])
                    if row["went_out"]:
                        sent[oid] = sent.get(oid, 0) + 1
        read = {r["id"]: r for r in store.query(
            "SELECT id, attempts, first_attempt_at FROM outbox WHERE status = 'pending'"
            " AND id IN (SELECT value FROM json_each(?))", (json.dumps(list(last_request)),))}
        batch = _Round(read, {oid: {"id": oid, "attempts": row["attempts"],
                                    "first_attempt_at": row["first_attempt_at"] or started.get(oid)}
                              for oid, row in read.items()}, {}, sent)
        calls = _Calls({request_id: request["events"] for request_id, _, request in resumed})
        for request_id, destination, request in resumed:
            if self._pausing():
                return
            final_for = {oid for oid in request["events"] if last_request[oid] == request_id}
            self._send(destination, request_id, request, calls, counts, final_for, batch)

    # --- cohort memory -------------------------------------------------------------------------------------------
    def _known_cohorts(self, destination: Destination) -> set[str]:
        if destination.kind != "braze_cohorts":
            return set()
        return {r["key"][len("cohort:"):] for r in self.sandbox.store.query(
            "SELECT key FROM destination_state WHERE destination = ? AND key LIKE 'cohort:%'", (destination.name,))}

    def _remember_cohorts(self, destination: Destination, plan: Plan,
                          requests: list[tuple[int, PlannedRequest, dict]]) -> None:
        if not plan.created_cohorts:
            return
        created = [p.body.get("name") for rid, p, _ in requests if p.path == braze_cohorts.CREATE_PATH
                   and self.sandbox.store.execute("SELECT status FROM delivery_requests WHERE id = ?",
                                                  (rid,)).fetchone()[0] in range(200, 300)]
        with self.sandbox.store.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO destination_state (destination, key, value) VALUES (?, ?, ?)",
                             [(destination.name, f"cohort:{name}", "created") for name in created])

    # --- the event-delivery trace ---------------------------------------------------------------------------------
    def deliveries(self, *, destination: str | None = None, message_id: str | None = None,
                   status: str | None = None, limit: int = 100) -> list[dict]:
        """Per destination and message, newest first: the event as sent to Segment, each attempt's request to the
        destination and its response, the outcome, Segment's error code, attempts and latency."""
        where, params = [], []
        for clause, value in (("o.destination = ?", destination), ("o.message_id = ?", message_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if status is not None and status not in OUTCOMES:
            raise ValueError(f"status must be one of delivered, filtered, retrying, discarded (also failed for discarded,"
                             f" pending for retrying), not {status!r}")
        if status == "retrying":  # an outcome: messages waiting for their next attempt, and those in flight
            where.append("o.status = 'pending'")
        elif status is not None:
            where.append("o.status = ?")
            params.append(OUTCOMES[status])
        sql = ("SELECT o.*, coalesce(o.message, e.message) AS event FROM outbox o"
               " LEFT JOIN segment_events e ON e.seq = o.event_seq")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY o.id DESC LIMIT ?"
        params.append(max(1, min(int(limit), 1000)))
        rows = self.sandbox.store.query(sql, params)
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        attempts: dict[int, list[dict]] = {}
        for a in self.sandbox.store.query(
                "SELECT d.*, r.request, r.response, r.latency_ms, r.error AS transport_error FROM delivery_outcomes d"
                f" LEFT JOIN delivery_requests r ON r.id = d.request_id WHERE d.outbox_id IN ({marks})"
                " ORDER BY d.rowid", [r["id"] for r in rows]):
            request = json.loads(a["request"])["request"] if a["request"] else None
            response = json.loads(a["response"]) if a["response"] else None
            attempts.setdefault(a["outbox_id"], []).append({
                "attempt": a["attempt"], "at": a["at"], "outcome": a["outcome"], "status": a["status"],
                "error_code": a["error_code"], "error": a["error"],
                "request": _public_request(request) if request else None, "response": response,
                "latency_ms": a["latency_ms"]})
        return [{
            "destination": r["destination"], "message_id": r["message_id"], "outcome": _outcome(r["status"]),
            "error_code": r["error_code"], "error": r["error"], "attempt_count": r["attempts"],
            "next_attempt_at": r["next_attempt_at"] if r["status"] == "pending" else None,
            "event": _strip(json.loads(r["event"])) if r["event"] else None, "attempts": attempts.get(r["id"], [])}
            for r in rows]

    def summary(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for row in self.sandbox.store.query("SELECT destination, status, count(*) AS n FROM outbox GROUP BY 1, 2"):
            result.setdefault(row["destination"], {})[_outcome(row["status"])] = row["n"]
        return result

    def close(self) -> None:
        self.transport.close()


def _refusal_code(refusal: DestinationRefusal) -> str:
    """Segment's code for a refusal before sending; one the emulator made (it could not map the event) says so."""
    return "errors.discarded.emulator" if refusal.code == EMULATOR_LIMIT else f"errors.discarded.{refusal.status}"


def _strip(message: dict) -> dict:
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _outcome(status: str) -> str:
    return "retrying" if status == "pending" else status


def _stored_request(planned: PlannedRequest, ids: list[int]) -> dict:
    """A planned request with its event indexes turned into outbox ids, as kept in delivery_requests."""
    return {
        "request": {"method": planned.method, "endpoint": planned.endpoint, "path": planned.path,
                    "headers": planned.headers, "body": planned.body},
        "action": planned.action, "batch": planned.batch,
        "events": [ids[i] for i in dict.fromkeys(planned.events)],
        "sources": [ids[i] for i in planned.sources], "batch_events": [ids[i] for i in planned.batch_events],
        "batch_members": [ids[i] for i in planned.batch_members],
    }


def _planned(stored: dict) -> PlannedRequest:
    request = stored["request"]
    return PlannedRequest(method=request["method"], path=request["path"], headers=request["headers"],
                          body=request["body"], events=stored["events"], sources=stored["sources"],
                          action=stored["action"], endpoint=request["endpoint"], batch=stored["batch"],
                          batch_events=stored["batch_events"], batch_members=stored.get("batch_members", []))


def _public_request(request: dict) -> dict:
    return {"method": request["method"], "url": request["endpoint"].rstrip("/") + request["path"]
            if request["endpoint"] != "braze" else "<sandbox braze>" + request["path"],
            "headers": request["headers"], "body": request["body"]}


def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    wanted = ("content-type", "retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
    return {k: v for k, v in headers.items() if k.lower() in wanted}


def _retry_after(headers: dict[str, str], now: datetime) -> float | None:
    """`Retry-After` in seconds or as an HTTP date (RFC 9110), relative to the sandbox clock."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None

"""Nothing acknowledged is lost and nothing is applied twice, even when the server is killed mid-delivery."""
import signal
import time

import httpx

from support import start_server

from .test_engage_to_braze import become_dormant, sandbox_for

USERS, EVENTS_PER_USER = 100, 100


def _summary(url: str) -> dict:
    return httpx.get(url + "/_emulator/segment/deliveries", params={"limit": 1}).json()["summary"].get("braze", {})


def test_sigkill_during_delivery_then_restart_applies_each_event_exactly_once(tmp_path):
    db = tmp_path / "outbox.db"
    process, segment_url, braze_url = start_server("--db", str(db))
    try:
        # Slow Braze down so the kill lands while requests are in flight.
        httpx.put(braze_url + "/_emulator/faults", json=[{"app": "braze", "path": "/users/track", "latency_ms": 15}])
        with httpx.Client(base_url=segment_url, auth=("sandbox-write-key", "")) as client:
            for n in range(EVENTS_PER_USER):
                items = [{"type": "track", "userId": f"u{u}", "event": "Durable", "messageId": f"m-{n}-{u}"}
                         for u in range(USERS)]
                assert client.post("/v1/batch", json={"batch": items}).status_code == 200
        deadline = time.monotonic() + 30
        while _summary(segment_url).get("delivered", 0) < 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
        delivered_before_kill = _summary(segment_url).get("delivered", 0)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert 0 < delivered_before_kill < USERS * EVENTS_PER_USER, "the kill must land during delivery"

    process, segment_url, braze_url = start_server("--db", str(db))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            httpx.post(segment_url + "/_emulator/flush", timeout=120)
            summary = _summary(segment_url)
            if summary.get("delivered", 0) == USERS * EVENTS_PER_USER:
                break
            time.sleep(0.1)
        assert summary == {"delivered": USERS * EVENTS_PER_USER}
        counts = {}
        with httpx.Client(base_url=braze_url, headers={"Authorization": "Bearer sandbox-rest-key"}) as braze:
            for start in range(0, USERS, 50):
                answer = braze.post("/users/export/ids", json={
                    "external_ids": [f"u{u}" for u in range(start, start + 50)], "fields_to_export": ["external_id", "custom_events"]})
                for user in answer.json()["users"]:
                    counts[user["external_id"]] = {e["name"]: e["count"] for e in user["custom_events"]}["Durable"]
        assert counts == {f"u{u}": EVENTS_PER_USER for u in range(USERS)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


class _DiesAfterSending:
    """The process 'dies' right after some calls reached Braze, before their answers were settled."""

    def __init__(self, transport, deaths):
        self.transport, self.real, self.deaths, self.sent = transport, transport.send, deaths, []

    def __call__(self, endpoint, method, path, headers, body, delivery_id=None):
        answer = self.real(endpoint, method, path, headers, body, delivery_id=delivery_id)
        self.sent.append((path, delivery_id))
        if len(self.sent) in self.deaths:
            raise KeyboardInterrupt("killed mid-round")
        return answer


def test_a_round_broken_off_after_braze_applied_is_sent_again_with_its_delivery_id_and_counted_once(sandbox):
    sandbox.segment.ingest([{"type": "track", "userId": f"u{u}", "event": "Durable"} for u in range(3)] * 2)
    dies = _DiesAfterSending(sandbox.outbox.transport, deaths={1})
    sandbox.outbox.transport.send = dies
    try:
        sandbox.flush()
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the round should have been broken off")
    # Braze applied the batch, Segment never read the answer: the messages are still waiting, nothing is lost.
    assert sandbox.outbox.summary()["braze"] == {"retrying": 6}
    assert {e["name"]: e["count"] for e in sandbox.braze.user(external_id="u0")["custom_events"]} == {"Durable": 2}

    sandbox.flush()  # the "restarted" worker: the open request is sent again, as it was
    assert dies.sent[-1] == dies.sent[0]  # same path, same delivery id
    assert sandbox.outbox.summary()["braze"] == {"delivered": 6}
    for u in range(3):
        assert {e["name"]: e["count"] for e in sandbox.braze.user(external_id=f"u{u}")["custom_events"]} == {"Durable": 2}
    trace = sandbox.segment.deliveries(destination="braze")
    assert {t["attempt_count"] for t in trace} == {1}
    assert {tuple(a["outcome"] for a in t["attempts"]) for t in trace} == {("delivered",)}


def test_a_cohort_round_broken_off_before_any_answer_creates_the_cohort_then_adds_its_users():
    with sandbox_for({"braze_cohorts": True}) as sb:
        sb.segment.ingest([{"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}}])
        sb.flush()  # u1 exists in Braze
        real = sb.outbox.transport.send

        def dies_before_sending(*args, **kwargs):
            raise KeyboardInterrupt("killed before the first call")

        sb.outbox.transport.send = dies_before_sending
        try:
            become_dormant(sb)
        except KeyboardInterrupt:
            pass
        assert sb.braze.cohort_members("dormant_shopper") == []
        sb.outbox.transport.send = real
        sb.flush()
        assert [m["external_id"] for m in sb.braze.cohort_members("dormant_shopper")] == ["u1"]
        calls = sb.journal.search(app="braze", path="/partners/segment/cohorts*")
        assert [c["path"] for c in reversed(calls)] == ["/partners/segment/cohorts", "/partners/segment/cohorts/users"]
        assert sb.outbox.summary()["braze_cohorts"] == {"delivered": 1}


def test_a_store_killed_mid_delivery_before_migration_11_delivers_its_in_flight_messages_once(tmp_path):
    import sqlite3

    from emulator import Sandbox
    from emulator.schema import MIGRATIONS

    path = str(tmp_path / "old.db")
    with Sandbox(path=path) as sb:
        sb.segment.ingest([{"type": "track", "userId": "u1", "event": "Durable"} for _ in range(3)])
        sb.outbox.transport.send = _DiesAfterSending(sb.outbox.transport, deaths={1})
        try:
            sb.flush()
        except KeyboardInterrupt:
            pass
    with sqlite3.connect(path) as conn:  # as the pre-11 code left it: rows 'inflight', their attempt counted
        conn.executescript(
            "DROP INDEX outbox_pending; DROP INDEX delivery_requests_open;"
            " ALTER TABLE delivery_requests DROP COLUMN round_id;"
            " UPDATE outbox SET status = 'inflight', inflight_request = (SELECT max(id) FROM delivery_requests),"
            "  attempts = attempts + 1, first_attempt_at = '2026-01-01T00:00:00.000Z';"
            " CREATE INDEX outbox_due ON outbox(destination, status, next_attempt_at, id);"
            " CREATE INDEX outbox_inflight ON outbox(inflight_request) WHERE status = 'inflight';"
            " DELETE FROM schema_version WHERE version = 11;")
    with Sandbox(path=path) as sb:
        assert sb.store.version == max(version for version, _, _ in MIGRATIONS)
        assert sb.outbox.summary() == {"braze": {"retrying": 3}}
        sb.flush()
        assert sb.outbox.summary() == {"braze": {"delivered": 3}}
        assert {e["name"]: e["count"] for e in sb.braze.user(external_id="u1")["custom_events"]} == {"Durable": 3}
        assert {d["attempt_count"] for d in sb.segment.deliveries()} == {1}  # the attempt in flight, counted once


def _dies_after_settling(sb, path, step):
    """Run `step(sb)` in a process that 'dies' right after the answer to the first call to `path` is settled."""
    settle = sb.outbox._apply

    def dies(destination, request_id, stored, *args, **kwargs):
        settle(destination, request_id, stored, *args, **kwargs)
        if stored["request"]["path"] == path:
            raise KeyboardInterrupt(f"killed right after the answer to {path} was settled")

    sb.outbox._apply = dies
    try:
        step(sb)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError(f"no call to {path} was settled")
    finally:
        sb.outbox._apply = settle


def test_a_batch_stopped_by_a_failed_call_stays_stopped_when_the_process_dies_right_after_the_failure():
    with sandbox_for({"braze_cohorts": True}) as sb:
        sb.segment.ingest([{"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}}])
        sb.flush()  # u1 exists in Braze
        sb.faults.add(app="braze", path="/partners/segment/cohorts", status=503, count=1)
        _dies_after_settling(sb, "/partners/segment/cohorts", become_dormant)
        sb.flush()  # the restart: the users call was stopped with its batch, it is not sent on its own
        assert sb.journal.search(app="braze", path="/partners/segment/cohorts/users") == []
        assert sb.segment.deliveries(destination="braze_cohorts")[0]["outcome"] == "retrying"
        sb.clock.advance("2s")  # past the backoff: the batch is planned again, create then users
        sb.flush()
        assert [m["external_id"] for m in sb.braze.cohort_members("dormant_shopper")] == ["u1"]
        assert sb.outbox.summary()["braze_cohorts"] == {"delivered": 1}


def test_a_reset_waits_for_the_call_in_flight_only_not_for_the_rest_of_the_round(sandbox):
    import threading

    sandbox.segment.ingest([{"type": "track", "userId": f"u{i}", "event": "Queued"} for i in range(300)])  # 4 calls
    real, sent, resetter = sandbox.outbox.transport.send, [], []

    def send(*args, **kwargs):
        sent.append(args[2])
        if not resetter:  # a reset arrives while the first call is in flight
            resetter.append(threading.Thread(target=sandbox.reset))
            resetter[0].start()
            while not sandbox.outbox._pausing():
                threading.Event().wait(0.001)
        return real(*args, **kwargs)

    sandbox.outbox.transport.send = send
    sandbox.flush()
    resetter[0].join(10)
    assert sent == ["/users/track"]  # the three calls after it were never sent
    assert sandbox.segment.events() == [] and sandbox.outbox.summary() == {}
    assert sandbox.braze.users_count() == 0


def test_a_round_broken_off_between_two_calls_of_a_message_keeps_its_attempt_count_and_first_attempt_time():
    with sandbox_for({"braze_cohorts": True}, braze_enabled=False) as sb:
        sb.braze.track(attributes=[{"external_id": "u1"}])  # u1 exists in Braze
        started = sb.clock.now()
        _dies_after_settling(sb, "/partners/segment/cohorts", become_dormant)  # before the users call
        sb.clock.advance("1h")  # the restart comes later
        sb.faults.add(app="braze", path="/partners/segment/cohorts/users", status=500, count=1)
        sb.flush()
        [trace] = sb.segment.deliveries(destination="braze_cohorts")
        # as an unbroken round counts it: two calls carried the message (create, then users)
        assert trace["attempt_count"] == 2 and trace["outcome"] == "retrying"
        first_attempt = sb.store.query("SELECT first_attempt_at FROM outbox WHERE destination = 'braze_cohorts'")
        assert first_attempt == [{"first_attempt_at": started.isoformat(timespec="milliseconds").replace("+00:00", "Z")}]

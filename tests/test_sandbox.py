"""The Sandbox itself: isolation, clock, reset, configuration, control API, debugger, journal."""
import textwrap

import pytest

from emulator import Sandbox
from emulator.clock import ClockError, iso
from emulator.config import ConfigError


def test_two_sandboxes_in_one_process_share_nothing():
    with Sandbox() as a, Sandbox() as b:
        a.segment.ingest({"type": "identify", "userId": "only-in-a"})
        a.clock.advance("3d")
        assert b.segment.events() == []
        assert b.clock.now() < a.clock.now()


def test_the_manual_clock_stands_still_and_never_goes_backwards(sandbox):
    start = sandbox.clock.now()
    assert sandbox.clock.now() == start
    sandbox.clock.advance(days=31)
    assert (sandbox.clock.now() - start).days == 31
    with pytest.raises(ClockError):
        sandbox.clock.set("2025-01-01T00:00:00Z")
    with pytest.raises(ClockError):
        sandbox.clock.advance("-1d")


def test_reset_empties_data_keeps_configuration_and_rewinds_the_clock():
    with Sandbox(config={"segment": {"sources": [{"name": "web", "write_key": "wk"}]}}) as sb:
        sb.segment.ingest({"type": "identify", "userId": "u1"}, write_key="wk")
        first_id = sb.segment.events()[0]["messageId"]
        sb.clock.advance("2d")
        sb.reset()
        assert sb.segment.events() == [] and sb.segment.debugger() == [] and sb.journal.search() == []
        assert sb.config["segment"]["sources"][0]["write_key"] == "wk"
        assert sb.clock.now() == sb.clock.start
        sb.segment.ingest({"type": "identify", "userId": "u1"}, write_key="wk")
        assert sb.segment.events()[0]["messageId"] == first_id  # the RNG is reseeded too


def test_a_file_store_is_found_again_after_a_restart(tmp_path):
    db = tmp_path / "sandbox.db"
    with Sandbox(path=db) as sb:
        sb.segment.ingest([{"type": "track", "userId": "u1", "event": f"E{i}"} for i in range(10)])
        ids_first_life = {m["messageId"] for m in sb.segment.events()}
    with Sandbox(path=db) as sb:
        assert len(sb.segment.events()) == 10
        sb.segment.ingest({"type": "track", "userId": "u1", "event": "After restart"})
        new_id = sb.segment.events()[-1]["messageId"]
        assert new_id not in ids_first_life  # a restarted store does not hand out old ids again
        assert sb.store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_second_sandbox_on_the_same_file_waits_for_the_first_ones_write_instead_of_failing(tmp_path):
    import threading
    import time

    db = tmp_path / "shared.db"
    with Sandbox(path=db) as first, Sandbox(path=db) as second:  # as a second process would open it
        writing, wrote = threading.Event(), []

        def hold_a_write() -> None:
            with first.store.transaction() as conn:
                conn.execute("INSERT INTO meta (key, value) VALUES ('held', '1')")
                writing.set()
                time.sleep(0.3)
            wrote.append(time.monotonic())

        holder = threading.Thread(target=hold_a_write)
        holder.start()
        writing.wait(5)
        # reads then writes: begun deferred, its snapshot would be stale once the first commits ("database is locked")
        second.segment.ingest({"type": "track", "userId": "u1", "event": "Waited"})
        holder.join()
        assert [e["event"] for e in second.segment.events()] == ["Waited"]
        assert first.store.query("SELECT value FROM meta WHERE key = 'held'") == [{"value": "1"}]


def test_yaml_configuration_is_merged_over_the_defaults(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent("""
        segment:
          sources: [{name: web, write_key: wk-web}]
          space: {id: spa_demo}
    """))
    with Sandbox(config=path) as sb:
        assert sb.config["segment"]["sources"] == [{"name": "web", "write_key": "wk-web"}]
        space = sb.config["segment"]["space"]
        assert (space["id"], space["access_token"]) == ("spa_demo", "sandbox-profile-token")
        assert sb.config["braze"]["rest_api_keys"] == ["sandbox-rest-key"]


@pytest.mark.parametrize("config, path, expected", [
    ({"segment": {"sourcez": []}}, "segment.sourcez", "no such key"),
    ({"segment": {"strict": "yes"}}, "segment.strict", "true or false"),
    ({"segment": {"region": "APAC"}}, "segment.region", "one of 'US', 'EU'"),
    ({"segment": {"sources": [{"name": "web"}]}}, "segment.sources[0].write_key", "required"),
    ({"segment": {"sources": [{"name": "a", "write_key": "k"}, {"name": "b", "write_key": "k"}]}},
     "segment.sources[1].write_key", "no other source"),
    ({"seed": 1.5}, "seed", "an integer"),
])
def test_bad_configuration_is_refused_with_its_path_and_what_was_expected(config, path, expected):
    with pytest.raises(ConfigError) as raised:
        Sandbox(config=config)
    assert raised.value.path == path
    assert expected in str(raised.value)


def test_a_yaml_error_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("segment: [unclosed")
    with pytest.raises(ConfigError) as raised:
        Sandbox(config=path)
    assert str(path) in str(raised.value)


# --- control API ----------------------------------------------------------------------------------------

def test_health_answers_on_both_apps(sandbox):
    for client in (sandbox.segment_client(), sandbox.braze_client()):
        body = client.get("/_emulator/health").json()
        assert body["status"] == "ok" and body["store"] == "memory" and body["schema_version"] >= 1


def test_the_clock_moves_over_http_and_refuses_to_go_back(segment):
    assert segment.get("/_emulator/clock").json()["now"] == "2026-01-01T00:00:00.000Z"
    assert segment.post("/_emulator/clock", json={"advance": "31d"}).json()["now"] == "2026-02-01T00:00:00.000Z"
    assert segment.post("/_emulator/clock", json={"set": "2026-03-01T00:00:00Z"}).json()["now"] == \
        "2026-03-01T00:00:00.000Z"
    response = segment.post("/_emulator/clock", json={"set": "2026-01-05T00:00:00Z"})
    assert response.status_code == 400 and "never goes backwards" in response.json()["error"]
    assert segment.post("/_emulator/clock", json={"advance": "soon"}).status_code == 400
    assert segment.post("/_emulator/clock", json={"advance": "1d", "set": "x"}).status_code == 400
    assert segment.post("/_emulator/clock", content=b"[").status_code == 400


def test_reset_over_http_empties_the_debugger(segment, sandbox):
    segment.post("/v1/identify", json={"writeKey": "sandbox-write-key", "userId": "u1"})
    assert segment.post("/_emulator/reset").json()["reset"] is True
    assert sandbox.segment.debugger() == []


def test_config_put_replaces_the_configuration_after_validation(segment, sandbox):
    bad = segment.put("/_emulator/config", json={"segment": {"strict": "maybe"}})
    assert bad.status_code == 400 and "segment.strict" in bad.json()["error"]
    good = segment.put("/_emulator/config", json={"segment": {"strict": True}})
    assert good.status_code == 200 and good.json()["segment"]["strict"] is True
    assert segment.post("/v1/track", json={"userId": "u", "event": "E", "writeKey": "bad"}).status_code == 401


def test_flush_answers_its_counts(segment):
    assert segment.post("/_emulator/flush").json() == {"delivered": 0, "retried": 0, "discarded": 0, "dropped": 0}


@pytest.mark.parametrize("app, path", [
    ("segment", "/_emulator/health"), ("segment", "/_emulator/requests"), ("segment", "/_emulator/segment/debugger"),
    ("segment", "/_emulator/segment/deliveries"), ("segment", "/_emulator/segment/engage/debugger"),
    ("braze", "/_emulator/health"), ("braze", "/_emulator/braze/segments"), ("braze", "/_emulator/braze/cohorts"),
])
def test_the_control_token_protects_every_control_and_inspection_route(app, path):
    with Sandbox(config={"control_token": "s3cret"}) as sb, getattr(sb, f"{app}_client")() as client:
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"X-Emulator-Token": "s3cret"}).status_code == 200


def test_a_configuration_put_keeps_the_control_token_and_seed_it_does_not_name():
    with Sandbox(config={"control_token": "s3cret"}, seed=7) as sb, sb.segment_client() as client:
        token = {"X-Emulator-Token": "s3cret"}
        assert client.put("/_emulator/config", json={"segment": {"strict": True}}, headers=token).status_code == 200
        assert client.get("/_emulator/health").status_code == 401
        assert sb.config["seed"] == 7 and sb.config["segment"]["strict"] is True
        refused = client.put("/_emulator/config", json={"seed": 5}, headers=token)  # ids given would repeat
        assert refused.status_code == 400 and "seed" in refused.text and sb.config["seed"] == 7
        assert client.put("/_emulator/config", json={"control_token": None}, headers=token).status_code == 200
        assert client.get("/_emulator/health").status_code == 200  # named: replaced


def test_the_request_journal_records_both_apps_with_masked_credentials(sandbox):
    sandbox.segment_client("sandbox-write-key").post("/v1/track", json={"userId": "u1", "event": "E"})
    sandbox.braze_client().post("/no/such/path", json={})
    segment_entry = sandbox.journal.search(app="segment")[0]
    assert (segment_entry["method"], segment_entry["path"], segment_entry["status"]) == ("POST", "/v1/track", 200)
    assert segment_entry["request_body"] == {"userId": "u1", "event": "E"}
    assert segment_entry["response_body"] == {"success": True}
    assert "sandbox-write-key" not in str(segment_entry["request_headers"])
    braze_entry = sandbox.journal.search(app="braze")[0]
    assert (braze_entry["status"], braze_entry["response_body"]) == (404, {"message": "Not Found"})
    over_http = sandbox.segment_client().get("/_emulator/requests", params={"app": "segment", "path": "/v1/*"}).json()
    assert [r["path"] for r in over_http["requests"]] == ["/v1/track"]


def test_the_journal_is_bounded():
    with Sandbox(config={"journal_limit": 50}) as sb, sb.segment_client() as client:
        for _ in range(450):
            client.post("/v1/identify", json={"userId": "u1", "writeKey": "sandbox-write-key"})
        assert len(sb.journal.search(limit=1000)) <= 50 + 200


# --- debugger ---------------------------------------------------------------------------------------------

def test_the_debugger_is_searchable_by_type_event_user_and_text(sandbox):
    sandbox.segment.ingest([
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"coupon": "SPRING"}},
        {"type": "track", "userId": "u2", "event": "Product Viewed"},
        {"type": "identify", "userId": "u1", "traits": {"email": "ana@example.com"}},
    ])
    assert [e["event"] for e in sandbox.segment.debugger(type="track")] == ["Product Viewed", "Order Completed"]
    assert [e["type"] for e in sandbox.segment.debugger(user_id="u1")] == ["identify", "track"]
    assert sandbox.segment.debugger(text="spring")[0]["event"] == "Order Completed"
    assert sandbox.segment.debugger(text="%") == []
    over_http = sandbox.segment_client().get("/_emulator/segment/debugger",
                                             params={"event": "Product Viewed", "source": "sandbox"}).json()
    assert over_http["count"] == 1 and over_http["messages"][0]["userId"] == "u2"


def test_the_debugger_is_bounded_per_source_but_the_event_log_is_not():
    with Sandbox(config={"segment": {"debugger_limit": 100}}) as sb:
        for chunk in range(10):
            sb.segment.ingest([{"type": "track", "userId": "u1", "event": f"E{chunk}-{i}"} for i in range(50)])
        held = sb.segment.debugger(source="sandbox", limit=1000)
        assert len(held) <= 100 + 50
        assert held[0]["event"] == "E9-49"
        assert len(sb.segment.events()) == 500


def test_debugger_paging_with_before_id(sandbox):
    sandbox.segment.ingest([{"type": "track", "userId": "u1", "event": f"E{i}"} for i in range(5)])
    first = sandbox.segment.debugger(limit=2)
    second = sandbox.segment.debugger(limit=2, before_id=first[-1]["id"])
    assert [e["event"] for e in first + second] == ["E4", "E3", "E2", "E1"]


def test_debugger_pages_interleave_dropped_and_accepted_messages_newest_first(sandbox):
    # a batch of accepted and dropped items, then a single rejected message: one order, whatever each one's status
    sandbox.segment.ingest([{"type": "track", "userId": "u1", "event": "A0"}, {"type": "track", "userId": "u1"},
                            {"type": "track", "userId": "u2", "event": "A2"}, {"type": "track", "event": "No id"},
                            {"type": "track", "userId": "u1", "event": "A4"}])
    sandbox.segment.ingest({"type": "track", "userId": "u3", "event": "Unknown key"}, write_key="nobody")
    pages, before = [], None
    while True:
        page = sandbox.segment.debugger(limit=2, before_id=before)
        if not page:
            break
        pages.append([(e["status"], e["event"]) for e in page])
        before = page[-1]["id"]
    assert pages == [[("rejected", "Unknown key"), ("accepted", "A4")], [("dropped", "No id"), ("accepted", "A2")],
                     [("dropped", None), ("accepted", "A0")]]
    assert [e["event"] for e in sandbox.segment.debugger(user_id="u1")] == ["A4", None, "A0"]
    assert [e["event"] for e in sandbox.segment.debugger(status="accepted", limit=2)] == ["A4", "A2"]


def test_debugger_filters_given_as_numbers_match_like_their_text(sandbox):
    sandbox.segment.ingest([{"type": "track", "userId": "123", "event": "Kept"}, {"type": "track", "userId": "123"}])
    assert [(e["status"], e["event"]) for e in sandbox.segment.debugger(user_id=123)] == [("dropped", None),
                                                                                       ("accepted", "Kept")]


def test_an_emulator_error_outside_a_view_is_a_500_kept_for_the_pytest_plugin():
    with Sandbox() as sb, sb.segment_client() as client:
        def broken_record(**_entry):
            raise RuntimeError("journal broke")

        sb.journal.record = broken_record  # raised in the after_request hook, past the view's own error handling
        response = client.post("/v1/track", json={"writeKey": "sandbox-write-key", "userId": "u1", "event": "E"})
        assert response.status_code == 500
        assert len(sb.internal_errors) == 1 and "journal broke" in sb.internal_errors[0]


def test_a_journal_write_in_the_middle_of_a_reset_brings_back_nothing_from_before_it():
    with Sandbox() as sb, sb.segment_client() as client:
        client.post("/v1/track", json={"writeKey": "sandbox-write-key", "userId": "u1", "event": "Before"})
        reset_store = sb.store.reset

        def reset_then_a_waiting_write_gets_the_lock():
            reset_store()
            sb.journal.write()  # a request thread's write, next in line for the store lock

        sb.store.reset = reset_then_a_waiting_write_gets_the_lock
        sb.reset()
        assert sb.journal.search() == []


def test_a_reset_clears_the_braze_rate_limit_counts_only_between_two_counts():
    import threading

    with Sandbox() as sb:
        auth = sb.braze.auth
        with auth._windows_lock:  # a count being taken
            resetting = threading.Thread(target=sb.reset)
            resetting.start()
            resetting.join(0.2)
            assert resetting.is_alive()  # waits for the count, does not clear under it
        resetting.join(10)
        assert not resetting.is_alive() and auth._windows == {}


def test_a_restarted_file_store_resumes_its_clock_and_a_reset_rewinds_it(tmp_path):
    db = tmp_path / "sandbox.db"
    with Sandbox(path=db) as sb:  # a manual clock
        sb.clock.advance("31d")
        moved = sb.clock.now()
        sb.segment.ingest({"type": "track", "userId": "u1", "event": "E", "messageId": "m-1"})
    with Sandbox(path=db) as sb:
        assert sb.clock.now() == moved  # not back at its start, before the data it holds
        sb.segment.ingest({"type": "track", "userId": "u1", "event": "E", "messageId": "m-1"})
        assert len(sb.segment.events()) == 1  # the 24-hour duplicate window still sees the first
        sb.reset()
        start = sb.clock.now()
    with Sandbox(path=db) as sb:
        assert sb.clock.now() == start < moved


def test_a_restarted_file_store_with_a_real_time_clock_stays_as_far_ahead_as_it_was_moved(tmp_path):
    db = tmp_path / "sandbox.db"
    with Sandbox(path=db, clock="realtime") as sb:
        sb.clock.advance("31d")
        sb.segment.ingest({"type": "track", "userId": "u1", "event": "E"})
        stamped = sb.segment.events()[0]["receivedAt"]
    with Sandbox(path=db, clock="realtime") as sb:
        from datetime import datetime, timedelta, timezone

        assert sb.clock.now() - datetime.now(timezone.utc) > timedelta(days=30, hours=23)
        assert iso(sb.clock.now()) > stamped


def test_a_seed_given_at_start_beats_the_configuration_file_s_when_it_is_loaded_again(tmp_path):
    config = tmp_path / "sandbox.yaml"
    config.write_text("seed: 5\n")
    with Sandbox(config=config, seed=7) as sb:
        sb.configure(config)  # the same file again: the --seed given at start still wins
        assert sb.config["seed"] == 7

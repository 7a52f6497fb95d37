"""The Tracking API over HTTP (httpx through the WSGI transport): auth forms, limits, answers, drops."""
import base64
import gzip
import json

import pytest

from emulator import Sandbox
from emulator.segment import errors

KEY = "sandbox-write-key"


def basic(value: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(value.encode()).decode()}


def only_entry(sandbox, **filters):
    entries = sandbox.segment.debugger(**filters)
    assert len(entries) == 1, entries
    return entries[0]


# --- auth ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["body", "basic_with_colon", "basic_without_colon", "bearer_plus_body"])
def test_each_auth_form_attributes_the_message_to_its_source(segment, sandbox, how):
    body = {"userId": "u1", "event": "Signed Up"}
    headers = {}
    if how == "body":
        body["writeKey"] = KEY
    elif how == "basic_with_colon":
        headers = basic(KEY + ":")
    elif how == "basic_without_colon":
        headers = basic(KEY)
    else:
        headers = {"Authorization": "Bearer oauth-access-token"}
        body["writeKey"] = KEY
    response = segment.post("/v1/track", json=body, headers=headers)
    assert (response.status_code, response.json()) == (200, {"success": True})
    entry = only_entry(sandbox)
    assert (entry["status"], entry["source"]) == ("accepted", "sandbox")


def test_unknown_write_key_is_200_and_recorded_as_rejected(segment, sandbox):
    response = segment.post("/v1/identify", json={"userId": "u1"}, headers=basic("nope:"))
    assert (response.status_code, response.json()) == (200, {"success": True})
    entry = only_entry(sandbox)
    assert (entry["status"], entry["reason"], entry["write_key"]) == ("rejected", "unknown write key", "nope")
    assert sandbox.segment.events() == []


def test_missing_write_key_is_recorded_as_rejected(segment, sandbox):
    assert segment.post("/v1/identify", json={"userId": "u1"}).status_code == 200
    assert only_entry(sandbox)["reason_code"] == "unknown_write_key"


def test_strict_mode_answers_401_to_an_unknown_write_key():
    with Sandbox(config={"segment": {"strict": True}}) as sb, sb.segment_client() as client:
        response = client.post("/v1/track", json={"userId": "u1", "event": "E", "writeKey": "nope"})
        assert response.status_code == 401
        assert response.json() == errors.UNAUTHORIZED.body()
        assert client.post("/v1/track", json={"userId": "u1", "event": "E", "writeKey": KEY}).status_code == 200


def test_a_us_write_key_sent_to_the_eu_endpoint_is_rejected(sandbox):
    with sandbox.segment_client() as client:
        response = client.post("/v1/track", json={"userId": "u1", "event": "E", "writeKey": KEY},
                               headers={"Host": "events.eu1.segmentapis.com"})
    assert response.status_code == 200
    assert only_entry(sandbox)["reason_code"] == "wrong_region"


def test_an_eu_source_is_accepted_by_an_eu_workspace():
    config = {"segment": {"region": "EU", "sources": [{"name": "eu", "write_key": "eu-key"}]}}
    with Sandbox(config=config) as sb, sb.segment_client() as client:
        client.post("/v1/track", json={"userId": "u1", "event": "E", "writeKey": "eu-key"})
        assert sb.segment.debugger()[0]["status"] == "accepted"


# --- paths and encodings --------------------------------------------------------------------------------

@pytest.mark.parametrize("path, body, expected_type", [
    ("/v1/t", {"userId": "u1", "event": "Clicked"}, "track"),
    ("/v1/i", {"userId": "u1", "traits": {"a": 1}}, "identify"),
    ("/v1/p", {"anonymousId": "a1", "name": "Home"}, "page"),
    ("/v1/s", {"anonymousId": "a1", "name": "Feed"}, "screen"),
    ("/v1/g", {"userId": "u1", "groupId": "g1"}, "group"),
    ("/v1/a", {"userId": "u1", "previousId": "a1"}, "alias"),
])
def test_browser_short_paths_accept_text_plain_bodies(segment, sandbox, path, body, expected_type):
    body["writeKey"] = KEY
    response = segment.post(path, content=json.dumps(body), headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    entry = only_entry(sandbox)
    assert (entry["status"], entry["type"]) == ("accepted", expected_type)


def test_browser_batch_path_and_import_are_batches(segment, sandbox):
    for path in ("/v1/b", "/v1/import"):
        response = segment.post(path, json={"writeKey": KEY, "batch": [
            {"type": "track", "userId": "u1", "event": path}]})
        assert response.status_code == 200
    assert {e["event"] for e in sandbox.segment.debugger(status="accepted")} == {"/v1/b", "/v1/import"}


def test_cors_preflight_is_answered(segment):
    response = segment.options("/v1/t", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 200
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_gzip_bodies_are_decompressed(segment, sandbox):
    body = gzip.compress(json.dumps({"writeKey": KEY, "batch": [{"type": "identify", "userId": "u9"}]}).encode())
    response = segment.post("/v1/batch", content=body,
                            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert only_entry(sandbox)["userId"] == "u9"


@pytest.mark.parametrize("cut", [lambda gz: b"not gzip", lambda gz: gz[:-4], lambda gz: gz + b"trailing bytes"],
                         ids=["not gzip", "cut short", "bytes after the last member"])
def test_corrupt_gzip_is_a_400(segment, sandbox, cut):
    body = gzip.compress(json.dumps({"writeKey": KEY, "batch": [{"type": "identify", "userId": "u9"}]}).encode())
    response = segment.post("/v1/batch", content=cut(body), headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert "gzip" in response.json()["message"]
    assert sandbox.segment.debugger() == []


def test_a_gzip_body_of_several_members_is_read_whole(segment, sandbox):
    # RFC 1952 allows concatenated members (`cat a.gz b.gz`), and Segment's Go reader reads them all
    text = json.dumps({"writeKey": KEY, "batch": [{"type": "identify", "userId": "u9"}]}).encode()
    body = gzip.compress(text[:20]) + gzip.compress(text[20:])
    response = segment.post("/v1/batch", content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert only_entry(sandbox)["userId"] == "u9"


def test_get_on_a_tracking_path_is_405_and_unknown_paths_404(segment):
    assert segment.get("/v1/track").status_code == 405
    response = segment.post("/v1/nope", json={})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert segment.get("/v2/anything").status_code == 404


# --- 400s ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, fragment", [
    (b"{not json", "Invalid JSON"),
    (b"", "empty body"),
    (b"\xff\xfe\x00", "UTF-8"),
    (b'{"userId": NaN}', "NaN"),
    (b'{"userId": "u1", "event": "E", "properties": {"x": 1e400}}', "1e400 is out of range"),
])
def test_malformed_json_is_a_400_naming_the_problem(segment, sandbox, content, fragment):
    response = segment.post("/v1/track", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request"
    assert fragment in body["message"]
    assert sandbox.segment.debugger() == []


@pytest.mark.parametrize("body", [[1, 2], "text", 3, None])
def test_a_body_that_is_not_an_object_is_a_400(segment, body):
    response = segment.post("/v1/track", content=json.dumps(body))
    assert response.status_code == 400
    assert response.json() == {"code": "invalid_request", "message": "the body must be a JSON object"}


@pytest.mark.parametrize("batch", [None, {"type": "track"}, "x"])
def test_a_batch_that_is_not_an_array_is_a_400(segment, batch):
    body = {"writeKey": KEY} if batch is None else {"writeKey": KEY, "batch": batch}
    response = segment.post("/v1/batch", json=body)
    assert response.status_code == 400
    assert "batch must be an array" in response.json()["message"]


def test_a_single_call_over_32kb_is_a_400_exceed_payload_limit(segment, sandbox):
    body = {"writeKey": KEY, "userId": "u1", "event": "Big", "properties": {"blob": "x" * (32 * 1024)}}
    response = segment.post("/v1/track", json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("Exceed payload limit")
    assert sandbox.segment.debugger() == []


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_a_body_past_what_the_app_reads_at_all_is_still_a_400_exceed_payload_limit(segment, sandbox, encoding):
    headers = {"Content-Type": "application/json", **({"Content-Encoding": encoding} if encoding else {})}
    response = segment.post("/v1/batch", content=b" " * (17 * 1024 * 1024), headers=headers)
    assert response.status_code == 400
    assert response.json()["message"].startswith("Exceed payload limit")
    assert sandbox.internal_errors == []
    assert "over the" in sandbox.journal.search(app="segment")[0]["request_body"]


def test_a_batch_over_500kb_is_a_400(segment):
    items = [{"type": "track", "userId": "u1", "event": "E", "properties": {"blob": "x" * 20_000}} for _ in range(30)]
    response = segment.post("/v1/batch", json={"writeKey": KEY, "batch": items})
    assert response.status_code == 400
    assert "Exceed payload limit" in response.json()["message"]


def test_one_event_over_32kb_inside_a_batch_fails_the_whole_request(segment, sandbox):
    items = [{"type": "track", "userId": "u1", "event": "Small"},
             {"type": "track", "userId": "u1", "event": "Big", "properties": {"blob": "x" * 40_000}}]
    response = segment.post("/v1/batch", json={"writeKey": KEY, "batch": items})
    assert response.status_code == 400
    assert "batch[1]" in response.json()["message"]
    assert sandbox.segment.debugger() == []  # nothing of a refused request is kept


def test_a_just_under_limit_batch_is_accepted(segment, sandbox):
    items = [{"type": "track", "userId": "u1", "event": "E", "properties": {"blob": "x" * 30_000}} for _ in range(15)]
    response = segment.post("/v1/batch", json={"writeKey": KEY, "batch": items})
    assert response.status_code == 200
    assert len(sandbox.segment.events()) == 15


# --- silent drops, visible in the debugger --------------------------------------------------------------------

@pytest.mark.parametrize("message, code", [
    ({"type": "track", "event": "E"}, "no_user_anon_id"),
    ({"type": "track", "event": "E", "userId": None, "anonymousId": ""}, "no_user_anon_id"),
    ({"type": "track", "userId": "u1"}, "missing_event"),
    ({"type": "track", "userId": "u1", "event": ""}, "missing_event"),
    ({"type": "group", "userId": "u1"}, "missing_group_id"),
    ({"type": "alias", "userId": "u1"}, "missing_previous_id"),
    ({"type": "track", "userId": "u1", "event": "E", "messageId": "m" * 101}, "message_id_too_long"),
    ({"type": "bogus", "userId": "u1"}, "invalid_type"),
    ({"userId": "u1", "event": "no type"}, "invalid_type"),
    ({"type": "track", "userId": {"id": 1}, "event": "E"}, "invalid_field"),
    ({"type": "track", "userId": "u1", "event": "E", "properties": [1]}, "invalid_field"),
    ({"type": "identify", "userId": "u1", "traits": "vip"}, "invalid_field"),
    ({"type": "track", "userId": "u1", "event": 12}, "invalid_field"),
    ("not an object", "not_an_object"),
])
def test_each_drop_reason_is_200_and_visible_in_the_debugger(segment, sandbox, message, code):
    response = segment.post("/v1/batch", json={"writeKey": KEY, "batch": [message]})
    assert (response.status_code, response.json()) == (200, {"success": True})
    entry = only_entry(sandbox)
    assert (entry["status"], entry["reason_code"]) == ("dropped", code)
    assert entry["reason"]
    assert entry["raw"] == message
    assert sandbox.segment.events() == []


def test_a_2501_item_batch_keeps_2500_and_drops_the_last_with_its_reason(segment, sandbox):
    items = [{"type": "track", "userId": "u1", "event": "E", "messageId": f"m{i}"} for i in range(2501)]
    assert segment.post("/v1/batch", json={"writeKey": KEY, "batch": items}).status_code == 200
    assert len(sandbox.segment.events()) == 2500
    [dropped] = sandbox.segment.debugger(status="dropped")
    assert (dropped["messageId"], dropped["reason_code"]) == ("m2500", "batch_limit")


def test_a_duplicate_message_id_is_dropped_within_24_hours_and_accepted_after(segment, sandbox):
    body = {"writeKey": KEY, "userId": "u1", "event": "Paid", "messageId": "pay-1"}
    for _ in range(2):
        assert segment.post("/v1/track", json=body).status_code == 200
    assert len(sandbox.segment.events()) == 1
    assert only_entry(sandbox, status="dropped")["reason_code"] == "duplicate_message_id"
    sandbox.clock.advance("23h")
    segment.post("/v1/track", json=body)
    assert len(sandbox.segment.events()) == 1
    sandbox.clock.advance("2h")
    segment.post("/v1/track", json=body)
    assert len(sandbox.segment.events()) == 2


def test_dedup_spans_sources_and_catches_repeats_inside_one_batch(sandbox):
    sandbox.configure({"segment": {"sources": [{"name": "web", "write_key": "wk-web"},
                                               {"name": "ios", "write_key": "wk-ios"}]}})
    message = {"type": "track", "userId": "u1", "event": "E", "messageId": "same"}
    sandbox.segment.ingest([message, dict(message)], write_key="wk-web")
    sandbox.segment.ingest([dict(message)], write_key="wk-ios")
    assert len(sandbox.segment.events()) == 1
    assert len(sandbox.segment.debugger(status="dropped")) == 2


def test_valid_items_of_a_batch_are_kept_when_others_are_dropped(segment, sandbox):
    items = [{"type": "track", "userId": "u1", "event": "Kept"}, {"type": "track", "event": "NoUser"},
             {"type": "identify", "anonymousId": "a1", "traits": {"x": 1}}]
    segment.post("/v1/batch", json={"writeKey": KEY, "batch": items})
    assert [m["type"] for m in sandbox.segment.events()] == ["track", "identify"]


# --- what Segment keeps ---------------------------------------------------------------------------------------

def test_timestamp_is_received_at_minus_the_client_clock_skew(segment, sandbox):
    sandbox.clock.set("2026-03-01T12:00:00Z")
    segment.post("/v1/track", json={"writeKey": KEY, "userId": "u1", "event": "E",
                                    "timestamp": "2026-03-01T09:00:00Z", "sentAt": "2026-03-01T09:05:00Z"})
    message = sandbox.segment.events()[0]
    assert message["receivedAt"] == "2026-03-01T12:00:00.000Z"
    assert message["originalTimestamp"] == "2026-03-01T09:00:00.000Z"
    assert message["timestamp"] == "2026-03-01T11:55:00.000Z"


def test_batch_level_sent_at_applies_to_each_item(segment, sandbox):
    segment.post("/v1/batch", json={"writeKey": KEY, "sentAt": "2026-01-01T00:00:10+00:00", "batch": [
        {"type": "track", "userId": "u1", "event": "E", "timestamp": "2026-01-01T00:00:04+00:00"}]})
    assert sandbox.segment.events()[0]["timestamp"] == "2025-12-31T23:59:54.000Z"


def test_without_sent_at_the_client_timestamp_is_kept_and_without_either_received_at_is_used(segment, sandbox):
    segment.post("/v1/track", json={"writeKey": KEY, "userId": "u1", "event": "A", "timestamp": "2025-12-25T08:00:00Z"})
    segment.post("/v1/track", json={"writeKey": KEY, "userId": "u1", "event": "B", "timestamp": "not a date"})
    a, b = sandbox.segment.events()
    assert a["timestamp"] == "2025-12-25T08:00:00.000Z"
    assert b["timestamp"] == b["receivedAt"]


def test_batch_context_and_integrations_merge_under_each_item(segment, sandbox):
    segment.post("/v1/batch", json={
        "writeKey": KEY, "context": {"library": {"name": "analytics-go"}, "ip": "1.2.3.4"},
        "integrations": {"All": True, "Mixpanel": False},
        "batch": [{"type": "track", "userId": "u1", "event": "E", "context": {"ip": "5.6.7.8", "locale": "pt-PT"},
                   "integrations": {"Mixpanel": True}}]})
    message = sandbox.segment.events()[0]
    assert message["context"] == {"library": {"name": "analytics-go"}, "ip": "5.6.7.8", "locale": "pt-PT"}
    assert message["integrations"] == {"All": True, "Mixpanel": True}


def test_numeric_ids_are_kept_as_strings_and_a_message_id_is_made_when_missing(segment, sandbox):
    segment.post("/v1/track", json={"writeKey": KEY, "userId": 42, "event": "E"})
    message = sandbox.segment.events()[0]
    assert message["userId"] == "42"
    assert message["messageId"].startswith("api-")
    assert "writeKey" not in message


def test_message_ids_made_by_the_emulator_are_deterministic():
    made = []
    for _ in range(2):
        with Sandbox() as sb:
            sb.segment.ingest({"type": "track", "userId": "u1", "event": "E"})
            made.append(sb.segment.events()[0]["messageId"])
    assert made[0] == made[1]


def test_a_lone_surrogate_escape_is_accepted_as_a_replacement_character(segment, sandbox):
    # Go's encoding/json (Segment's Tracking API) turns "\ud800" without its pair into U+FFFD; a pair stays a pair
    raw = b'{"userId": "u1", "event": "E", "properties": {"x": "\\ud800 lone", "\\udfff": "\\ud83d\\ude00"}}'
    response = segment.post("/v1/track", content=raw, headers={"Content-Type": "application/json", **basic(KEY)})
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert sandbox.segment.events()[0]["properties"] == {"x": "\ufffd lone", "\ufffd": "\U0001F600"}
    assert sandbox.flush()["delivered"] == 1


def test_an_injected_429_says_in_seconds_when_to_retry_as_segment_does(segment, sandbox):
    # segment-api.md §1: "Retry-After and X-RateLimit-Reset headers, which contains the number of seconds"
    sandbox.faults.add(app="segment", path="/v1/batch", status=429, retry_after=2, count=1)
    response = segment.post("/v1/batch", json={"writeKey": KEY, "batch": [{"type": "track", "userId": "u", "event": "E"}]})
    assert response.status_code == 429
    assert (response.headers["Retry-After"], response.headers["X-RateLimit-Reset"]) == ("2", "2")

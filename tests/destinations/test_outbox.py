"""Segment → Braze through the durable outbox: end to end, Segment's retry rules, and the delivery trace."""
import pytest

from emulator import Sandbox

KEY = "sandbox-write-key"


def send(sandbox, *messages):
    receipt = sandbox.segment.ingest(list(messages))
    assert receipt.accepted == len(messages)


def only_delivery(sandbox, **filters):
    entries = sandbox.segment.deliveries(**filters)
    assert len(entries) == 1, entries
    return entries[0]


def test_identify_with_traits_becomes_braze_profile_attributes(sandbox):
    send(sandbox, {"type": "identify", "userId": "u1",
                   "traits": {"email": "ana@example.com", "firstName": "Ana", "lastName": "Lima", "plan": "pro"}})
    assert sandbox.flush()["delivered"] == 1
    user = sandbox.braze.user(external_id="u1")
    assert (user["email"], user["first_name"], user["last_name"]) == ("ana@example.com", "Ana", "Lima")
    assert user["custom_attributes"]["plan"] == "pro"


def test_track_becomes_a_braze_custom_event_with_count_first_and_last(sandbox):
    send(sandbox, {"type": "track", "userId": "u1", "event": "Product Viewed", "properties": {"sku": "a"}})
    sandbox.clock.advance("1h")
    send(sandbox, {"type": "track", "userId": "u1", "event": "Product Viewed", "properties": {"sku": "b"}})
    sandbox.flush()
    [event] = [e for e in sandbox.braze.user(external_id="u1")["custom_events"] if e["name"] == "Product Viewed"]
    assert event["count"] == 2
    assert event["first"] == "2026-01-01T00:00:00.000Z"  # Braze's time is Segment's receivedAt
    assert event["last"] == "2026-01-01T01:00:00.000Z"


def test_order_completed_with_three_products_becomes_three_purchases(sandbox):
    send(sandbox, {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {
        "order_id": "o1", "currency": "EUR", "products": [
            {"product_id": "p1", "price": 10, "quantity": 1}, {"product_id": "p2", "price": 5.5, "quantity": 2},
            {"product_id": "p3", "price": 1, "quantity": 3}]}})
    sandbox.flush()
    [trace] = sandbox.segment.deliveries()
    body = trace["attempts"][-1]["request"]["body"]
    assert [p["product_id"] for p in body["purchases"]] == ["p1", "p2", "p3"]
    user = sandbox.braze.user(external_id="u1")
    assert sorted(p["name"] for p in user["purchases"]) == ["p1", "p2", "p3"]


def test_a_message_whose_integrations_turn_braze_off_is_filtered(sandbox):
    send(sandbox, {"type": "track", "userId": "u1", "event": "Private", "integrations": {"All": False}})
    assert sandbox.flush()["delivered"] == 0
    delivery = only_delivery(sandbox)
    assert delivery["outcome"] == "filtered" and "integrations" in delivery["error"]
    assert sandbox.braze.user(external_id="u1") is None


def test_events_from_the_braze_currents_source_do_not_loop_back_into_braze(sandbox):
    sandbox.segment.ingest([{"type": "track", "userId": "u1", "event": "Email Opened"}],
                           write_key="sandbox-braze-source-key")
    sandbox.flush()
    assert sandbox.segment.deliveries() == []


def test_a_destination_connected_to_some_sources_only_gets_theirs():
    config = {"segment": {"sources": [{"name": "web", "write_key": "wk-web"}, {"name": "ios", "write_key": "wk-ios"}],
                          "destinations": {"braze": {"sources": ["ios"]}}}}
    with Sandbox(config=config) as sb:
        sb.segment.ingest([{"type": "track", "userId": "u1", "event": "Web"}], write_key="wk-web")
        sb.segment.ingest([{"type": "track", "userId": "u1", "event": "App"}], write_key="wk-ios")
        sb.flush()
        assert [d["event"]["event"] for d in sb.segment.deliveries()] == ["App"]


def test_a_disabled_destination_gets_nothing():
    with Sandbox(config={"segment": {"destinations": {"braze": {"enabled": False}}}}) as sb:
        sb.segment.ingest({"type": "identify", "userId": "u1"})
        assert sb.flush()["delivered"] == 0 and sb.segment.deliveries() == []


def test_nothing_is_delivered_until_flushed_in_process(sandbox):
    send(sandbox, {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    assert sandbox.braze.user(external_id="u1") is None
    assert only_delivery(sandbox)["outcome"] == "retrying"  # pending: due, not yet sent
    sandbox.flush()
    assert sandbox.braze.user(external_id="u1") is not None


# --- Segment's retry rules ---------------------------------------------------------------------------------------

def test_429_with_retry_after_is_retried_once_the_clock_passes_it(sandbox):
    sandbox.faults.add(app="braze", path="/users/track", status=429, retry_after=2, count=1)
    send(sandbox, {"type": "track", "userId": "u1", "event": "Clicked"})
    assert sandbox.flush() == {"delivered": 0, "retried": 1, "discarded": 0, "dropped": 0}
    delivery = only_delivery(sandbox)
    assert (delivery["outcome"], delivery["error_code"]) == ("retrying", "errors.awaiting-retry.429")
    assert delivery["next_attempt_at"] == "2026-01-01T00:00:02.000Z"
    sandbox.clock.advance("1s")
    assert sandbox.flush()["delivered"] == 0
    sandbox.clock.advance("1s")
    assert sandbox.flush()["delivered"] == 1
    delivery = only_delivery(sandbox)
    assert delivery["outcome"] == "delivered" and delivery["attempt_count"] == 2
    assert [a["status"] for a in delivery["attempts"]] == [429, 201]
    assert delivery["attempts"][0]["response"]["headers"]["retry-after"] == "2"
    assert delivery["attempts"][0]["response"]["headers"]["x-ratelimit-reset"] == "1767225602"  # 00:00:02 UTC


def test_400_from_braze_is_discarded_with_segments_error_code(sandbox):
    sandbox.faults.add(app="braze", path="/users/track", status=400, body={"message": "Bad things"}, count=1)
    send(sandbox, {"type": "track", "userId": "u1", "event": "Clicked"})
    assert sandbox.flush()["discarded"] == 1
    delivery = only_delivery(sandbox)
    assert (delivery["outcome"], delivery["error_code"]) == ("discarded", "errors.discarded.400")
    assert delivery["attempts"][0]["response"]["body"] == {"message": "Bad things"}
    sandbox.clock.advance("1d")
    assert sandbox.flush()["delivered"] == 0  # never retried


def test_the_trace_filters_by_outcome_with_emulator_md_s_failed_as_discarded_and_refuses_unknown_ones(sandbox):
    sandbox.faults.add(app="braze", path="/users/track", status=400, count=1)
    send(sandbox, {"type": "track", "userId": "u1", "event": "Clicked"})
    sandbox.flush()
    for status in ("failed", "discarded"):
        assert [d["outcome"] for d in sandbox.segment.deliveries(status=status)] == ["discarded"]
    assert sandbox.segment.deliveries(status="delivered") == []
    response = sandbox.segment_client().get("/_emulator/segment/deliveries", params={"status": "lost"})
    assert response.status_code == 400 and "delivered, filtered, retrying, discarded" in response.json()["error"]


def test_503_three_times_then_201_is_delivered_with_backoff(sandbox):
    sandbox.faults.add(app="braze", path="/users/track", status=503, count=3)
    send(sandbox, {"type": "track", "userId": "u1", "event": "Clicked"})
    waits = []
    for _ in range(3):
        sandbox.flush()
        delivery = only_delivery(sandbox)
        assert delivery["error_code"] == "errors.awaiting-retry.5xx"
        waits.append(delivery["next_attempt_at"])
        sandbox.clock.set(delivery["next_attempt_at"])
    assert waits == ["2026-01-01T00:00:01.000Z", "2026-01-01T00:00:03.000Z", "2026-01-01T00:00:07.000Z"]
    assert sandbox.flush()["delivered"] == 1
    assert only_delivery(sandbox)["attempt_count"] == 4
    assert sandbox.braze.user(external_id="u1")["custom_events"][0]["count"] == 1


def test_retries_stop_after_four_hours_of_sandbox_time(sandbox):
    sandbox.faults.add(app="braze", path="/users/track", status=500)
    send(sandbox, {"type": "track", "userId": "u1", "event": "Clicked"})
    for _ in range(40):
        sandbox.flush()
        delivery = only_delivery(sandbox)
        if delivery["outcome"] != "retrying":
            break
        sandbox.clock.set(delivery["next_attempt_at"])
    assert delivery["outcome"] == "discarded"
    assert delivery["error_code"] == "errors.discarded.500"
    assert "retries exhausted" in delivery["error"]


def test_a_partial_error_answer_fails_only_the_indexed_event(sandbox):
    sandbox.faults.add(app="braze", path="/users/track", status=201, count=1, body={
        "message": "success", "events_processed": 1,
        "errors": [{"type": "'name' is required", "input_array": "events", "index": 1}]})
    send(sandbox, {"type": "track", "userId": "u1", "event": "First"}, {"type": "track", "userId": "u1", "event": "Second"})
    counts = sandbox.flush()
    assert (counts["delivered"], counts["discarded"]) == (1, 1)
    by_event = {d["event"]["event"]: d for d in sandbox.segment.deliveries()}
    assert by_event["First"]["outcome"] == "delivered"
    assert (by_event["Second"]["outcome"], by_event["Second"]["error_code"]) == ("discarded", "errors.discarded.400")
    assert by_event["Second"]["error"] == "'name' is required"


def test_an_unreachable_endpoint_is_retried_as_a_connection_error():
    config = {"segment": {"destinations": {"braze": {"endpoint": "http://127.0.0.1:9"}}}}
    with Sandbox(config=config) as sb:
        sb.segment.ingest({"type": "track", "userId": "u1", "event": "Clicked"})
        assert sb.flush()["retried"] == 1
        delivery = sb.segment.deliveries()[0]
        assert delivery["error_code"] == "errors.awaiting-retry.ECONNREFUSED"


def test_an_unknown_host_and_a_timeout_get_segments_connection_error_codes(monkeypatch):
    import socket

    from emulator.segment.destinations import transport

    silent = socket.socket()  # listens, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    monkeypatch.setattr(transport, "TIMEOUT_SECONDS", 0.2)
    for endpoint, code in (("http://no-such-host.invalid", "ENOTFOUND"),
                           (f"http://127.0.0.1:{silent.getsockname()[1]}", "ECONNABORTED")):
        with Sandbox(config={"segment": {"destinations": {"braze": {"endpoint": endpoint}}}}) as sb:
            sb.segment.ingest({"type": "track", "userId": "u1", "event": "Clicked"})
            assert sb.flush()["retried"] == 1
            assert sb.segment.deliveries()[0]["error_code"] == f"errors.awaiting-retry.{code}"
    silent.close()


def test_a_refused_event_is_discarded_before_sending_with_segments_message(sandbox):
    send(sandbox, {"type": "track", "anonymousId": "anon-only", "event": "Clicked"})
    assert sandbox.flush()["discarded"] == 1
    delivery = only_delivery(sandbox)
    assert delivery["error_code"] == "errors.discarded.400"
    assert 'One of "external_id" or "user_alias" or "braze_id" or "email" is required.' in delivery["error"]
    assert delivery["attempts"][0]["request"] is None
    assert delivery["attempt_count"] == len(delivery["attempts"]) == 1  # the refusal is its one attempt


def test_the_delivery_trace_is_served_over_http(sandbox):
    send(sandbox, {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
    sandbox.flush()
    body = sandbox.segment_client().get("/_emulator/segment/deliveries", params={"destination": "braze"}).json()
    assert body["count"] == 1 and body["summary"] == {"braze": {"delivered": 1}}
    attempt = body["deliveries"][0]["attempts"][0]
    assert attempt["request"]["headers"]["authorization"] == "Bearer sandbox-rest-key"
    assert attempt["request"]["body"]["attributes"][0]["external_id"] == "u1"
    assert attempt["response"]["body"]["message"] == "success"
    assert sandbox.segment_client().post("/_emulator/flush").json()["delivered"] == 0


def test_reset_cancels_queued_deliveries(sandbox):
    send(sandbox, {"type": "identify", "userId": "u1"})
    sandbox.reset()
    assert sandbox.flush()["delivered"] == 0
    assert sandbox.braze.user(external_id="u1") is None


def test_the_background_worker_of_a_served_sandbox_delivers_without_flush():
    import time

    with Sandbox(clock="realtime") as sb:
        sb.serve()
        sb.start_worker(interval=0.02)
        sb.segment.ingest({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})
        deadline = time.monotonic() + 10
        while sb.braze.user(external_id="u1") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sb.braze.user(external_id="u1")["custom_attributes"] == {"plan": "pro"}
        assert sb.internal_errors == []


def test_a_thrown_batch_failure_takes_the_batchs_refused_events_along_until_the_batch_succeeds():
    # current presets: Order Completed is an ecommerce batch; one without products is refused by the payload check.
    # When the ecommerce call fails, Segment's request client throws and every event of the batch fails with it.
    config = {"segment": {"destinations": {"braze": {"preset_set": "current"}}}}
    with Sandbox(config=config) as sb:
        sb.faults.add(app="braze", path="/users/track", status=503, count=1)
        send(sb, {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "good",
                  "properties": {"order_id": "o1", "total": 10, "currency": "USD", "source": "web",
                                 "products": [{"product_id": "p1", "name": "Sweater", "variant": "red-m",
                                               "price": 10, "quantity": 1}]}},
             {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "refused",
              "properties": {"order_id": "o2", "total": 5, "currency": "USD", "source": "web"}})
        assert sb.flush() == {"delivered": 0, "retried": 2, "discarded": 0, "dropped": 0}
        refused = only_delivery(sb, message_id="refused")
        assert (refused["outcome"], refused["error_code"]) == ("retrying", "errors.awaiting-retry.5xx")
        sb.clock.advance("2s")
        assert sb.flush() == {"delivered": 1, "retried": 0, "discarded": 1, "dropped": 0}
        refused = only_delivery(sb, message_id="refused")
        assert (refused["outcome"], refused["error_code"]) == ("discarded", "errors.discarded.400")
        assert [(a["attempt"], a["outcome"], a["status"]) for a in refused["attempts"]] == [
            (1, "retrying", 503), (2, "discarded", 400)]
        assert only_delivery(sb, message_id="good")["outcome"] == "delivered"


def test_a_classic_batch_answered_with_an_error_keeps_its_refusals(sandbox):
    # the classic actions read Braze's failure into per-event results (no throw): a refusal stands at once
    sandbox.faults.add(app="braze", path="/users/track", status=503, count=1)
    send(sandbox, {"type": "track", "userId": "u1", "event": "Clicked", "messageId": "sent"},
         {"type": "track", "anonymousId": "a-only", "event": "Clicked", "messageId": "refused"})
    counts = sandbox.flush()
    assert (counts["retried"], counts["discarded"]) == (1, 1)
    assert only_delivery(sandbox, message_id="refused")["outcome"] == "discarded"


def test_a_batch_that_sent_no_object_still_fails_its_refused_events_when_reading_the_answer_throws(sandbox):
    # Both events pass the payload check and fail the identity check: Segment still sends {"events": []}, and a
    # Braze error whose index is null makes its reading throw, which fails the whole batch.
    sandbox.faults.add(app="braze", path="/users/track", status=400, count=1,
                       body={"errors": [{"type": None, "input_array": "events", "index": None}]})
    send(sandbox, {"type": "track", "anonymousId": "a1", "event": "Clicked", "messageId": "m1"},
         {"type": "track", "anonymousId": "a2", "event": "Clicked", "messageId": "m2"})
    assert sandbox.flush()["discarded"] == 2
    for message_id in ("m1", "m2"):
        delivery = only_delivery(sandbox, message_id=message_id)
        assert delivery["error"] == "Cannot read properties of undefined (reading 'add')"
        assert delivery["attempts"][-1]["request"]["body"] == {"events": []}


def test_an_ecommerce_error_at_a_refused_payloads_position_is_read_onto_it():
    # functions.ts looks each payload given to performBatch up by position in Braze's errors, the ones refused
    # after the payload check (no identifier) included: Braze's error replaces the refusal.
    config = {"segment": {"destinations": {"braze": {"preset_set": "current"}}}}
    order = {"order_id": "o1", "total": 10, "currency": "USD", "source": "web",
             "products": [{"product_id": "p1", "name": "Sweater", "variant": "red-m", "price": 10, "quantity": 1}]}
    with Sandbox(config=config) as sb:
        sb.faults.add(app="braze", path="/users/track", status=201, count=1, body={
            "message": "success", "errors": [{"type": "read onto the refused one", "input_array": "events", "index": 0}]})
        send(sb, {"type": "track", "anonymousId": "a1", "event": "Order Completed", "messageId": "refused",
                  "properties": order},
             {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "sent", "properties": order})
        sb.flush()
        refused = only_delivery(sb, message_id="refused")
        assert (refused["outcome"], refused["error"]) == ("discarded", "read onto the refused one")
        assert only_delivery(sb, message_id="sent")["outcome"] == "delivered"


def test_an_event_the_emulator_cannot_map_is_discarded_alone_and_reported_without_holding_up_the_others():
    deep: object = 1
    for _ in range(600):  # accepted (the parser takes ~990 levels), too deep for the mapping's recursion
        deep = [deep]
    with Sandbox() as sb:
        sb.segment.ingest([{"type": "track", "userId": "u1", "event": "Deep", "properties": {"x": deep}},
                           {"type": "track", "userId": "u1", "event": "Plain"}])
        sb.flush()
        assert {e["name"] for e in sb.braze.user(external_id="u1")["custom_events"]} == {"Plain"}
        outcomes = {d["event"]["event"]: (d["outcome"], d["error_code"]) for d in sb.segment.deliveries()}
        assert outcomes == {"Plain": ("delivered", None), "Deep": ("discarded", "errors.discarded.emulator")}
        deep = next(d for d in sb.segment.deliveries() if d["event"]["event"] == "Deep")
        assert deep["attempts"][0]["status"] is None  # nothing was sent: no HTTP status
        assert len(sb.internal_errors) == 1 and "RecursionError" in sb.internal_errors[0]

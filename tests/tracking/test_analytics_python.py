"""The real segment-analytics-python client, pointed at a served sandbox, in both of its modes."""
import pytest
import segment.analytics as analytics

WRITE_KEY = "sandbox-write-key"


def _client(sandbox_server, errors, sync_mode):
    return analytics.Client(WRITE_KEY, host=sandbox_server.segment_url, sync_mode=sync_mode, upload_interval=0.01,
                            on_error=lambda exc, batch: errors.append(exc), max_retries=0)


def _send_every_call(client):
    client.identify("u1", {"email": "ana@example.com", "plan": "pro"})
    client.track("u1", "Order Completed", {"revenue": 42.5, "products": [{"product_id": "p1"}]})
    client.page("u1", "Docs", "Getting Started", {"url": "https://example.com/docs"})
    client.screen("u1", "App", "Home", {"tab": "feed"})
    client.group("u1", "acme", {"name": "Acme Inc"})
    client.alias("anon-7", "u1")


@pytest.mark.parametrize("sync_mode", [True, False], ids=["sync_mode", "batched"])
def test_every_call_of_the_library_lands_in_the_debugger_with_its_fields(sandbox_server, sync_mode):
    errors = []
    client = _client(sandbox_server, errors, sync_mode)
    _send_every_call(client)
    if not sync_mode:
        client.flush()
        client.join()
    assert errors == []
    entries = {e["type"]: e for e in sandbox_server.segment.debugger(source="sandbox")}
    assert set(entries) == {"identify", "track", "page", "screen", "group", "alias"}
    assert all(e["status"] == "accepted" for e in entries.values())

    identify = entries["identify"]["message"]
    assert identify["userId"] == "u1"
    assert identify["traits"] == {"email": "ana@example.com", "plan": "pro"}
    assert identify["context"]["library"] == {"name": "analytics-python", "version": analytics.VERSION}
    assert "anonymousId" not in identify  # the library sends null: Segment treats it as absent
    assert entries["identify"]["raw"]["anonymousId"] is None  # ...but the raw view shows what was sent

    track = entries["track"]["message"]
    assert track["event"] == "Order Completed"
    assert track["properties"] == {"revenue": 42.5, "products": [{"product_id": "p1"}]}
    assert entries["page"]["message"]["name"] == "Getting Started"
    assert entries["page"]["message"]["category"] == "Docs"
    assert entries["screen"]["message"]["properties"]["tab"] == "feed"
    assert entries["group"]["message"]["groupId"] == "acme"
    assert entries["alias"]["message"]["previousId"] == "anon-7"
    for entry in entries.values():
        message = entry["message"]
        assert message["receivedAt"] == "2026-01-01T00:00:00.000Z"  # the sandbox clock, not the wall clock
        assert message["messageId"] == entry["raw"]["messageId"]
        assert message["sentAt"] and message["originalTimestamp"]


def test_batched_mode_sends_many_messages_in_few_requests(sandbox_server):
    errors = []
    client = _client(sandbox_server, errors, sync_mode=False)
    for i in range(250):
        client.track("u2", "Item Viewed", {"i": i})
    client.flush()
    client.join()
    assert errors == []
    assert len(sandbox_server.segment.events(user_id="u2")) == 250
    batch_requests = sandbox_server.journal.search(app="segment", path="/v1/batch", limit=1000)
    assert 1 <= len(batch_requests) < 250
    assert batch_requests[0]["request_headers"]["Authorization"].startswith("Basic ")


def test_library_timestamps_are_shifted_by_the_clock_skew(sandbox_server):
    """timestamp = receivedAt - (sentAt - originalTimestamp): a client whose clock is off is corrected."""
    from datetime import datetime, timezone

    errors = []
    client = _client(sandbox_server, errors, sync_mode=True)
    client.track("u3", "Skewed", timestamp=datetime(2026, 5, 1, 12, 0, 0, tzinfo=timezone.utc))
    [entry] = sandbox_server.segment.debugger(event="Skewed")
    message = entry["message"]
    assert message["originalTimestamp"] == "2026-05-01T12:00:00.000Z"
    # sentAt is the wall clock (~2026-11), receivedAt the sandbox clock (2026-01-01): the event happened
    # (sentAt - originalTimestamp) before it was received.
    assert message["timestamp"] < message["receivedAt"]


def test_unknown_write_key_is_answered_200_so_the_library_reports_no_error(sandbox_server):
    errors = []
    client = analytics.Client("not-a-key", host=sandbox_server.segment_url, sync_mode=True,
                              on_error=lambda exc, batch: errors.append(exc), max_retries=0)
    client.track("u1", "Lost")
    assert errors == []
    [entry] = sandbox_server.segment.debugger(event="Lost")
    assert (entry["status"], entry["reason"], entry["source"]) == ("rejected", "unknown write key", None)
    assert sandbox_server.segment.events() == []


def test_strict_mode_answers_401_which_the_library_reports(sandbox_server):
    sandbox_server.configure({"segment": {"strict": True}})
    errors = []
    client = analytics.Client("not-a-key", host=sandbox_server.segment_url, sync_mode=True,
                              on_error=lambda exc, batch: errors.append(exc), max_retries=0)
    with pytest.raises(Exception) as raised:
        client.track("u1", "Refused")
    assert getattr(raised.value, "status", None) == 401
    assert getattr(raised.value, "code", None) == "unauthorized"

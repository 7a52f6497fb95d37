"""Nothing acknowledged is lost and nothing is applied twice, even when the server is killed mid-delivery."""
import signal
import time

import httpx

from support import start_server

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

"""`emulator serve` as a user runs it: a real process, real sockets, a durable store that survives SIGKILL."""
import signal
import subprocess
import time
import sys

import httpx
import pytest

from emulator import Sandbox
from support import start_server


def test_serve_prints_every_default_credential_and_answers_health():
    process, segment_url, braze_url = start_server()
    try:
        output = []
        while True:
            line = process.stdout.readline()
            output.append(line)
            if "control API" in line:
                break
        text = "".join(output)
        for credential in ("sandbox-write-key", "sandbox-braze-source-key", "spa_sandbox", "sandbox-profile-token",
                           "sandbox-public-api-token", "sandbox-rest-key", "sandbox-data-import-key",
                           "sandbox-partner-key"):
            assert credential in text
        for url in (segment_url, braze_url):
            assert httpx.get(url + "/_emulator/health").json()["status"] == "ok"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0


def test_every_acknowledged_message_survives_sigkill(tmp_path):
    db = tmp_path / "durable.db"
    process, segment_url, _ = start_server("--db", str(db))
    try:
        # a generous timeout: the suite runs this beside other workers on two cores
        with httpx.Client(base_url=segment_url, auth=("sandbox-write-key", ""), timeout=60) as client:
            acknowledged = 0
            for batch in range(10):
                items = [{"type": "track", "userId": f"u{i % 7}", "event": "Durable", "messageId": f"m-{batch}-{i}"}
                         for i in range(100)]
                response = client.post("/v1/batch", json={"batch": items})
                assert response.status_code == 200
                acknowledged += len(items)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert acknowledged == 1000

    process, segment_url, _ = start_server("--db", str(db))
    try:
        entries = httpx.get(segment_url + "/_emulator/segment/debugger", timeout=60,
                            params={"event": "Durable", "status": "accepted", "limit": 1000}).json()
        assert entries["count"] == 1000
        assert {e["messageId"] for e in entries["messages"]} == {f"m-{b}-{i}" for b in range(10) for i in range(100)}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    with Sandbox(path=db) as sb:
        assert len(sb.segment.events()) == 1000


def test_a_bad_config_file_is_refused_at_start_with_its_path(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("segment:\n  strict: sometimes\n")
    result = subprocess.run([sys.executable, "-m", "emulator.cli", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "segment.strict" in result.stderr and str(config) in result.stderr


@pytest.mark.parametrize("args, expected", [
    (["--segment-port", "70000"], "70000 is not in the range"),
    (["--host", "nosuchhost.invalid"], "cannot listen on nosuchhost.invalid"),
    (["--db", "/nonexistent/dir/x.db"], "cannot open the store /nonexistent/dir/x.db"),
    (["--db", "NOT_A_DB"], "file is not a database"),
])
def test_bad_flags_are_refused_with_a_message_not_a_traceback(tmp_path, args, expected):
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("not an SQLite file, " * 10)
    args = [str(not_a_db) if a == "NOT_A_DB" else a for a in args]
    result = subprocess.run([sys.executable, "-m", "emulator.cli", "serve", "--segment-port", "0", "--braze-port", "0",
                             *args], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_a_reset_while_the_worker_delivers_leaves_nothing_of_the_old_data_in_braze():
    # What the sandbox_server fixture does between tests: a reset while the previous test's events are on their way.
    with Sandbox(clock="realtime") as sb:
        urls = sb.serve()
        sb.start_worker(interval=0.01)
        with httpx.Client(base_url=urls["segment"], auth=("sandbox-write-key", "")) as client:
            for n in range(30):
                assert client.post("/v1/batch", json={"batch": [
                    {"type": "track", "userId": f"u{n}-{i}", "event": "Before reset"} for i in range(100)]}).status_code == 200
            deadline = time.monotonic() + 10
            while not sb.outbox.summary().get("braze", {}).get("delivered") and time.monotonic() < deadline:
                time.sleep(0.005)
            assert client.post("/_emulator/reset").status_code == 200  # mid-delivery: 3,000 events take a while
            assert client.post("/v1/track", json={"userId": "after", "event": "After reset"}).status_code == 200
        sb.stop_worker()
        sb.flush()
        assert sb.braze.users_count() == 1 and sb.braze.user(external_id="after") is not None
        assert sb.outbox.summary() == {"braze": {"delivered": 1}}
        assert [d["message_id"] for d in sb.segment.deliveries()] == [sb.segment.events()[0]["messageId"]]
        assert len(sb.segment.deliveries()[0]["attempts"]) == 1


def test_answers_carry_the_standard_reason_phrase():
    import http.client
    from urllib.parse import urlsplit

    with Sandbox() as sb:
        url = urlsplit(sb.serve()["segment"])
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        connection.request("POST", "/v1/track", body=b"{not json", headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert (response.status, response.reason) == (400, "Bad Request")
        connection.close()

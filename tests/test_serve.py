"""`emulator serve` as a user runs it: a real process, real sockets, a durable store that survives SIGKILL."""
import signal
import subprocess
import sys

import httpx

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

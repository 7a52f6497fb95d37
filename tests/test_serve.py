"""`emulator serve` as a user runs it: a real process, real sockets, a durable store that survives SIGKILL."""
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from emulator import Sandbox


def start_server(*args: str) -> tuple[subprocess.Popen, str, str]:
    process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "serve", "--segment-port", "0",
                                "--braze-port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    urls: dict[str, str] = {}
    deadline = time.monotonic() + 20
    banner = []
    while len(urls) < 2 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line)
        match = re.match(r"\s+(Segment|Braze)\s+(http://\S+)", line)
        if match:
            urls[match.group(1)] = match.group(2)
    if len(urls) < 2:
        process.kill()
        pytest.fail("emulator serve did not start:\n" + "".join(banner))
    return process, urls["Segment"], urls["Braze"]


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
        with httpx.Client(base_url=segment_url, auth=("sandbox-write-key", "")) as client:
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
        entries = httpx.get(segment_url + "/_emulator/segment/debugger",
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

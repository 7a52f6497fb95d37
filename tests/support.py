"""Helpers for tests that run `emulator serve` as a user does: a real process with real sockets."""
import os
import re
import subprocess
import sys
import time

import pytest


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

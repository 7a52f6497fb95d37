"""Ingest benchmark (issue 3): prints events/s over HTTP and in-process, fixture cost, and start-up time.

    python scripts/bench_ingest.py [--seconds 20] [--threads 1,4]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx

from emulator import Sandbox

BATCH = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batch_body(worker: int, n: int) -> bytes:
    items = [{"type": "track", "userId": f"user-{worker}-{i % 50}", "event": "Product Viewed",
              "messageId": f"w{worker}-{n}-{i}", "properties": {"sku": f"sku-{i}", "price": 19.99, "currency": "EUR"},
              "context": {"library": {"name": "bench", "version": "1"}}, "timestamp": "2026-01-01T00:00:00Z"}
             for i in range(BATCH)]
    return json.dumps({"batch": items, "writeKey": "sandbox-write-key", "sentAt": "2026-01-01T00:00:01Z"}).encode()


def start_server(*extra: str) -> tuple[subprocess.Popen, str, float]:
    """`emulator serve` on a free port; returns the process, its Segment URL and seconds to the first 200."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "serve", "--segment-port", str(port),
                                "--braze-port", "0", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    body = {"userId": "probe", "event": "Started", "writeKey": "sandbox-write-key"}
    while True:
        try:
            if httpx.post(url + "/v1/track", json=body, timeout=1).status_code == 200:
                return process, url, time.perf_counter() - started
        except httpx.TransportError:
            pass
        if time.perf_counter() - started > 30:
            process.kill()
            raise SystemExit("server did not start in 30 s")
        time.sleep(0.005)


def http_throughput(url: str, threads: int, seconds: float) -> float:
    counts = [0] * threads
    stop = time.perf_counter() + seconds
    bodies = [[batch_body(w, n) for n in range(20)] for w in range(threads)]

    def work(worker: int) -> None:
        with httpx.Client(base_url=url, headers={"Content-Type": "application/json"}) as client:
            n = 0
            while time.perf_counter() < stop:
                # vary messageIds so dedup never drops: rotate bodies and rewrite the batch counter
                body = bodies[worker][n % 20].replace(b'"w%d-' % worker, b'"w%d-%d-' % (worker, n))
                response = client.post("/v1/batch", content=body)
                assert response.status_code == 200, response.text
                counts[worker] += BATCH
                n += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def in_process_throughput(seconds: float) -> float:
    with Sandbox() as sb:
        batches = [json.loads(batch_body(0, n))["batch"] for n in range(20)]
        sent, n, started = 0, 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            items = [dict(m, messageId=f"{m['messageId']}-{n}") for m in batches[n % 20]]
            sb.segment.ingest(items)
            sent += len(items)
            n += 1
        return sent / (time.perf_counter() - started)


def fixture_cost(rounds: int = 200) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        with Sandbox():
            pass
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", default="1,4")
    args = parser.parse_args()

    starts = []
    for _ in range(3):
        process, _url, seconds = start_server()
        starts.append(seconds)
        process.terminate()
        process.wait()
    print(f"start: `emulator serve` to first 200: median {statistics.median(starts):.3f} s (3 runs: "
          + ", ".join(f"{s:.3f}" for s in starts) + ")")
    print(f"fixture: a fresh Sandbox (create + close): median {fixture_cost():.2f} ms")
    print(f"in-process: sandbox.segment.ingest, batches of {BATCH}: {in_process_throughput(min(args.seconds, 10)):,.0f} events/s")
    # The defaults deliver every event to Braze in the same process while ingesting; "ingest only" turns the
    # destinations off to show the Tracking API (with identity resolution) alone.
    with tempfile.TemporaryDirectory() as tmp:
        ingest_only = os.path.join(tmp, "ingest-only.yaml")
        with open(ingest_only, "w") as f:
            f.write("segment:\n  destinations:\n    braze: {enabled: false}\n    braze_cohorts: {enabled: false}\n")
        for label, extra in (("defaults (delivering to Braze meanwhile)", ()),
                             ("ingest only (destinations off)", ("--config", ingest_only))):
            for threads in (int(t) for t in args.threads.split(",")):
                # a fresh server per figure: each starts from an empty store, not from the previous run's events
                process, url, _ = start_server(*extra)
                try:
                    rate = http_throughput(url, threads, args.seconds)
                finally:
                    process.terminate()
                    process.wait()
                print(f"http, {label}: POST /v1/batch ({BATCH}/request), {threads} client thread(s), "
                      f"{args.seconds:.0f} s: {rate:,.0f} events/s")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()

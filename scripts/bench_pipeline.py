"""Pipeline benchmark (issue 6): Segment ingest → Engage (10 realtime audiences) → outbox → Braze.

Prints events/s from POST /v1/batch over HTTP until every event is applied to Braze profiles (served sandbox,
background worker delivering), and the in-process latency from ingest to the Braze profile after flush().

    python scripts/bench_pipeline.py [--events 20000] [--samples 300]
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

from emulator import Sandbox

AUDIENCES = [
    {"key": f"aud_{i}", "query": q, "destinations": {"braze": {"identify": True}, "braze_cohorts": True}}
    for i, q in enumerate([
        "event('Product Viewed').count() >= 3",
        "event('Product Viewed').within(7 days).count() >= 1",
        "event('Order Completed').count() >= 1",
        "event('Product Viewed').where(property('price') > 50).count() >= 1",
        "trait('plan') = 'pro'",
        "event('Product Viewed').count() >= 10 AND NOT event('Order Completed').count() >= 1",
        "event('Added to Cart').within(30 days).count() >= 2",
        "trait('email').exists()",
        "event('Product Viewed').where(property('category') = 'shoes').count() >= 2",
        "event('Signed Up').count() >= 1 OR trait('plan') = 'free'",
    ])]
CONFIG = {"segment": {"audiences": AUDIENCES}}
USERS = 500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batch(n: int, size: int = 100) -> list[dict]:
    items = []
    for i in range(size):
        user = f"user-{(n * size + i) % USERS}"
        if i % 10 == 0:
            items.append({"type": "identify", "userId": user, "messageId": f"id-{n}-{i}",
                          "traits": {"email": f"{user}@example.com", "plan": "pro" if i % 20 == 0 else "free"}})
        else:
            items.append({"type": "track", "userId": user, "event": "Product Viewed", "messageId": f"ev-{n}-{i}",
                          "properties": {"price": (i * 7) % 100, "category": "shoes" if i % 3 else "hats"}})
    return items


def http_pipeline(events: int, threads: int = 1) -> tuple[float, float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(CONFIG))
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "serve", "--config", str(config),
                                    "--segment-port", str(port), "--braze-port", "0"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(url + "/_emulator/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            bodies = [json.dumps({"writeKey": "sandbox-write-key", "batch": batch(n)}).encode()
                      for n in range(events // 100)]

            failures: list[str] = []

            def post(share: list[bytes]) -> None:
                with httpx.Client(base_url=url, headers={"Content-Type": "application/json"}, timeout=120) as c:
                    for body in share:
                        response = c.post("/v1/batch", content=body)
                        if response.status_code != 200:
                            failures.append(f"{response.status_code} {response.text[:200]}")

            started = time.perf_counter()
            pool = [threading.Thread(target=post, args=(bodies[t::threads],)) for t in range(threads)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            ingested = time.perf_counter() - started
            if failures:
                raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")
            with httpx.Client(base_url=url, timeout=120) as client:
                while True:
                    client.post("/_emulator/flush")
                    summary = client.get("/_emulator/segment/deliveries", params={"limit": 1}).json()["summary"]
                    pending = sum(v for counts in summary.values() for k, v in counts.items() if k == "retrying")
                    if not pending:
                        break
            total = time.perf_counter() - started
            return len(bodies) * 100 / ingested, len(bodies) * 100 / total, summary
        finally:
            process.terminate()
            process.wait()


def in_process_latency(samples: int) -> tuple[float, float]:
    with Sandbox(config=CONFIG) as sb:
        for n in range(5):  # a warm population
            sb.segment.ingest(batch(n))
        sb.flush()
        timings = []
        for i in range(samples):
            started = time.perf_counter()
            sb.segment.ingest({"type": "track", "userId": f"user-{i % USERS}", "event": "Product Viewed",
                               "properties": {"price": 99, "category": "shoes"}})
            sb.flush()
            timings.append((time.perf_counter() - started) * 1000)
        assert sb.braze.user(external_id="user-0") is not None
        timings.sort()
        return statistics.median(timings), timings[int(len(timings) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--threads", default="1,4", help="client threads posting /v1/batch concurrently")
    args = parser.parse_args()
    median, p99 = in_process_latency(args.samples)
    print(f"in-process: ingest one event -> Braze profile after flush(), 10 realtime audiences on both destinations:"
          f" median {median:.2f} ms, p99 {p99:.2f} ms")
    for threads in (int(t) for t in args.threads.split(",")):
        ingest_rate, end_to_end_rate, summary = http_pipeline(args.events, threads)
        print(f"http, {threads} client thread(s): {args.events:,} events through POST /v1/batch (100/request):"
              f" ingest {ingest_rate:,.0f} events/s; until all applied to Braze {end_to_end_rate:,.0f} events/s")
        print(f"  deliveries: {summary}")


if __name__ == "__main__":
    main()

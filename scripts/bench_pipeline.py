"""Pipeline benchmark (issue 6): Segment ingest → Engage (10 realtime audiences) → outbox → Braze.

Prints events/s from POST /v1/batch over HTTP until every event is applied to Braze profiles (served sandbox,
background worker delivering), and the in-process latency from ingest to the Braze profile after flush().

    python scripts/bench_pipeline.py [--events 20000] [--samples 300]
"""
from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

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


def start_server(config: Path, *args: str, head: tuple[str, ...] = ("-m", "emulator.cli")) -> tuple[subprocess.Popen, str]:
    """`emulator serve` with this configuration (and more arguments), once it answers; `head` replaces `-m
    emulator.cli` (e.g. with `-c` and a program that patches it first)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, *head, "serve", "--config", str(config), *args,
                                "--segment-port", str(port), "--braze-port", "0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/_emulator/health")
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return process, url


def http_pipeline(events: int, threads: int = 1) -> tuple[float, float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(CONFIG))
        process, url = start_server(config)
        try:
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


_SQLITE_SECONDS = [0.0]


def _timed(call: Callable[..., Any], *args: Any) -> Any:
    started = time.perf_counter()
    try:
        return call(*args)
    finally:
        _SQLITE_SECONDS[0] += time.perf_counter() - started


class _TimedCursor(sqlite3.Cursor):
    def fetchall(self) -> list:
        return _timed(super().fetchall)

    def fetchone(self) -> Any:
        return _timed(super().fetchone)


class _TimedConnection(sqlite3.Connection):
    """Counts the time spent inside SQLite (statements run in execute/executemany, rows read in fetch*)."""

    def cursor(self, factory: type = _TimedCursor) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        return _timed(self.cursor().execute, *args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        return _timed(self.cursor().executemany, *args)


def in_process_breakdown(events: int) -> dict[str, float]:
    """The two halves of the pipeline measured apart, in one process with the served clock (real time): ingest
    (Tracking rules, identity, 10 realtime audiences, outbox enqueue), then delivery (flush: plan, send to the
    sandbox's Braze, apply, settle), with the time spent inside SQLite in each. SQLite runs one write transaction
    at a time, so its time per event bounds the end-to-end rate however the Python work is spread."""
    connect = sqlite3.connect
    sqlite3.connect = lambda *a, **k: connect(*a, factory=_TimedConnection, **k)  # type: ignore[assignment]
    try:
        with Sandbox(config=CONFIG, clock="realtime") as sb:
            sb.flush()  # the Braze app is imported on first delivery: not part of the figure
            bodies = [batch(n) for n in range(events // 100)]
            spent = _SQLITE_SECONDS
            spent[0] = 0.0
            started = time.perf_counter()
            for body in bodies:
                sb.segment.ingest(body)
            ingested, ingest_sql = time.perf_counter(), spent[0]
            sb.flush()
            delivered, deliver_sql = time.perf_counter(), spent[0] - ingest_sql
    finally:
        sqlite3.connect = connect  # type: ignore[assignment]
    n = len(bodies) * 100
    return {"ingest_us": (ingested - started) / n * 1e6, "ingest_sql_us": ingest_sql / n * 1e6,
            "deliver_us": (delivered - ingested) / n * 1e6, "deliver_sql_us": deliver_sql / n * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--threads", default="1,4", help="client threads posting /v1/batch concurrently")
    args = parser.parse_args()
    median, p99 = in_process_latency(args.samples)
    print(f"in-process: ingest one event -> Braze profile after flush(), 10 realtime audiences on both destinations:"
          f" median {median:.2f} ms, p99 {p99:.2f} ms")
    parts = in_process_breakdown(args.events)
    sql = parts["ingest_sql_us"] + parts["deliver_sql_us"]
    print(f"in-process, per event: ingest {parts['ingest_us']:.1f} µs (SQLite {parts['ingest_sql_us']:.1f}),"
          f" delivery {parts['deliver_us']:.1f} µs (SQLite {parts['deliver_sql_us']:.1f});"
          f" SQLite alone allows at most {1e6 / sql:,.0f} events/s end to end")
    for threads in (int(t) for t in args.threads.split(",")):
        ingest_rate, end_to_end_rate, summary = http_pipeline(args.events, threads)
        print(f"http, {threads} client thread(s): {args.events:,} events through POST /v1/batch (100/request):"
              f" ingest {ingest_rate:,.0f} events/s; until all applied to Braze {end_to_end_rate:,.0f} events/s")
        print(f"  deliveries: {summary}")


if __name__ == "__main__":
    main()

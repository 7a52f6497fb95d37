"""Destination mapping benchmark: µs per event for `build_requests` (no HTTP, no store).

Braze Cloud Mode with the classic and the current presets, and Braze Cohorts, over a few thousand realistic
normalized events (identify with traits, track, Order Completed with products; audience entered/exited for cohorts),
planned in chunks of 750 like the outbox (`PLAN_ROWS`). Prints the median of several runs and a digest of everything
planned (bodies, headers, refusals), which must not change when the mapping code is optimised.

    python scripts/bench_destinations.py [--events 6000] [--runs 7]

(Before the mapping was compiled, at commit 3df274e: 49 µs/event classic, 88 current, 30 cohorts on this machine.)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import time
from typing import Callable

from emulator.segment.destinations import braze_cloud, braze_cohorts
from emulator.segment.destinations.base import Plan

CHUNK = 750  # outbox.PLAN_ROWS
SETTINGS = {"api_key": "key", "endpoint": "http://braze.test"}


def _base(rng: random.Random, n: int, kind: str) -> dict:
    second = n % 60
    return {"type": kind, "messageId": f"m-{n}", "timestamp": f"2026-11-20T10:{n // 60 % 60:02d}:{second:02d}.000Z",
            "receivedAt": f"2026-11-20T10:{n // 60 % 60:02d}:{second:02d}.123Z",
            "sentAt": "2026-11-20T10:00:00.000Z", "originalTimestamp": "2026-11-20T10:00:00.000Z",
            "context": {"library": {"name": "analytics-python", "version": "2.4.0"}}, "integrations": {},
            "userId": f"user-{rng.randrange(500)}"}


def _identify(rng: random.Random, n: int) -> dict:
    event = _base(rng, n, "identify")
    user = event["userId"]
    traits: dict = {"email": f"{user}@example.com", "plan": rng.choice(["pro", "free"]), "logins": rng.randrange(50)}
    if n % 2:
        traits.update(firstName="Ana", lastName="Lima", phone="+351911111111", gender=rng.choice(["female", "m", "x"]))
    if n % 3 == 0:
        traits.update(address={"city": "Lisbon", "country": "PT"}, avatar="https://example.com/a.png",
                      tags=["a", "b"], lastName=None)
    if n % 7 == 0:
        event["context"]["location"] = {"country": "Portugal", "latitude": 38.7, "longitude": -9.1}
    event["traits"] = traits
    return event


def _product(rng: random.Random, i: int) -> dict:
    return {"product_id": f"p-{i}", "sku": f"SKU-{i}", "name": f"Product {i}", "variant": "red",
            "price": rng.choice([9.99, 20, 35.5]), "quantity": rng.randrange(1, 4), "category": "shoes",
            "url": f"https://shop.example.com/p/{i}", "image_url": f"https://shop.example.com/p/{i}.png"}


def _track(rng: random.Random, n: int) -> dict:
    event = _base(rng, n, "track")
    roll = n % 10
    if roll < 6:
        event["event"] = "Product Viewed"
        event["properties"] = {**_product(rng, rng.randrange(100)), "currency": "USD", "source": "web"}
    elif roll < 8:
        event["event"] = "Added to Cart"
        event["properties"] = {"product_id": f"p-{rng.randrange(100)}", "price": 20, "cart_id": "c1"}
    else:
        event["event"] = "Order Completed"
        products = [_product(rng, rng.randrange(100)) for _ in range(rng.randrange(1, 4))]
        event["properties"] = {"order_id": f"o-{n}", "total": sum(p["price"] * p["quantity"] for p in products),
                               "currency": "USD", "source": "web", "discount": 2, "products": products}
    if n % 5 == 0:
        event["context"]["traits"] = {"email": f"{event['userId']}@example.com"}
    return event


def cloud_events(count: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    return [_identify(rng, n) if n % 4 == 0 else _track(rng, n) for n in range(count)]


def cohort_events(count: int, seed: int = 2) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for n in range(count):
        key = f"aud_{n % 5}"
        event = _base(rng, n, "track")
        event["event"] = rng.choice(["Audience Entered", "Audience Exited"])
        event["properties"] = {key: event["event"] == "Audience Entered", "audience_key": key}
        event["context"]["personas"] = {"computation_key": key, "computation_id": f"ais_{n % 5}",
                                        "computation_class": "audience", "space_id": "spa_1"}
        events.append(event)
    return events


def _digest(plans: list[Plan], hasher: "hashlib._Hash") -> None:
    for plan in plans:
        for r in plan.requests:
            hasher.update(json.dumps([r.method, r.path, r.headers, r.body, r.events, r.sources]).encode())
        hasher.update(json.dumps(sorted((i, r.status, r.code, r.message) for i, r in plan.refusals.items())).encode())
        hasher.update(json.dumps([plan.filtered, plan.skipped, sorted(plan.created_cohorts)]).encode())


def _chunks(events: list[dict]) -> list[list[dict]]:
    return [events[i:i + CHUNK] for i in range(0, len(events), CHUNK)]


def run_cloud(events: list[dict], preset_set: str, cloud=braze_cloud) -> list[Plan]:
    settings = {**SETTINGS, "preset_set": preset_set}
    return [cloud.build_requests(chunk, settings, preset_set) for chunk in _chunks(events)]


def run_cohorts(events: list[dict], cohorts=braze_cohorts) -> list[Plan]:
    plans = []
    for chunk in _chunks(events):
        by_key: dict[str, list[dict]] = {}  # the outbox plans each audience on its own (Destination._plan_cohorts)
        for event in chunk:
            by_key.setdefault(event["context"]["personas"]["computation_key"], []).append(event)
        for key, group in by_key.items():
            plans.append(cohorts.build_requests(group, {"client_secret": "s", "endpoint": "http://braze.test",
                                                              "personas_audience_key": key}, set()))
    return plans


def measure(name: str, variants: list[tuple[str, Callable[[list[dict]], list[Plan]]]], events: list[dict],
            runs: int) -> None:
    """Time each variant `runs` times, the variants taking turns (a burst of load on the machine hits them alike)."""
    timings: dict[str, list[float]] = {label: [] for label, _ in variants}
    for _, fn in variants:
        fn(events)  # warm caches
    for _ in range(runs):
        for label, fn in variants:
            started = time.perf_counter()
            fn(events)
            timings[label].append((time.perf_counter() - started) * 1e6 / len(events))
    for label, fn in variants:
        hasher = hashlib.sha256()
        _digest(fn(events), hasher)
        print(f"{label + name:<38} median {statistics.median(timings[label]):7.1f} µs/event  "
              f"(min {min(timings[label]):.1f}, {len(events):,} events x {runs} runs)  digest {hasher.hexdigest()[:16]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    cloud, cohorts = cloud_events(args.events), cohort_events(args.events)
    modules = [("", braze_cloud, braze_cohorts)]
    for preset_set in ("classic", "current"):
        measure(f"braze cloud ({preset_set})",
                [(label, lambda ev, c=c: run_cloud(ev, preset_set, c)) for label, c, _ in modules], cloud, args.runs)
    measure("braze cohorts", [(label, lambda ev, h=h: run_cohorts(ev, h)) for label, _, h in modules], cohorts,
            args.runs)


if __name__ == "__main__":
    main()

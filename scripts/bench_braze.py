"""Benchmark the Braze app: `/users/track` throughput and segment membership time.

    python scripts/bench_braze.py [--requests 200] [--profiles 100000]

1. `/users/track` over HTTP (a real socket, waitress) with 75-object requests: attributes (new profiles with four
   custom attributes, then updates with increment and array add) and events; prints objects per second.
   The same through the in-process WSGI transport, for comparison.
   Then the mix the Segment destination sends (attributes, events with properties, purchases, on a pool of
   known profiles) in-process: through the httpx WSGI transport, into the WSGI app as the pipeline's transport
   calls it (JSON bytes, a delivery id, no HTTP client), and straight through `sandbox.braze.track`; and
   `/partners/segment/cohorts/users` in-process.
2. Segment membership for N profiles (default 100,000, made through `sandbox.braze.track`) with a 3-group filter
   (custom attribute AND custom event count, OR a purchase/number group, minus an exclusion group); prints
   the time of one evaluation at the sandbox clock.
"""
from __future__ import annotations

import argparse
import json
import time

import httpx

from emulator import Sandbox
from emulator.segment.destinations.transport import call_wsgi

UNLIMITED = {"braze": {"rate_limits": {"users.track": {"limit": 10**9, "window_seconds": 60}}}}


def _attributes(batch: int, update: bool) -> dict:
    objects = []
    for i in range(75):
        n = batch * 75 + i
        obj = {"external_id": f"user-{n}"}
        if update:
            obj.update({"points": {"inc": 3}, "tags": {"add": [f"t{n % 7}"]}, "last_seen": "2025-12-31T10:00:00Z"})
        else:
            obj.update({"email": f"user{n}@example.com", "first_name": "Ana", "plan": ["free", "pro", "team"][n % 3],
                        "age": n % 80, "vip": n % 5 == 0, "tags": [f"t{n % 4}"]})
        objects.append(obj)
    return {"attributes": objects}


def _events(batch: int) -> dict:
    return {"events": [{"external_id": f"user-{batch * 75 + i}", "name": "Product Viewed",
                        "time": "2025-12-30T10:00:00Z", "properties": {"item": "Sweater", "price": 12.5}}
                       for i in range(75)]}


MIX_USERS = 500


def _mix(batch: int) -> dict:
    """One request of the destination's mix: 25 attribute objects, 35 events with properties, 15 purchases."""
    def user(i: int) -> str:
        return f"mix-{(batch * 75 + i * 7) % MIX_USERS}"

    at = f"2025-12-30T10:{batch % 60:02d}:00.000Z"
    attributes = [{"external_id": user(i), "email": f"{user(i)}@example.com", "plan": ["free", "pro"][i % 2],
                   "logins": {"inc": 1}, "last_seen": at, "_update_existing_only": False} for i in range(25)]
    events = [{"external_id": user(i), "name": ["Product Viewed", "Added to Cart"][i % 2], "time": at,
               "properties": {"price": (i * 7) % 100, "category": "shoes" if i % 3 else "hats", "sku": f"sku-{i}"},
               "_update_existing_only": False} for i in range(35)]
    purchases = [{"external_id": user(i), "product_id": f"p{i % 5}", "currency": "USD", "price": 19.99,
                  "quantity": 1 + i % 3, "time": at, "properties": {"order_id": f"o-{batch}-{i}"},
                  "_update_existing_only": False} for i in range(15)]
    return {"attributes": attributes, "events": events, "purchases": purchases}


def _mix_bodies(requests: int) -> list[dict]:
    return [_mix(batch) for batch in range(requests)]


def bench_mix_client(client: httpx.Client, requests: int) -> float:
    bodies = _mix_bodies(requests)
    started = time.perf_counter()
    for body in bodies:
        response = client.post("/users/track", json=body)
        assert response.status_code == 201, response.text
    return requests * 75 / (time.perf_counter() - started)


def bench_mix_pipeline(sb: Sandbox, requests: int) -> float:
    """The mix as the pipeline delivers it: compact JSON bytes, a delivery id, straight into the WSGI app."""
    key = sb.config["braze"]["rest_api_keys"][0]
    bodies = [json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() for body in _mix_bodies(requests)]
    app = sb.braze_app
    started = time.perf_counter()
    for n, body in enumerate(bodies):
        status, _, _ = call_wsgi(app, "POST", "/users/track",
                                 {"Authorization": f"Bearer {key}", "X-Emulator-Delivery-Id": f"d{n}"}, body)
        assert status == 201, status
    return requests * 75 / (time.perf_counter() - started)


def bench_mix_direct(sb: Sandbox, requests: int) -> float:
    bodies = _mix_bodies(requests)
    started = time.perf_counter()
    for body in bodies:
        sb.braze.track(body)
    return requests * 75 / (time.perf_counter() - started)


def bench_cohorts(sb: Sandbox, requests: int) -> float:
    """`/partners/segment/cohorts/users` in-process: 100 user ids a request (90 known), adds then removes."""
    for batch in range(1000 // 75 + 1):
        sb.braze.track({"attributes": [{"external_id": f"c-{batch * 75 + i}"} for i in range(75)]})
    secret = sb.config["braze"]["data_import_keys"][0]
    with httpx.Client(transport=httpx.WSGITransport(app=sb.braze_app), base_url="http://braze") as client:
        client.post("/partners/segment/cohorts", json={"client_secret": secret, "cohort_id": "bench", "name": "bench",
                                                        "created_at": "2026-01-01T00:00:00Z"})
        bodies = [{"client_secret": secret, "cohort_id": "bench", "cohort_changes": [
            {"user_ids": [f"c-{(n * 100 + i) % 1100}" for i in range(100)], "should_remove": n % 2 == 1}]}
            for n in range(requests)]
        started = time.perf_counter()
        for body in bodies:
            response = client.post("/partners/segment/cohorts/users", json=body)
            assert response.status_code == 201, response.text
        return requests * 100 / (time.perf_counter() - started)


def bench_track(client: httpx.Client, requests: int) -> float:
    bodies = []
    for batch in range(requests // 3):
        bodies += [_attributes(batch, False), _attributes(batch, True), _events(batch)]
    started = time.perf_counter()
    for body in bodies:
        response = client.post("/users/track", json=body)
        assert response.status_code == 201, response.text
    elapsed = time.perf_counter() - started
    return len(bodies) * 75 / elapsed


def bench_segment(profiles: int) -> tuple[float, int, float]:
    with Sandbox(config=UNLIMITED) as sb:
        started = time.perf_counter()
        for batch in range(profiles // 75 + (profiles % 75 > 0)):
            count = min(75, profiles - batch * 75)
            body = _attributes(batch, False)
            body["attributes"] = body["attributes"][:count]
            body["events"] = [{"external_id": o["external_id"], "name": "Product Viewed",
                               "time": "2025-12-30T10:00:00Z"} for o in body["attributes"][: count // 2]]
            if batch % 4 == 0:
                body["purchases"] = [{"external_id": o["external_id"], "product_id": "p1", "currency": "USD",
                                      "price": 30, "quantity": 2, "time": "2025-12-29T00:00:00Z"}
                                     for o in body["attributes"][:10]]
            sb.braze.track(body)
        load = time.perf_counter() - started
        definition = {
            "name": "bench",
            "groups": [
                {"filters": [{"custom_attribute": "plan", "op": "equals", "value": "pro"},
                             {"custom_event": "Product Viewed", "op": "more_than", "value": 0, "days": 7}]},
                {"join": "or", "filters": [{"purchase": "any", "op": "spent_more_than", "value": 50},
                                           {"custom_attribute": "age", "op": "more_than", "value": 70}]},
                {"filters": [{"custom_attribute": "tags", "op": "includes_any_of", "value": ["t1", "t2", "t3"]}]},
            ],
            "groups_join": "or",
            "exclude": [{"filters": [{"custom_attribute": "vip", "op": "is", "value": True}]}],
        }
        sb.braze.segment_members(definition=definition)  # warm the page cache once
        started = time.perf_counter()
        members = sb.braze.segment_members(definition=definition)
        return time.perf_counter() - started, len(members), load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="/users/track requests of 75 objects")
    parser.add_argument("--profiles", type=int, default=100_000, help="profiles for the segment benchmark")
    args = parser.parse_args()

    with Sandbox(config=UNLIMITED) as sb:
        urls = sb.serve(segment_port=0, braze_port=0)
        key = sb.config["braze"]["rest_api_keys"][0]
        with httpx.Client(base_url=urls["braze"], headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            http_rate = bench_track(client, args.requests)
    with Sandbox(config=UNLIMITED) as sb, sb.braze_client() as client:
        wsgi_rate = bench_track(client, args.requests)
    print(f"/users/track over HTTP (75-object requests, {args.requests} requests): {http_rate:,.0f} objects/s")
    print(f"/users/track in-process WSGI (same bodies):                  {wsgi_rate:,.0f} objects/s")
    with Sandbox(config=UNLIMITED) as sb, sb.braze_client() as client:
        mix_rate = bench_mix_client(client, args.requests)
    with Sandbox(config=UNLIMITED) as sb:
        pipeline_rate = bench_mix_pipeline(sb, args.requests)
    with Sandbox(config=UNLIMITED) as sb:
        direct_rate = bench_mix_direct(sb, args.requests)
    print(f"/users/track mix in-process WSGI (attributes, events with properties, purchases): {mix_rate:,.0f} objects/s")
    print(f"/users/track mix into the WSGI app as the pipeline sends it (no HTTP client):     {pipeline_rate:,.0f} objects/s")
    print(f"/users/track mix through sandbox.braze.track (no HTTP layer):                    {direct_rate:,.0f} objects/s")
    with Sandbox(config=UNLIMITED) as sb:
        cohort_rate = bench_cohorts(sb, args.requests)
    print(f"/partners/segment/cohorts/users in-process WSGI (100 user ids a request): {cohort_rate:,.0f} ids/s")

    seconds, size, load = bench_segment(args.profiles)
    print(f"segment membership, {args.profiles:,} profiles, 3 groups + exclusion: {seconds * 1000:,.0f} ms "
          f"({size:,} members; loading the profiles through track took {load:,.1f} s)")


if __name__ == "__main__":
    main()

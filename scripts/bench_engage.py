"""Engage evaluation speed: `python scripts/bench_engage.py [--profiles 100000] [--events 1000000] [--seed 7]`.

Builds the dataset straight into a Sandbox's store (in memory) with bulk INSERTs -- the rows identity resolution
and ingestion would have written, without running them: `engage_profiles` (live user profiles), `engage_external_ids`
(user_id for 80 %, an email for those, anonymous_id for all), `engage_traits` (plan, total_spend, city, email; an
audience flag `big_spenders` on ~20 %), `segment_events` (tracks of 8 event names plus page calls, properties from
Faker-made pools, timestamps over the last 90 days, all `...Z` with milliseconds like ingestion writes them) and
`engage_event_profiles` (each event -> its profile). Faker (seeded) makes the value pools, `random.Random(seed)`
picks from them, so a run is reproducible.

Then prints:
- batch: the time to evaluate 10 audiences (a realistic mix: counts with within, where filters, trait conditions,
  an audience reference, OR/NOT) for every profile -- one SQL statement each -- and each one's time and size;
- realtime: 100-message batches ingested through `sandbox.segment.ingest` (identity resolution included) for
  existing users, with an accept listener evaluating the same 10 audiences for the profiles the batch touched;
  the listener's time divided by the messages is the extra cost per message. Shown for batches of 10 users x 10
  messages and of 100 distinct users.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from datetime import timedelta

from faker import Faker

from emulator import Sandbox
from emulator.clock import iso
from emulator.segment.engage.compute import Evaluator
from emulator.segment.engage.query import check_definition

EVENTS = ["Product Viewed", "Product Added", "Order Completed", "Shoes Bought", "Shoes Returned", "Signed Up",
          "Email Opened", "Checkout Started"]

AUDIENCES = [
    "event('Order Completed').within(30 days).count() >= 1",
    "event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1",
    "event('Product Viewed').within(14 days).count() >= 5"
    " AND NOT event('Order Completed').within(14 days).count() >= 1",
    "trait('plan') = 'pro' AND trait('total_spend') > 500",
    "trait('big_spenders') = true OR event('Order Completed').sum(property('price')) > 800",
    "event('Page Viewed').where( property('name') = 'Pricing' ).within(7 days).count() >= 2",
    "event('Product Added').where( property('category').one_of('shoes', 'shirts') ).count() >= 3",
    "trait('email').ends_with('.org') AND event('Email Opened').within(30 days).count() >= 1",
    "event('Checkout Started').within(3 days).count() >= 1"
    " AND NOT event('Order Completed').within(3 days).count() >= 1",
    "event('Product Viewed').unique(property('sku')).count() >= 4 OR trait('city') = 'Oslo'",
]


def build(sandbox: Sandbox, profiles: int, events: int, seed: int) -> None:
    fake = Faker()
    Faker.seed(seed)
    rng = random.Random(seed)
    cities = [fake.city() for _ in range(200)] + ["Oslo"]
    domains = [fake.free_email_domain() for _ in range(20)] + ["example.org"]
    skus = [f"sku-{fake.bothify('??-####')}" for _ in range(300)]
    categories = ["shoes", "shirts", "hats", "bags", "socks"]
    pages = ["Home", "Pricing", "Docs", "Blog", "About"]
    now = sandbox.clock.now()
    now_iso = iso(now)
    ids = [f"use_{n:08d}" for n in range(profiles)]
    conn = sandbox.store.conn
    with sandbox.store.transaction():
        conn.executemany("INSERT INTO engage_profiles (profile_id, collection, created_at, updated_at)"
                         " VALUES (?, 'users', ?, ?)", ((pid, now_iso, now_iso) for pid in ids))
        ext, traits = [], []
        for n, pid in enumerate(ids):
            ext.append((pid, "anonymous_id", f"anon-{n}", now_iso))
            if rng.random() < 0.8:
                email = f"user{n}@{rng.choice(domains)}"
                ext.append((pid, "user_id", f"user-{n}", now_iso))
                ext.append((pid, "email", email, now_iso))
                traits.append((pid, "email", json.dumps(email), "trait", now_iso))
            traits.append((pid, "plan", json.dumps(rng.choice(["free", "free", "pro", "team"])), "trait", now_iso))
            traits.append((pid, "total_spend", json.dumps(round(rng.expovariate(1 / 300), 2)), "trait", now_iso))
            traits.append((pid, "city", json.dumps(rng.choice(cities)), "trait", now_iso))
            if rng.random() < 0.2:
                traits.append((pid, "big_spenders", "true", "audience", now_iso))
        conn.executemany("INSERT INTO engage_external_ids (profile_id, collection, type, value, source_id,"
                         " created_at) VALUES (?, 'users', ?, ?, 'sandbox', ?)", ext)
        conn.executemany("INSERT INTO engage_traits (profile_id, key, value, class, updated_at)"
                         " VALUES (?, ?, ?, ?, ?)", traits)
        # 1M rows: the timestamps and JSON bodies are put together from precomputed pieces (json.dumps and
        # datetime arithmetic per row would take most of the build time); every value is JSON-safe text.
        start = now - timedelta(days=90)
        days = [iso(start + timedelta(days=d))[:11] for d in range(91)]
        span = 90 * 86400 * 1000
        stamps = sorted(int(rng.random() * span) for _ in range(events))
        start_ms = start.hour * 3_600_000 + start.minute * 60_000 + start.second * 1000
        draw = rng.random
        quoted_skus = [json.dumps(sku) for sku in skus]

        def rows():
            for seq, offset in enumerate(stamps, start=1):
                day, ms = divmod(offset + start_ms, 86_400_000)
                hours, ms = divmod(ms, 3_600_000)
                minutes, ms = divmod(ms, 60_000)
                ts = f"{days[day]}{hours:02d}:{minutes:02d}:{ms // 1000:02d}.{ms % 1000:03d}Z"
                n = int(draw() * profiles)
                if draw() < 0.2:
                    name = pages[int(draw() * len(pages))]
                    message = (f'{{"type":"page","name":"{name}","userId":"user-{n}","properties":{{"path":"/"}},'
                               f'"timestamp":"{ts}"}}')
                    kind, event = "page", None
                else:
                    event = EVENTS[int(draw() * len(EVENTS))]
                    price = round(5 + draw() * 295, 2)
                    message = (f'{{"type":"track","event":"{event}","userId":"user-{n}","timestamp":"{ts}",'
                               f'"properties":{{"price":{price},"sku":{quoted_skus[int(draw() * len(skus))]},'
                               f'"category":"{categories[int(draw() * len(categories))]}"}}}}')
                    kind = "track"
                yield (seq, f"m-{seq}", "sandbox", kind, event, f"user-{n}", None, ts, ts, message, n)

        batch: list[tuple] = []
        for row in rows():
            batch.append(row)
            if len(batch) == 50_000:
                _flush(conn, batch, ids)
        _flush(conn, batch, ids)


def _flush(conn, batch: list[tuple], ids: list[str]) -> None:
    conn.executemany("INSERT INTO segment_events (seq, message_id, source, type, event, user_id, anonymous_id,"
                     " timestamp, received_at, message) VALUES (?,?,?,?,?,?,?,?,?,?)", [r[:10] for r in batch])
    conn.executemany("INSERT INTO engage_event_profiles (seq, profile_id) VALUES (?, ?)",
                     [(r[0], ids[r[10]]) for r in batch])
    batch.clear()


def bench_batch(sandbox: Sandbox, queries: list) -> tuple[float, float]:
    """(wall, CPU) seconds for one batch evaluation of every query; CPU time is this process's, so it shows the
    cost whatever else the (shared) machine is doing."""
    evaluator = Evaluator(sandbox.store)
    at = sandbox.clock.now()
    wall = cpu = 0.0
    for text, query in queries:
        started, started_cpu = time.perf_counter(), time.process_time()
        result = evaluator.evaluate(query, at=at, external_id_types=("user_id", "email", "android.idfa", "ios.idfa"))
        elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        wall += elapsed
        cpu += elapsed_cpu
        print(f"  {elapsed * 1000:6.0f} ms ({elapsed_cpu * 1000:4.0f} ms CPU)  {sum(result.values()):6d} of "
              f"{len(result)}  {text}")
    return wall, cpu


def bench_realtime(sandbox: Sandbox, queries: list, profiles: int, users_per_batch: int, batches: int,
                   seed: int) -> float:
    evaluator = Evaluator(sandbox.store)
    rng = random.Random(seed)
    spent = [0.0]

    def listener(messages: list[dict], conn) -> None:
        started = time.process_time()
        touched = sorted({m["_profile"] for m in messages if "_profile" in m})
        at = sandbox.clock.now()
        for _text, query in queries:
            evaluator.evaluate(query, at=at, profile_ids=touched, conn=conn)
        spent[0] += time.process_time() - started

    sandbox.segment.tracking.listeners.append(listener)
    messages_sent = 0
    try:
        for _ in range(batches):
            users = [rng.randrange(profiles) for _ in range(users_per_batch)]
            messages = []
            for i in range(100):
                n = users[i % users_per_batch]
                messages.append({"type": "track", "event": rng.choice(EVENTS), "userId": f"user-{n}",
                                 "properties": {"price": round(rng.uniform(5, 300), 2), "sku": "sku-1",
                                                "category": "shoes"}})
            sandbox.segment.ingest(messages)
            messages_sent += len(messages)
            sandbox.clock.advance("1m")
    finally:
        sandbox.segment.tracking.listeners.remove(listener)
    return spent[0] / messages_sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    queries = [(text, check_definition(text, "audience")) for text in AUDIENCES]
    with Sandbox() as sandbox:
        started = time.perf_counter()
        build(sandbox, args.profiles, args.events, args.seed)
        print(f"dataset: {args.profiles:,} profiles, {args.events:,} events built in "
              f"{time.perf_counter() - started:.1f} s")
        print(f"batch recompute of {len(queries)} audiences over every profile:")
        wall, cpu = bench_batch(sandbox, queries)
        print(f"batch total: {wall:.2f} s ({cpu:.2f} s CPU) for {len(queries)} audiences (target < 5 s)")
        for users in (10, 100):
            per_message = bench_realtime(sandbox, queries, args.profiles, users, args.batches, args.seed)
            print(f"realtime: {len(queries)} audiences, 100-message batches of {users} users: "
                  f"{per_message * 1000:.3f} ms CPU extra per message (target < 0.2 ms)")


if __name__ == "__main__":
    main()

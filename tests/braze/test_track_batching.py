"""`/users/track` applies a batch exactly as it would apply its objects one request at a time.

The batch path keeps rows in memory and writes them with executemany; these tests compare every `braze_*` row
(rowid included) with the same objects sent one per request, which is the object-by-object path. They pass on
the straightforward implementation too.
"""
import random

from emulator import Sandbox

ARRAYS = ("attributes", "events", "purchases")


def tables(sb: Sandbox) -> dict:
    names = [row[0] for row in sb.store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'braze%' ORDER BY name")]
    return {name: sb.store.conn.execute(f"SELECT rowid, * FROM {name} ORDER BY rowid").fetchall() for name in names}


def one_at_a_time(sb: Sandbox, body: dict) -> None:
    for name in ARRAYS:
        for obj in body.get(name) or []:
            try:
                sb.braze.track({name: [obj]})
            except Exception as exc:  # an invalid object alone is a 400 that changes nothing
                assert getattr(exc, "status", None) == 400, exc


def both(bodies: list, moves: dict | None = None) -> tuple[dict, dict]:
    with Sandbox() as batched, Sandbox() as single:
        for n, body in enumerate(bodies):
            if moves and n in moves:
                batched.advance(moves[n])
                single.advance(moves[n])
            try:
                batched.braze.track(body)
            except Exception as exc:
                assert getattr(exc, "status", None) == 400, exc
            one_at_a_time(single, body)
        return tables(batched), tables(single)


def random_body(rng: random.Random, known_braze_ids: list) -> dict:
    def target() -> dict:
        r = rng.random()
        if r < 0.55:
            return {"external_id": rng.choice(["u1", "u2", "u3", "u4", f"n{rng.randrange(50)}"])}
        if r < 0.65:
            return {"user_alias": {"alias_name": rng.choice(["a1", "a2"]), "alias_label": "l"}}
        if r < 0.75:
            return {"email": rng.choice(["e1@x.com", "E1@x.com", "e2@x.com"])}
        if r < 0.8:
            return {"phone": rng.choice(["+1555", "+1666"])}
        if r < 0.85 and known_braze_ids:
            return {"braze_id": rng.choice(known_braze_ids)}
        return {"external_id": "u1", "_update_existing_only": rng.choice([True, False])}

    def attributes() -> dict:
        obj = target()
        for key in rng.sample(["email", "first_name", "phone", "plan", "points", "tags", "seen", "nested"], 3):
            obj[key] = {
                "email": rng.choice(["e1@x.com", "e3@x.com", None]), "first_name": rng.choice(["Ana", "Bo"]),
                "phone": rng.choice(["+1555", None]), "plan": rng.choice(["free", "pro", None]),
                "points": rng.choice([{"inc": 1}, {"inc": 0.1}, 3]), "tags": {"add": [rng.choice("abc")]},
                "seen": rng.choice(["2025-12-30T10:00:00Z", "12/01/2025"]), "nested": {"a": {"b": rng.randrange(3)}},
            }[key]
        return obj

    def event() -> dict:
        return {**target(), "name": rng.choice(["Viewed", "Added"]),
                "time": rng.choice(["2025-12-30T10:00:00Z", "2025-12-05T00:00:00Z", "2027-01-01T00:00:00Z"]),
                "properties": {"price": rng.randrange(100)}}

    def purchase() -> dict:
        return {**target(), "product_id": rng.choice(["p1", "p2"]), "currency": "USD",
                "price": rng.choice([19.99, 0.1, 0.2, 3]), "quantity": rng.choice([1, 2, 3]),
                "time": rng.choice(["2025-12-30T10:00:00Z", "2027-01-01T00:00:00Z"])}

    return {"attributes": [attributes() for _ in range(rng.randrange(0, 8))],
            "events": [event() for _ in range(rng.randrange(1, 10))],
            "purchases": [purchase() for _ in range(rng.randrange(0, 6))]}


def test_a_mixed_batch_stores_what_one_object_per_request_stores():
    rng = random.Random(7)
    bodies, known = [], []
    with Sandbox() as probe:  # braze_ids a later object may name (the sandbox RNG is seeded alike)
        probe.braze.track({"attributes": [{"external_id": "u1"}, {"external_id": "u2"}]})
        known = [row[0] for row in probe.store.conn.execute("SELECT braze_id FROM braze_users")]
    bodies.append({"attributes": [{"external_id": "u1"}, {"external_id": "u2"}]})
    bodies += [random_body(rng, known) for _ in range(40)]
    batched, single = both(bodies, moves={15: "20d", 30: "15d"})
    assert batched == single


def test_an_occurrence_past_the_window_that_holds_the_highest_id_is_deleted_before_the_next_insert():
    # The newest occurrence row falls out of the 30-day window; a batch that first adds another key's occurrence,
    # then one of that key, must number the new rows as the object-by-object DELETE-then-INSERT does.
    bodies = [
        {"attributes": [{"external_id": "u1"}, {"external_id": "u2"}]},
        {"events": [{"external_id": "u1", "name": "Viewed", "time": "2025-12-02T00:00:00Z"}]},
        {"events": [{"external_id": "u2", "name": "Viewed", "time": "2026-01-03T00:00:00Z"},
                    {"external_id": "u1", "name": "Viewed", "time": "2026-01-03T00:00:00Z"},
                    {"external_id": "u1", "name": "Viewed", "time": "2026-01-03T00:00:00Z"}]},
    ]
    batched, single = both(bodies, moves={2: "3d"})
    assert [row[1] for row in single["braze_occurrences"]] == [2, 3, 4]  # id 1 was deleted, then not reused
    assert batched == single


def test_a_batch_of_new_and_known_profiles_with_every_write():
    bodies = [{"attributes": [{"external_id": f"u{i}", "email": f"U{i}@x.com", "plan": "free"} for i in range(20)]}]
    bodies.append({
        "attributes": [{"external_id": f"u{i}", "email": f"u{i}@x.com" if i % 2 else f"U{i}@x.com",
                        "points": {"inc": 1}} for i in range(30)],
        "events": [{"external_id": f"u{i % 25}", "name": "Viewed", "time": "2025-12-30T10:00:00Z"}
                   for i in range(40)],
        "purchases": [{"external_id": f"u{i % 7}", "product_id": "p", "currency": "USD", "price": 0.1,
                       "quantity": 3, "time": "2025-12-30T10:00:00Z"} for i in range(20)],
    })
    batched, single = both(bodies)
    assert batched == single

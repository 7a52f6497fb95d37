"""Randomized differential testing of our Segment -> Braze destinations against Segment's REAL package.

A seeded generator builds Segment events far wilder than the curated cases of scripts/gen_oracle_cases.py (nested
traits and properties with unicode, integer-like and case-twin keys, numbers of every magnitude, big ints, odd
identity combos, odd timestamps, products with odd fields, Engage audience messages), for `braze` (classic and
current preset sets) and `braze-cohorts`, single events and batches (<= 75 events: the oracle runs one
performBatch, as Segment does for one batch). Each chunk runs through the oracle (Segment's
`@segment/action-destinations`) and through our code, planned and compared as tests/destinations/test_oracle_cases.py
does; every disagreement is printed on one line (case number, the case's summary, what differs).

    python scripts/fuzz_oracle.py --oracle /tmp/oracle [--seed 1] [--cases 3000] [--dump /tmp/fuzz-diffs.json]

Same seed, same cases: `--only N` reruns case N and prints it in full (event(s), Segment's answer, ours).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import gen_oracle_cases as gen  # noqa: E402
from emulator.segment.destinations import braze_cloud  # noqa: E402
from tests.destinations.test_braze_fixtures import ENDPOINT, _as_sent, _plan  # noqa: E402

# -- value pools --------------------------------------------------------------------------------------------------

KEYS = ["plan", "Plan", "PLAN", "email", "Email", "EMAIL", "name", "Name", "10", "01", "2", "0", "-1", "1.5",
        "4294967294", "4294967295", "9007199254740993", "", " ", "ünï", "Ünï", "日本", "emoji😀", "a.b", "$x", "[0]",
        "with space", "__proto__", "constructor", "toString", "hasOwnProperty", "length", "products", "properties",
        "external_id", "firstName", "lastName", "avatar", "price", "quantity", "currency", "product_id", "time",
        "user_alias", "braze_id", "custom_attributes", "gender", "phone", "birthday", "address", "ltv", "score"]
DATES = ["2026-11-20T10:00:00.000Z", "2026-11-20T10:00:00Z", "2026-11-20T10:00:00.123456789Z",
         "2026-11-20t10:00:00z", "2026-11-20T10:00:00+0200", "2026-11-20T10:00:00+02", "2026-11-20T10:00:00-00:00",
         "2026-11-20T10:00", "2026-11-20T10", "2026-11-20 10:00:00", "2026-11-20", "2026-11", "2026", "20261120",
         "2026/11/20", "11/20/2026", "2026-11-20T10:00:00.000Z ", " 2026-11-20", "2026-11-31T00:00:00Z",
         "2026-02-29T00:00:00Z", "2024-02-29", "2026-00-10", "2026-11-00T00:00:00Z", "2026-11-20T23:59:60Z",
         "2026-11-20T24:00:00Z", "+002026-11-20T10:00:00Z", "-000001-01-01T00:00:00Z", "+275760-09-13T00:00:00Z",
         "+275760-09-13T00:00:00.001Z", "9999-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z", "0050-01-01",
         "1970-01-01T00:00:00Z", "1969-12-31", "Fri, 20 Nov 2026 10:00:00 GMT", "Fri, 20 Nov 2026 10:00:00 +0200",
         "20 Nov 2026", "Nov 20, 2026", "November 20, 2026 10:00", "Friday", "now", "today", "1", "0", "-1",
         "1795000000000", "1795000000", "1795000000.5", "17950000000000", "2026-11-20T10:00:00.5+05:30",
         "2026-11-20T10:00:00,5Z", "2026-11-20T10:00:00.Z", "2026-11-20T10:00:00.000+24:00", "2026-W47-5",
         "2026-324", "T10:00", "10:00", "", " ", "null", "undefined", "Invalid Date", "2026-1-2", "2026-01-2T3:04:05",
         "2026-11-20T10:00:00.000000Z", "2026-11-20T10:00:00Z[UTC]", 1795000000000, 1795000000, 0, -1, 1.5, 8.64e15,
         8.64e15 + 1, -8.64e15, 1e21, None, True, False, [], {}, ["2026-11-20"], [1795000000000]]
STRINGS = ["", " ", "pro", "PRO", "ünïcødé ✓", "日本語", "emoji 😀👍", "\u0000nul", "tab\tand\nnewline", "quote\"'",
           "\\back\\", "</script>", "x" * 1000, "y" * 5000, "true", "false", "True", "null", "undefined", "NaN",
           "Infinity", "-Infinity", "0", "-0", "00", "007", "1e3", "1E3", "1e21", "0x10", "0b11", "0o7", " 42 ",
           "42", "3.14", ".5", "5.", "+5", "1_000", "١٢٣", "\u00a012\u00a0", "1,5", "12abc", "9007199254740993",
           "a@b.co", "A@B.CO", "not-an-email", "https://example.com/a b", "https://example.com/ä", "http://x",
           "mailto:a@b.c", "urn:isbn:0451450523", "//x.y/z", "/relative", "a:b", "male", "F", "Woman", "o", "N",
           "prefer not to say", "USD", "usd", "EUR", "XXX", "2026-11-20T10:00:00Z", "2026-11-20", "lone \ud800",
           "\udc00 low", "pair \ud83d\ude00", "ſ@example.com", "\u212a@example.com", "a@b.c\n", "İSTANBUL",
           "\u00a0male", "MALE\u0130", "Nov 20, 2026", "20 Nov 2026 10:00 GMT+0200", "-1", "12:00 2026-11-20"]
NUMBERS = [0, 1, -1, 2, 7, 42, -42, 100, 255, 1000, 10 ** 6, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53,
           2 ** 53 + 1, 2 ** 60 + 3, -(2 ** 63), 10 ** 21, 10 ** 22 + 1, 12345678901234567890, 10 ** 30, 0.0, -0.0,
           0.1, 0.5, 1.5, -1.5, 2.5, 3.14159, 0.1 + 0.2, 1e-5, 1e-6, 1e-7, 1.5e-7, -1e-7, 5e-324, 1e16, 1e16 + 2,
           1.5e16, 1e20, 1e21, 1.5e21, -1e21, 1e100, 1.7976931348623157e308, 123456.789, 99.99, 10.0, 100.0, 1e15,
           123456789012.5, 2.0 ** 53, 2.0 ** 70, 4.35, 0.07]
BOOLS = [True, False, "true", "false", "TRUE", "yes", 1, 0, "1", "0"]


class Fuzz:
    """Seeded case builder; every random choice goes through `self.rng`."""

    def __init__(self, seed: int, proto: bool = False, only: str | None = None) -> None:
        self.rng = random.Random(seed)
        self.proto = proto
        self.only = only

    def pick(self, seq: list) -> Any:
        return seq[self.rng.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def scalar(self) -> Any:
        roll = self.rng.random()
        if roll < 0.3:
            return self.pick(STRINGS)
        if roll < 0.6:
            return self.number()
        if roll < 0.7:
            return self.pick(BOOLS)
        if roll < 0.82:
            return None
        if roll < 0.92:
            return self.pick(DATES)
        return "".join(chr(self.rng.choice([self.rng.randrange(32, 127), self.rng.randrange(0xa0, 0x2fff),
                                            self.rng.randrange(0x1f300, 0x1f64f)]))
                       for _ in range(self.rng.randrange(0, 12)))

    def number(self) -> Any:
        roll = self.rng.random()
        if roll < 0.5:
            return self.pick(NUMBERS)
        if roll < 0.7:
            return self.rng.randrange(-10 ** self.rng.randrange(1, 25), 10 ** self.rng.randrange(1, 25))
        if roll < 0.9:
            return self.rng.uniform(-1, 1) * 10 ** self.rng.randrange(-12, 25)
        return float(self.rng.randrange(-10 ** 6, 10 ** 6))

    def key(self) -> str:
        if self.chance(0.8):
            return self.pick(KEYS)
        return str(self.rng.randrange(0, 30)) if self.chance(0.5) else self.scalar_text()

    def scalar_text(self) -> str:
        value = self.pick(STRINGS)
        return value[:20]

    def value(self, depth: int = 0) -> Any:
        roll = self.rng.random()
        if depth < 3 and roll < 0.15:
            return self.obj(depth + 1)
        if depth < 3 and roll < 0.27:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(0, 5))]
        return self.scalar()

    def obj(self, depth: int = 0, n: int | None = None) -> dict:
        out: dict[str, Any] = {}
        for _ in range(self.rng.randrange(0, 7) if n is None else n):
            key = self.key()
            if key == "__proto__":
                if not self.proto:
                    continue  # JSON.parse makes it an own property; what Segment's code then does with it: --proto
                # An object value becomes the prototype at Segment (inherited fields read by its code)
                out[key] = self.pick([None, 1, True, "x", ""]) if self.chance(0.5) else self.value(max(depth, 2))
                continue
            out[key] = self.value(depth)
        return out

    def maybe(self, value: Any, p: float = 0.5) -> Any:
        return value if self.chance(p) else self.scalar()

    # ---- event parts ----
    def identity(self, event: dict) -> None:
        roll = self.rng.random()
        if roll < 0.55:
            event["userId"] = f"u{self.rng.randrange(10 ** 4)}"
        elif roll < 0.7:
            event["userId"] = self.pick(["", None, 0, 42, 1e21, True, False, ["u1"], [], {"id": 1}, "ünï", " ",
                                         "x" * 600, -0.0, 2 ** 60 + 1, [None], ["u1", "u2"]])
        if self.chance(0.5):
            event["anonymousId"] = self.pick([f"a{self.rng.randrange(100)}", "", None, 7])

    def stamp(self) -> Any:
        if self.chance(0.6):
            minute = self.rng.randrange(0, 60 * 24 * 3)
            return (f"2026-11-{20 + minute // 1440:02d}T{(minute // 60) % 24:02d}:{minute % 60:02d}:"
                    f"{self.rng.randrange(60):02d}.{self.rng.randrange(1000):03d}Z")
        return self.pick(DATES)

    def times(self, event: dict) -> None:
        for key in ("timestamp", "receivedAt"):
            if self.chance(0.92):
                event[key] = self.stamp()

    def context(self) -> dict:
        ctx: dict[str, Any] = {}
        if self.chance(0.3):
            ctx["traits"] = {k: v for k, v in (("email", self.pick([*gen.EMAILS, "c@example.com", *STRINGS[-14:]])),
                                               ("phone", self.pick(gen.PHONES)),
                                               ("braze_id", self.pick(["bz1", "", None, 5])))
                             if self.chance(0.5)}
        if self.chance(0.3):
            ctx["location"] = self.pick(gen.LOCATIONS) if self.chance(0.6) else self.obj(2)
        if self.chance(0.05):
            ctx["traits"] = self.pick([None, [], "t", 5, ["a@b.co"], {"email": {"x": 1}}])
        if self.chance(0.03):
            ctx["personas"] = self.pick([None, "p", [], {"computation_class": "audience", "computation_key": "k"}])
        if self.chance(0.1):
            ctx = self.pick([None, [], "ctx", 5]) if self.chance(0.3) else ctx
        return ctx

    def traits(self) -> Any:
        traits = self.obj(1, self.rng.randrange(0, 12))
        for key, pool in (("email", gen.EMAILS), ("gender", gen.GENDERS), ("phone", gen.PHONES),
                          ("firstName", gen.NAMES), ("lastName", gen.NAMES), ("avatar", gen.AVATARS),
                          ("birthday", gen.BIRTHDAYS), ("address", gen.ADDRESSES)):
            if self.chance(0.15):
                traits[key] = self.pick(pool) if self.chance(0.7) else self.value(1)
        if self.chance(0.1):
            traits[self.pick(gen.RESERVED_KEYS)] = self.value(1)
        if self.chance(0.05):
            return self.pick([None, [], "traits", 3, [1, {"a": 1}]])
        return traits

    def product(self) -> Any:
        if self.chance(0.05):
            return self.pick([None, "p", 5, [], ["p"], True])
        product: dict[str, Any] = {}
        fields = {"product_id": lambda: self.maybe(f"p{self.rng.randrange(100)}", 0.7),
                  "sku": lambda: self.maybe("SKU", 0.7), "name": lambda: self.maybe("Shoe", 0.7),
                  "variant": lambda: self.maybe("red", 0.7), "price": lambda: self.maybe(self.number(), 0.6),
                  "quantity": lambda: self.maybe(self.pick([1, 2, 3, 0, -1, 1.5, 2.0]), 0.6),
                  "currency": lambda: self.maybe(self.pick(["USD", "EUR", "usd", "XXX"]), 0.6),
                  "url": lambda: self.maybe("https://shop.example/p", 0.6),
                  "image_url": lambda: self.maybe("https://shop.example/p.png", 0.6),
                  "category": lambda: self.value(1), "brand": lambda: self.value(1)}
        for key, make in fields.items():
            if self.chance(0.75):
                product[key] = make()
        product.update(self.obj(2, self.rng.randrange(0, 3)))
        if self.proto and self.chance(0.15):
            product["__proto__"] = {k: self.maybe(v) for k, v in (("product_id", "pp"), ("price", 3), ("quantity", 2),
                                                                  ("currency", "EUR"), ("sku", "s"))
                                    if self.chance(0.6)}
        return product

    def products(self, max_n: int = 6) -> Any:
        if self.chance(0.08):
            return self.pick([None, {}, "p", 3, {"product_id": "p", "price": 1}, []])
        return [self.product() for _ in range(self.rng.randrange(0, max_n))]

    def order_properties(self, max_products: int = 6) -> dict:
        props = self.obj(1, self.rng.randrange(0, 5))
        pool = {"order_id": lambda: self.maybe(f"o{self.rng.randrange(10 ** 5)}", 0.7),
                "checkout_id": lambda: self.maybe("ch1", 0.7), "total": lambda: self.maybe(self.number(), 0.6),
                "revenue": self.number, "discount": lambda: self.maybe(self.number(), 0.6),
                "currency": lambda: self.maybe(self.pick(["EUR", "USD", "usd", "XXX", ""]), 0.7),
                "source": lambda: self.maybe("web", 0.7), "cart_id": lambda: self.maybe("cart-1", 0.6),
                "reason": lambda: self.maybe("changed mind", 0.6),
                "order_status_url": lambda: self.maybe("https://shop.example/o", 0.6),
                "checkout_url": lambda: self.maybe("https://shop.example/c", 0.6),
                "discount_items": lambda: [{"code": self.maybe("SAVE"), "amount": self.maybe(2.5)}
                                           for _ in range(self.rng.randrange(0, 3))] if self.chance(0.8)
                else self.value(1),
                "braze_id": lambda: self.pick(["bz", "", None, 5]), "email": lambda: self.pick(gen.EMAILS),
                "phone": lambda: self.pick(gen.PHONES), "metadata": lambda: self.value(1)}
        for key, make in pool.items():
            if self.chance(0.7 if key not in ("braze_id", "email", "phone", "metadata") else 0.12):
                props[key] = make()
        props["products"] = self.products(max_products)
        if self.chance(0.05):
            del props["products"]
        return props

    def base_event(self, type_: str, **fields: Any) -> dict:
        event: dict[str, Any] = {"type": type_}
        self.identity(event)
        self.times(event)
        if self.chance(0.85):
            event["context"] = self.context()
        event.update(fields)
        return event

    # ---- braze events per preset ----
    def identify(self) -> dict:
        event = self.base_event("identify")
        if self.chance(0.95):
            event["traits"] = self.traits()
        if self.chance(0.05):
            event["properties"] = {"braze_id": self.pick(["bz", "", None, 3])}
        return event

    def track(self, preset_set: str) -> dict:
        excluded = {"Order Completed"} if preset_set == "classic" else braze_cloud_excluded()
        name = self.pick(["Clicked", "Signed Up", "ünï ✓", "", " ", "a" * 300, "Product Added", "order completed",
                          "Checkout Started", "Product Viewed", "Order Refunded", "Audience Entered"])
        if name in excluded:
            name = "Clicked"
        event = self.base_event("track", event=name)
        if self.chance(0.03):
            event.pop("event")
        if self.chance(0.9):
            event["properties"] = self.obj(1, self.rng.randrange(0, 10)) if self.chance(0.95) else self.value(1)
        return event

    def order(self, name: str = "Order Completed", max_products: int = 6) -> dict:
        event = self.base_event("track", event=name, properties=self.order_properties(max_products))
        if self.chance(0.1):
            event["traits"] = {"email": self.pick(gen.EMAILS)}
        return event

    def viewed(self) -> dict:
        props = self.obj(1, self.rng.randrange(0, 3))
        product = self.product()
        if isinstance(product, dict):
            props.update(product)
        for key, make in (("source", lambda: self.maybe("app", 0.8)),
                          ("currency", lambda: self.maybe(self.pick(["USD", "EUR", "usd"]), 0.8))):
            if self.chance(0.85):
                props[key] = make()
        return self.base_event("track", event="Product Viewed", properties=props)

    # ---- cases ----
    def braze_case(self, n: int) -> dict:
        preset_set = self.pick(["classic", "current"])
        roll = self.rng.random()
        if roll < 0.3:
            make, preset = self.identify, "Identify Calls"
        elif roll < 0.55:
            make, preset = (lambda: self.track(preset_set)), "Track Calls"
        elif preset_set == "classic":
            make, preset = self.order, "Order Completed Calls"
        elif roll < 0.85:
            name, preset = self.pick([("Order Completed", "Order Placed (beta)"),
                                      ("Checkout Started", "Checkout Started (beta)"),
                                      ("Order Refunded", "Order Refunded (beta)"),
                                      ("Order Cancelled", "Order Cancelled (beta)")])
            make = lambda: self.order(name)  # noqa: E731
        else:
            make, preset = self.viewed, "Product Viewed (beta)"
        batch = self.chance(0.35)
        size = self.rng.randrange(2, 76 if self.chance(0.15) else 9) if batch else 1
        if preset == "Order Completed Calls" and batch:
            events = [self.order(max_products=3) for _ in range(size)]
        else:
            events = [make() for _ in range(size)]
        settings = dict(gen.BRAZE_SETTINGS)
        if self.chance(0.1):
            settings.pop("app_id") if self.chance(0.5) else settings.update(app_id=self.pick(["", "app-ü", 5]))
        update_only = self.chance(0.1)
        classic_purchase = preset == "Order Completed Calls"
        oracle: dict[str, Any] = {"action": "trackPurchase"} if classic_purchase else {"preset": preset}
        overrides: dict[str, Any] = {}
        if update_only:
            overrides = {"update_existing_only": True}
            oracle["mapping"] = ({"__segment_internal_sync_mode": "update"} if preset.endswith("(beta)")
                                 else {"_update_existing_only": True})
        case = {"description": f"fuzz {n} braze {preset_set} {preset} x{size}", "destination": "braze",
                "preset_or_action": preset, "preset_set": preset_set, "settings": settings,
                "mapping_overrides": overrides, "oracle": oracle}
        case["events" if batch else "event"] = events if batch else events[0]
        return case

    def cohort_case(self, n: int) -> dict:
        key = self.pick(["dormant_shopper", "ünï_aud", "k", "10", "toString", "constructor", "__proto__", "0"]
                        if self.proto else ["dormant_shopper", "ünï_aud", "k", "10"])
        personas = {"computation_class": self.pick(["audience", "computed_trait", None]),
                    "computation_id": self.pick(["aud_1", "aud_2", "", 5]) if self.chance(0.2) else "aud_1",
                    "computation_key": key if self.chance(0.95) else self.pick(["other", "", None]),
                    "namespace": "spa_sandbox", "space_id": "spa_sandbox"}
        if self.chance(0.05):
            personas.pop(self.pick(["computation_id", "computation_key"]))
        identify_mode = self.chance(0.2)
        batch = self.chance(0.6)
        size = self.rng.randrange(2, 76 if self.chance(0.2) else 12) if batch else 1
        users = [f"c{i}" for i in range(self.rng.randrange(1, max(2, size)))]
        devices = [f"d{i}" for i in range(3)]
        use_device = self.chance(0.3)
        use_alias = self.chance(0.2)
        events = []
        for _ in range(size):
            member = self.pick([True, False, True, False, "true", 1, 0, None, "", "false", [], {}])
            membership = {key: member} if self.chance(0.95) else {}
            if self.proto and self.chance(0.3):
                membership = {"__proto__": self.pick([membership, None, 5, [True], {"x": 1}])}
            if self.chance(0.2):
                membership.update(self.obj(2, 2))
            event: dict[str, Any] = {"type": "identify" if identify_mode else "track"}
            roll = self.rng.random()
            if roll < 0.75:
                event["userId"] = self.pick(users)
            elif roll < 0.85:
                event["userId"] = self.pick(["", None, 42, True, ["x"]])
            if self.chance(0.4):
                event["anonymousId"] = f"a{self.rng.randrange(5)}"
            if self.chance(0.93):
                event["timestamp"] = self.stamp() if self.chance(0.85) else self.pick(DATES)
            ctx: dict[str, Any] = {"personas": dict(personas)}
            if use_device and self.chance(0.8):
                ctx["device"] = {"id": self.pick(devices) if self.chance(0.9) else self.pick(["", None, 7])}
            event["context"] = ctx
            if identify_mode:
                event["traits"] = membership if self.chance(0.95) else self.pick([None, [], "t", [membership]])
            else:
                event["event"] = "Audience Entered" if member is True else "Audience Exited"
                if self.chance(0.93):
                    props = {"audience_key": key, **membership}
                    if use_alias and self.chance(0.8):
                        props["alias_name"] = self.pick(["a@example.com", "b@example.com", "", None, 5])
                    event["properties"] = props if self.chance(0.95) else self.pick([None, [], "p", [props]])
                if self.chance(0.05):
                    event["traits"] = membership
            events.append(event)
        mapping: dict[str, Any] = {}
        if use_device:
            mapping["device_id"] = {"@path": "$.context.device.id"}
        if use_alias:
            mapping["user_alias"] = {"@if": {"exists": {"@path": "$.properties.alias_name"},
                                             "then": {"alias_name": {"@path": "$.properties.alias_name"},
                                                      "alias_label": "email"}}}
        oracle: dict[str, Any] = {"action": "syncAudiences", "mapping": {"personas_audience_key": key, **mapping}}
        overrides: dict[str, Any] = {"personas_audience_key": key}
        if mapping:
            overrides["mapping"] = mapping
        if self.chance(0.2):
            oracle["env"] = {"BRAZE_COHORTS_PARTNER_API_KEY_US": gen.PARTNER_KEY}
            overrides["partner_api_key"] = gen.PARTNER_KEY
        case = {"description": f"fuzz {n} cohorts {'identify' if identify_mode else 'track'} x{size}",
                "destination": "braze-cohorts", "preset_or_action": "Sync Audience", "preset_set": "classic",
                "settings": dict(gen.COHORT_SETTINGS), "mapping_overrides": overrides, "oracle": oracle}
        case["events" if batch else "event"] = events if batch else events[0]
        return case

    def case(self, n: int) -> dict:
        cohorts = self.chance(0.25) if self.only is None else self.only == "braze-cohorts"
        return self.cohort_case(n) if cohorts else self.braze_case(n)


def braze_cloud_excluded() -> set[str]:
    return {"Order Completed", "Checkout Started", "Order Refunded", "Order Cancelled", "Product Viewed"}


def _roundtrip(value: Any) -> Any:
    """What the oracle gets is JSON: the same for our side (a tuple would be a list there, and so on)."""
    return json.loads(json.dumps(value))


# -- comparing ----------------------------------------------------------------------------------------------------

def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                       and not isinstance(a, bool) and not isinstance(b, bool)):
        return f"{path or '/'}: ours {_short(a)} vs segment {_short(b)}"
    if isinstance(a, dict):
        if list(a) != list(b):
            if set(a) == set(b):
                return f"{path or '/'}: key order ours {list(a)[:8]} vs segment {list(b)[:8]}"
            return (f"{path or '/'}: keys only ours {sorted(set(a) - set(b))[:6]}, only segment "
                    f"{sorted(set(b) - set(a))[:6]}")
        for key in a:
            diff = _first_difference(a[key], b[key], f"{path}/{key}")
            if diff:
                return diff
        return ""
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path or '/'}: length ours {len(a)} vs segment {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            diff = _first_difference(x, y, f"{path}/{i}")
            if diff:
                return diff
        return ""
    if json.dumps(a) != json.dumps(b):
        return f"{path or '/'}: ours {_short(a)} vs segment {_short(b)}"
    return ""


def _short(value: Any, limit: int = 90) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def _text_diff(ours: str, theirs: str) -> str:
    """Where two messages part: the common start shortened, then both tails."""
    i = 0
    while i < min(len(ours), len(theirs)) and ours[i] == theirs[i]:
        i += 1
    start = max(0, i - 40)
    return f"…{ours[start:start + 160]!r} vs segment …{theirs[start:start + 160]!r}"


def compare(case: dict) -> list[str]:
    """What differs between our plan for `case` and Segment's recorded answer (empty when nothing does)."""
    events = case["events"] if "events" in case else [case["event"]]
    problems: list[str] = []
    if case["destination"] == "braze":
        routed = [[p.name for p in braze_cloud.match_presets(e, case["preset_set"])] for e in events]
        if any(r != [case["preset_or_action"]] for r in routed):
            return [f"routing: ours {routed[:3]}"]
    try:
        plan = _plan(case, events)
    except AssertionError as error:
        return [f"planning assertion: {error}"]
    except Exception as error:  # noqa: BLE001 - any crash of ours is a finding
        return [f"crash: {type(error).__name__}: {error}"]
    sent = [_as_sent(r) for r in plan.requests]
    expected = [{k: r[k] for k in ("method", "path", "headers", "body")} for r in case["requests"]]
    if len(sent) != len(expected):
        problems.append(f"requests: ours {len(sent)} ({[s['path'] for s in sent]}) vs segment {len(expected)} "
                        f"({[e['path'] for e in expected]})")
    for i, (ours, theirs) in enumerate(zip(sent, expected)):
        diff = _first_difference(ours, theirs, f"req{i}")
        if diff:
            problems.append(diff)
        elif plan.requests[i].url != ENDPOINT + theirs["path"]:
            problems.append(f"req{i} url {plan.requests[i].url}")
    refusals = {i: (r.status, r.code, r.message) for i, r in plan.refusals.items()}
    if case["outcome"] == "error":
        want = (case.get("error_status", 400), case["error"])
        got = {i: (s, m) for i, (s, _, m) in refusals.items()}
        if set(got) == set(range(len(events))) and all(g[0] == want[0] for g in got.values()) and \
                len({g[1] for g in got.values()}) == 1 and got[0][1] != want[1]:
            problems.append(f"refusal message: ours {_text_diff(got[0][1], want[1])}")
        elif got != {i: want for i in range(len(events))}:
            problems.append(f"refusal: ours {_short(got, 200)} vs segment all {_short(want, 200)}")
    elif "event" in case and refusals:
        problems.append(f"refusal: ours {_short(refusals, 200)} vs segment sent")
    for index, result in enumerate(case.get("per_event_results", [])):
        if result["status"] >= 400:
            mine = refusals.get(index)
            want = (result["status"], result.get("errortype", mine[1] if mine else None), result["errormessage"])
            if mine != want:
                if mine and mine[:2] == want[:2] and mine[2] and want[2]:
                    problems.append(f"event {index} message: ours {_text_diff(mine[2], want[2])}")
                else:
                    problems.append(f"event {index}: ours {_short(mine, 160)} vs segment {_short(want, 160)}")
        elif index in refusals:
            problems.append(f"event {index}: ours refused {_short(refusals[index], 160)} vs segment {result['status']}")
    return problems


# -- Braze's answers: what Segment records per event when Braze answers something else than 201 success ------------

ANSWERS: dict[int, tuple[int, bytes]] = {}  # case number -> what the endpoint /a/<n>/... answers


class _Answering(gen._Created):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        parts = self.path.split("/")
        status, body = ANSWERS.get(int(parts[2]), (201, b'{"message":"success"}')) if parts[1:2] == ["a"] \
            else (201, b'{"message":"success"}')
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve_answers() -> tuple[Any, str]:
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def answer_for(fuzz: Fuzz, case: dict) -> tuple[int, Any]:
    """A random answer from Braze: success with per-object errors (indexes in and out of range, odd types), or an
    error status with a message and errors."""
    n = len(case.get("events") or [1]) + 2
    errors = [{"type": fuzz.pick(["'external_id' is not valid", "bad", "", None, 5]),
               "input_array": fuzz.pick(["events", "purchases", "attributes"]),
               "index": fuzz.pick([fuzz.rng.randrange(n), fuzz.rng.randrange(n), -1, "0", None, 1.0])}
              for _ in range(fuzz.rng.randrange(0, 4))]
    roll = fuzz.rng.random()
    if roll < 0.45:
        return 201, {"message": "success", "errors": errors}
    if roll < 0.5:
        return 201, {"message": "success", "errors": fuzz.pick([None, "x", {}, [1, "a"]])}
    status = fuzz.pick([400, 400, 401, 403, 404, 413, 429, 500, 502, 503])
    body: dict[str, Any] = {"message": fuzz.pick(["Valid data must be provided", "Invalid API Key", "", "ünï"])}
    if fuzz.chance(0.2):
        body.pop("message")
    if fuzz.chance(0.6):
        body["errors"] = errors
    return status, body


def compare_outcomes(case: dict, status: int, body: Any) -> list[str]:
    """Per-event outcomes once Braze answered (status, body): ours (refusals, then read_response of each request)
    against Segment's (perform's error or success, performBatch's multistatus, or the batch's throw)."""
    from emulator.segment.destinations import braze_cohorts

    events = case["events"] if "events" in case else [case["event"]]
    plan = _plan(case, events)
    reader = braze_cloud.read_response if case["destination"] == "braze" else braze_cohorts.read_response
    ours: dict[int, tuple] = {i: (r.status, r.code, r.message) for i, r in plan.refusals.items()}
    replaceable = {i for i, r in plan.refusals.items() if r.status != 429}  # the outbox defers these
    sent = []
    for request in plan.requests:
        sent.append(_as_sent(request))
        for outcome in reader(request, status, body):
            # an answer naming a refused event of the batch replaces its refusal (as the outbox settles it)
            if outcome.index in replaceable or outcome.index not in ours or ours[outcome.index][0] < 300:
                ours[outcome.index] = (outcome.status, outcome.code, outcome.message)
                replaceable.discard(outcome.index)
        if not 200 <= status < 300 and case["destination"] == "braze-cohorts":
            break  # the outbox stops a cohort group at its first failed call (Segment's call throws)
    for i in plan.skipped:
        ours.setdefault(i, (200, None, None))
    problems = []
    expected = [{k: r[k] for k in ("method", "path", "headers", "body")} for r in case["requests"]]
    if sent != expected:
        problems.append(f"requests: ours {[r['path'] for r in sent]} vs segment {[r['path'] for r in expected]}: "
                        + (_first_difference(sent, expected) if len(sent) == len(expected) else ""))
    if "event" in case:
        if case["outcome"] == "error":
            want = (case.get("error_status", 400), case["error"])
            got = ours.get(0)
            if not got or (got[0], got[2]) != want:
                problems.append(f"single: ours {got} vs segment {want}")
        elif ours.get(0) and ours[0][0] >= 300:
            problems.append(f"single: ours {ours[0]} vs segment success")
        return problems
    if case["outcome"] == "error":
        want = (case.get("error_status", 400), case["error"])
        got = {i: (o[0], o[2]) for i, o in ours.items()}
        if got != {i: want for i in range(len(events))}:
            problems.append(f"batch threw: ours {_short(got, 300)} vs segment all {want}")
        return problems
    for i, result in enumerate(case.get("per_event_results", [])):
        mine = ours.get(i)
        if result["status"] >= 300:
            want = (result["status"], result.get("errortype", mine[1] if mine else None), result.get("errormessage"))
            if mine != want:
                problems.append(f"event {i}: ours {mine} vs segment {want}")
        elif mine is None or mine[0] >= 300:
            problems.append(f"event {i}: ours {mine} vs segment {result['status']}")
    return problems


# -- JavaScript values directly: Date, dayjs, Number, String ------------------------------------------------------

_VALUES_JS = r"""
const dayjs = require('dayjs')
const items = JSON.parse(require('fs').readFileSync(0, 'utf8'))
const t = (d) => { const v = d.valueOf(); return Number.isNaN(v) ? null : v }
process.stdout.write(JSON.stringify(items.map((x) => [t(new Date(x)), t(dayjs(x)), Number(x), String(Number(x))])))
"""


def date_strings(fuzz: Fuzz, count: int) -> list[str]:
    """Date-ish strings: pieces of dates, times, zones, words and separators glued at random."""
    pieces = ["2026", "26", "1999", "0001", "+002026", "-000001", "275760", "11", "1", "02", "31", "30", "00", "24",
              "60", "12", "59", "999", "1234", "5", "123456789", "1795000000000", "Nov", "november", "Jan", "may",
              "DEC", "Fri", "Friday", "am", "PM", "UTC", "GMT", "Z", "z", "T", "t", "EST", "pdt", "ut", "abc", "(x)",
              "(a(b)c)", "-", "+", ":", ".", ",", "/", " ", "  ", "\u00a0", "\t", ")", "\u3000", "é", "١٢"]
    out = []
    for _ in range(count):
        if fuzz.chance(0.3):
            out.append(fuzz.pick([d for d in DATES if isinstance(d, str)]))
            continue
        text = "".join(fuzz.pick(pieces) for _ in range(fuzz.rng.randrange(1, 9)))
        out.append(text.encode().decode("unicode_escape") if "\\u" in text or "\\t" in text else text)
    return out


def run_values(oracle_dir: Path, seed: int, count: int) -> int:
    import subprocess

    from emulator.segment.destinations.jsvalues import date_ms, dayjs_ms, number_string, to_number

    fuzz = Fuzz(seed)
    texts = date_strings(fuzz, count) + [fuzz.pick(STRINGS) for _ in range(count // 10)]
    done = subprocess.run(["node", "-e", _VALUES_JS], cwd=oracle_dir, input=json.dumps(texts), capture_output=True,
                          text=True, check=True)
    bad = 0
    for text, (date, day, _, number_text) in zip(texts, json.loads(done.stdout)):
        ours = [date_ms(text), dayjs_ms(text)]
        mine_number = to_number(text)
        if ours != [date, day] or number_string(mine_number) != number_text:
            bad += 1
            print(f"{text!r}: Date/dayjs/Number ours {ours + [number_string(mine_number)]} vs node "
                  f"{[date, day, number_text]}")
    print(f"{len(texts)} strings, {bad} disagreements (Date, dayjs, Number)", file=sys.stderr)
    return 1 if bad else 0


_STRINGIFY_JS = r"""
const items = JSON.parse(require('fs').readFileSync(0, 'utf8'))
process.stdout.write(JSON.stringify(items.map((x) => JSON.stringify(JSON.parse(x)))))
"""


def check_texts(oracle_dir: Path, bodies: list[Any]) -> int:
    """json_text (what the transport sends) against Node's JSON.stringify of the same JSON values: byte for byte."""
    import subprocess

    from emulator.segment.destinations.jsvalues import json_text

    # The values travel as Python's JSON (ASCII, exact ints): Node reads them as JSON.parse reads an event.
    texts = [json.dumps(b) for b in bodies]
    done = subprocess.run(["node", "-e", _STRINGIFY_JS], cwd=oracle_dir, input=json.dumps(texts),
                          capture_output=True, text=True, check=True)
    from emulator.segment.destinations import transport

    bad = sent_bad = 0
    for body, theirs in zip(bodies, json.loads(done.stdout)):
        ours = json_text(body)
        if ours != theirs:
            bad += 1
            print(f"json_text: ours …{_text_diff(ours, theirs)}")
        try:  # what transport.py (not this script's to fix) actually sends
            sent = transport._encode_json(body).decode("utf-8")
        except Exception as error:  # noqa: BLE001
            sent = f"<{type(error).__name__}: {error}>"
        if sent != theirs:
            sent_bad += 1
            print(f"transport._encode_json: …{_text_diff(sent, theirs)}")
    print(f"{len(bodies)} request bodies: json_text differs from JSON.stringify for {bad}, "
          f"transport._encode_json for {sent_bad}", file=sys.stderr)
    return bad


# -- main ---------------------------------------------------------------------------------------------------------

def run(oracle_dir: Path, seed: int, count: int, chunk: int, only: int | None, dump: Path | None,
        proto: bool = False, destination: str | None = None, answers: bool = False, text: bool = False) -> int:
    fuzz = Fuzz(seed, proto, destination)
    cases = [_roundtrip(fuzz.case(n)) for n in range(count)]
    if answers:
        for n, case in enumerate(cases):
            status, body = answer_for(fuzz, case)
            case["answer"] = {"status": status, "body": body}
            ANSWERS[n] = (status, json.dumps(body).encode())
    if only is not None:
        cases = [cases[only]]
    server, endpoint = _serve_answers()
    found: list[dict] = []
    texts: list | None = [] if text else None
    started = time.monotonic()
    try:
        for start in range(0, len(cases), chunk):
            part = cases[start:start + chunk]
            first = start if only is None else only
            results = gen.run_oracle(oracle_dir, part, endpoint,
                                     endpoint_for=lambda _case, i: f"{endpoint}/a/{first + i}")
            for n, (case, result) in enumerate(zip(part, results), first):
                recorded = gen.record(case, result, f"{endpoint}/a/{n}")
                if texts is not None and case["destination"] == "braze":
                    events = case["events"] if "events" in case else [case["event"]]
                    texts.extend(r.body for r in _plan(recorded, events).requests)
                if answers:
                    problems = compare_outcomes(recorded, case["answer"]["status"], case["answer"]["body"])
                else:
                    problems = compare(recorded)
                if only is not None:
                    print(json.dumps(recorded, indent=1, ensure_ascii=False)[:20000])
                if problems:
                    found.append({**recorded, "problems": problems})
                    print(f"[{case['description']}] " + " | ".join(problems)[:600])
    finally:
        server.shutdown()
    if texts:
        found.extend({"description": "json_text"} for _ in range(check_texts(oracle_dir, texts)))
    elapsed = time.monotonic() - started
    print(f"{len(cases)} cases, {len(found)} disagreements ({elapsed:.0f} s, seed {seed})", file=sys.stderr)
    if dump:
        dump.write_text(json.dumps(found, indent=1))  # ASCII: lone surrogates too
    return 1 if found else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--oracle", type=Path, default=gen.DEFAULT_ORACLE, help="the oracle directory (npm-installed)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--chunk", type=int, default=250, help="cases per oracle run")
    parser.add_argument("--only", type=int, help="rerun case N of this seed and print it in full")
    parser.add_argument("--dump", type=Path, help="write the disagreeing cases (with Segment's answers) here")
    parser.add_argument("--proto", action="store_true", help="also generate `__proto__` keys (JSON.parse: own keys)")
    parser.add_argument("--destination", choices=["braze", "braze-cohorts"], help="only this destination's cases")
    parser.add_argument("--answers", action="store_true",
                        help="Braze answers at random (per-object errors, error statuses): compare per-event outcomes")
    parser.add_argument("--texts", action="store_true",
                        help="also check json_text (the bytes sent) against JSON.stringify for every planned body")
    parser.add_argument("--values", type=int, metavar="N",
                        help="instead: N date-ish strings through Node's Date, dayjs and Number against jsvalues")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[attr-defined]  # lone surrogates
    gen._package_version(args.oracle)
    if args.values:
        sys.exit(run_values(args.oracle, args.seed, args.values))
    sys.exit(run(args.oracle, args.seed, args.cases, args.chunk, args.only, args.dump, args.proto, args.destination,
                 args.answers, args.texts))


if __name__ == "__main__":
    main()

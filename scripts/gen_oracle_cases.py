"""Generate fixtures/segment-braze-oracle-cases.json: many varied cases run through Segment's REAL Braze destinations.

Builds ~300 cases from a seeded random generator (same seed, same cases), runs each one through
/work/shared/tools/segment-destination-oracle (npm `@segment/action-destinations`, destinations `braze` and
`braze-cohorts`) against a local endpoint that answers 201, and writes the cases with Segment's exact requests, or
its refusal, in the format of fixtures/segment-braze-destinations.json (which tests/destinations/test_braze_fixtures.py
reads), plus:

- `preset_set`: the preset set the case belongs to ("classic" or "current"; the test checks the event is routed to
  `preset_or_action` in that set);
- `oracle`: how the oracle was invoked (`preset` or `action`, the `mapping` overrides Segment got, the environment).
  `mapping_overrides` stays what *our* destination gets merged into its settings, as in the older fixture; the two
  differ where our setting has another name (`update_existing_only` vs Segment's `_update_existing_only` field or
  "update" sync mode, `mapping` for cohort field overrides, `partner_api_key` vs Segment's environment variable);
- `error_status` next to `error`, and `per_event_results` for batches (Segment's multistatus: status, errortype,
  errormessage);
- `outcome` "error" with `events` means performBatch threw: Segment fails every event of the batch with `error`.

    cd /tmp/oracle && cp /work/shared/tools/segment-destination-oracle/{oracle.js,package.json} . \
        && npm install --no-audit --no-fund          # once (node 20)
    python scripts/gen_oracle_cases.py --oracle /tmp/oracle [--seed 20261123] [--check-existing]

`--check-existing` also re-runs the 38 cases of fixtures/segment-braze-destinations.json and checks that this
script's conversion reproduces them exactly (the evidence that both files mean the same thing).
"""
from __future__ import annotations

import argparse
import copy
import http.server
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "fixtures" / "segment-braze-oracle-cases.json"
EXISTING = ROOT / "fixtures" / "segment-braze-destinations.json"
DEFAULT_ORACLE = Path("/work/shared/tools/segment-destination-oracle")
SEED = 20261123
ENDPOINT_PLACEHOLDER = "<braze endpoint>"
BRAZE_SETTINGS = {"api_key": "sandbox-rest-key", "endpoint": ENDPOINT_PLACEHOLDER, "app_id": "app-1"}
COHORT_SETTINGS = {"client_secret": "sandbox-data-import-key", "endpoint": ENDPOINT_PLACEHOLDER}
PARTNER_KEY = "partner-key-us"  # Segment reads it from BRAZE_COHORTS_PARTNER_API_KEY_US (endpoint without "eu")

# -- a 201 endpoint ---------------------------------------------------------------------------------------------------


# A case with an `answer` ({"status", "body"}) is run against <endpoint>/a/<n>, which answers that instead of 201.
ANSWERS: dict[int, tuple[int, bytes]] = {}


class _Created(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        status, body = 201, b'{"message":"success"}'
        parts = self.path.split("/")
        if parts[1:2] == ["a"] and int(parts[2]) in ANSWERS:
            status, body = ANSWERS[int(parts[2])]
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve() -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Created)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# -- building events --------------------------------------------------------------------------------------------------

_LIB = {"library": {"name": "analytics-python", "version": "2.4.0"}}


class Gen:
    """Deterministic case builder: every random choice goes through `self.rng`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.cases: list[dict] = []
        self.msg = 1000

    # ---- helpers ----
    def pick(self, seq: list) -> Any:
        return seq[self.rng.randrange(len(seq))]

    def stamp(self, minute: int | None = None) -> str:
        minute = self.rng.randrange(0, 60 * 24) if minute is None else minute
        return f"2026-11-{20 + minute // 1440:02d}T{(minute // 60) % 24:02d}:{minute % 60:02d}:00.000Z"

    def event(self, type_: str, lean: bool = False, **fields: Any) -> dict:
        """A Segment message as a destination receives it; `lean` (big batches, to keep the file small) without
        the fields no Braze mapping reads (messageId, sentAt, originalTimestamp, context.library, integrations)."""
        self.msg += 1
        ts = self.stamp()
        received = ts.replace(":00.000Z", ":05.000Z")
        if lean:
            ev = {"type": type_, "timestamp": ts, "receivedAt": received, "context": {}}
        else:
            ev = {"type": type_, "messageId": f"msg-{self.msg}", "timestamp": ts, "receivedAt": received,
                  "sentAt": ts.replace(":00.000Z", ":04.000Z"), "originalTimestamp": ts,
                  "context": copy.deepcopy(_LIB), "integrations": {}}
        for key, value in fields.items():
            if value is _DROP:
                ev.pop(key, None)
            else:
                ev[key] = value
        return ev

    def add(self, description: str, destination: str, preset: str, preset_set: str, oracle: dict,
            settings: dict, mapping_overrides: dict | None = None, event: dict | None = None,
            events: list[dict] | None = None) -> None:
        case: dict[str, Any] = {
            "description": f"{len(self.cases) + 1:03d} {description}", "destination": destination,
            "preset_or_action": preset, "preset_set": preset_set, "settings": settings,
            "mapping_overrides": mapping_overrides or {}, "oracle": oracle}
        if events is not None:
            case["events"] = events
        else:
            case["event"] = event
        self.cases.append(case)

    def braze(self, description: str, preset: str, preset_set: str, evs: dict | list[dict],
              settings: dict | None = None, update_only: bool = False) -> None:
        """A case for the `braze` destination: `preset` as Segment runs it (classic Order Completed Calls = the
        trackPurchase action with its field defaults, the classic preset's mapping)."""
        classic_purchase = preset == "Order Completed Calls"
        oracle: dict[str, Any] = {"action": "trackPurchase"} if classic_purchase else {"preset": preset}
        overrides = {}
        if update_only:
            overrides = {"update_existing_only": True}
            ecommerce = preset.endswith("(beta)")
            oracle["mapping"] = ({"__segment_internal_sync_mode": "update"} if ecommerce
                                 else {"_update_existing_only": True})
        kw = {"events": evs} if isinstance(evs, list) else {"event": evs}
        self.add(description, "braze", preset, preset_set, oracle, settings or dict(BRAZE_SETTINGS), overrides, **kw)

    # ---- value pools ----
    def scalar(self) -> Any:
        return self.pick([
            "pro", "", None, 0, 1, -7, 3.25, 0.1, 1e21, True, False, "42", "3.14", "true", "null", " ",
            "2026-01-02", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05.678+02:00", "ünïcødé ✓", "日本語",
            "x" * 300, "line\nbreak", "quote\"s", "<b>html</b>", "1e3", "-0", 2 ** 40, -1.5e-7])

    def value(self, depth: int = 0) -> Any:
        roll = self.rng.random()
        if depth < 2 and roll < 0.15:
            return {self.key(): self.value(depth + 1) for _ in range(self.rng.randrange(0, 4))}
        if depth < 2 and roll < 0.28:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(0, 4))]
        return self.scalar()

    def key(self) -> str:
        return self.pick(["plan", "seats", "score", "is_vip", "tags", "prefs", "company", "created_at", "ltv",
                          "last_seen", "nickname", "a.b", "$weird", "with space", "10", "2", "0", "01", "b",
                          "Ünï", "emptyObj", "emptyArr", "nested", "list"])

    def traits(self, n: int) -> dict:
        traits: dict[str, Any] = {}
        for _ in range(n):
            traits[self.key()] = self.value()
        return traits


class _Drop:
    pass


_DROP = _Drop()

# -- reserved / special trait shapes ---------------------------------------------------------------------------------

GENDERS = ["Male", "m", "man", "WOMAN", "female", "w", "F", "Other", "o", "Not Applicable", "n", "Prefer Not To Say",
           "p", "nonbinary", "", None, 1, True, ["male"], {"g": "m"}, " male"]
EMAILS = ["ana@example.com", "ANA@Example.COM", "", None, "not-an-email", 12345, ["a@b.c"], "a+tag@b.co", " ",
          "ünï@example.com"]
PHONES = ["+351911111111", "911 111 111", "", None, 351911111111, ["+1555"], [5], True, "(555) 010-0000"]
NAMES = ["Ana", "", None, "José", 7, ["A"], "O'Brien", "  padded  ", True]
AVATARS = ["https://example.com/a.png", "not a url", "", None, "ftp://x.y/z", "//example.com/a.png", 5,
           "https://example.com/ä ö.png", ["https://example.com/a.png"], "mailto:a@b.c"]
BIRTHDAYS = ["1990-05-17", "1990-05-17T00:00:00Z", "17/05/1990", "", None, 643939200000, "May 17, 1990",
             "1990-05-17T23:30:00-05:00"]
ADDRESSES = [{"city": "Lisbon", "country": "PT", "street": "Rua A", "postal_code": "1000-001"}, {"city": ""},
             {"city": None}, {"city": 12}, {}, None, "Lisbon", ["Lisbon"], {"city": ["Lisbon"]},
             {"city": {"name": "Lisbon"}}, {"state": "CA"}]
LOCATIONS = [{"country": "Portugal", "latitude": 38.7, "longitude": -9.1},
             {"country": "", "latitude": 0, "longitude": 0},
             {"latitude": "38.7", "longitude": "-9.1"}, {"country": None}, {"latitude": 38.7}, {},
             {"country": ["PT"]}, {"latitude": None, "longitude": None, "country": "US"}, {"city": "SF"},
             {"latitude": "north", "longitude": 1}]
ODD_DATES = ["1795000000000", "2026-02-30T10:00:00Z", "2026-02-29", "2026-13-01T00:00:00Z", "2026-11-20T24:00:00Z",
             "2026-11-20T10:00:00", " 2026-11-20T10:00:00Z", "0001-01-01T00:00:00Z", "0099-06-01T00:00:00Z",
             "1969-12-31T23:59:59.999Z", "+010000-01-01T00:00:00Z", "2026-11-20T10:00:00.1Z", "20261120",
             "2026-W47", "2026-11-20T10:00Z"]
RESERVED_KEYS = ["external_id", "user_alias", "email", "braze_id", "time", "products", "properties",
                 "_update_existing_only", "enable_batching", "batch_size", "firstName", "lastName", "avatar",
                 "first_name", "last_name", "phone", "gender", "birthday", "address", "dob", "country", "home_city",
                 "image_url", "language", "push_tokens", "email_subscribe", "custom_attributes", "current_location",
                 "product_id", "currency", "price", "quantity"]


def identify_cases(g: Gen) -> None:
    def ident(traits: dict, preset_set: str = "classic", **fields: Any) -> dict:
        return g.event("identify", userId=fields.pop("userId", f"u{g.rng.randrange(1000)}"), traits=traits, **fields)

    for gender in GENDERS:
        g.braze(f"identify gender {json.dumps(gender)}", "Identify Calls", "classic",
                ident({"gender": gender, "plan": "pro"}))
    for email in EMAILS:
        g.braze(f"identify email {json.dumps(email)}", "Identify Calls", "classic", ident({"email": email}))
    for phone in PHONES:
        g.braze(f"identify phone {json.dumps(phone)}", "Identify Calls", "classic", ident({"phone": phone}))
    for name in NAMES:
        g.braze(f"identify firstName/lastName {json.dumps(name)}", "Identify Calls", g.pick(["classic", "current"]),
                ident({"firstName": name, "lastName": g.pick(NAMES), "first_name": g.pick(NAMES)}))
    for avatar in AVATARS:
        g.braze(f"identify avatar {json.dumps(avatar)}", "Identify Calls", "classic", ident({"avatar": avatar}))
    for birthday in BIRTHDAYS:
        g.braze(f"identify birthday {json.dumps(birthday)}", "Identify Calls", "classic",
                ident({"birthday": birthday, "dob": birthday}))
    for address in ADDRESSES:
        g.braze(f"identify address {json.dumps(address)}", "Identify Calls", "classic", ident({"address": address}))
    for location in LOCATIONS:
        ev = ident({"plan": "pro"})
        ev["context"]["location"] = location
        g.braze(f"identify context.location {json.dumps(location)}", "Identify Calls", "classic", ev)
    # Every reserved key at once, then random subsets with random values.
    g.braze("identify with every reserved trait key", "Identify Calls", "classic",
            ident({k: g.value() for k in RESERVED_KEYS}))
    for i in range(6):
        keys = g.rng.sample(RESERVED_KEYS, g.rng.randrange(2, 7))
        traits = {k: g.value() for k in keys}
        traits.update(g.traits(g.rng.randrange(0, 4)))
        g.braze(f"identify reserved-key mix #{i}", "Identify Calls", g.pick(["classic", "current"]), ident(traits))
    for i in range(12):
        g.braze(f"identify random trait shapes #{i}", "Identify Calls", g.pick(["classic", "current"]),
                ident(g.traits(g.rng.randrange(0, 9))))
    # Identity variants.
    g.braze("identify anonymous with traits.email only", "Identify Calls", "classic",
            g.event("identify", anonymousId="anon-1", traits={"email": "a@example.com", "plan": "x"}))
    g.braze("identify anonymous without identifier", "Identify Calls", "classic",
            g.event("identify", anonymousId="anon-2", traits={"plan": "x"}))
    g.braze("identify with empty userId and email", "Identify Calls", "classic",
            g.event("identify", userId="", traits={"email": "e@example.com"}))
    g.braze("identify with empty userId only", "Identify Calls", "classic",
            g.event("identify", userId="", anonymousId="a", traits={"plan": "x"}))
    g.braze("identify with numeric userId", "Identify Calls", "classic", g.event("identify", userId=12345, traits={}))
    g.braze("identify with null userId and email", "Identify Calls", "classic",
            g.event("identify", userId=None, traits={"email": "n@example.com"}))
    g.braze("identify with properties.braze_id only", "Identify Calls", "classic",
            g.event("identify", anonymousId="a", properties={"braze_id": "bz-1"}, traits={"plan": "x"}))
    g.braze("identify with null traits", "Identify Calls", "classic", g.event("identify", userId="u1", traits=None))
    g.braze("identify without traits", "Identify Calls", "classic", g.event("identify", userId="u1"))
    g.braze("identify with traits as an array", "Identify Calls", "classic",
            g.event("identify", userId="u1", traits=["a", "b"]))
    g.braze("identify with boolean userId", "Identify Calls", "classic", g.event("identify", userId=True, traits={}))
    # Numbers where a string is expected: ajv coerces with JavaScript's String(), e.g. 1e21 -> "1e+21".
    for number in (1e21, 1.5e21, 123456789012345680000, -1.5e-7, 1e-7, 0.000001, 2.5, -0.0, 100.0):
        g.braze(f"identify numeric phone/gender/name {number!r}", "Identify Calls", "classic",
                ident({"phone": number, "gender": number, "firstName": number, "ltv": number}))
    # Dates: birthday stays a custom attribute; Segment's datetime fields parse with JavaScript's Date.
    g.braze("identify date-like traits (custom attributes, sent as given)", "Identify Calls", "classic",
            ident({f"d{i}": date for i, date in enumerate(ODD_DATES)}))
    g.braze("identify update-existing-only", "Identify Calls", "classic",
            ident({"email": "x@example.com", "plan": "pro"}), update_only=True)
    g.braze("identify without app_id setting", "Identify Calls", "classic", ident({"plan": "pro"}),
            settings={"api_key": "k2", "endpoint": ENDPOINT_PLACEHOLDER})
    g.braze("identify with Engage audience trait true", "Identify Calls", "classic",
            ident({"dormant_shopper": True}, context={"personas": {
                "computation_class": "audience", "computation_id": "aud_1", "computation_key": "dormant_shopper",
                "namespace": "spa_sandbox", "space_id": "spa_sandbox"}}))
    g.braze("identify with Engage computed trait", "Identify Calls", "classic",
            ident({"orders_90d": 4}, context={"personas": {
                "computation_class": "computed_trait", "computation_id": "tr_1", "computation_key": "orders_90d",
                "namespace": "spa_sandbox", "space_id": "spa_sandbox"}}))


TRACK_NAMES = ["Clicked", "Signed Up", "Product Added", "Product Removed", "Checkout Started", "Product Viewed",
               "Order Refunded", "Order Cancelled", "ünïcødé event", "a" * 200, " ", "Audience Entered",
               "Audience Exited", "Trait Computed", "order completed", "Order Completed "]
CURRENT_EXCLUDED = {"Order Completed", "Checkout Started", "Order Refunded", "Order Cancelled", "Product Viewed"}


def track_cases(g: Gen) -> None:
    def track(name: Any = "Clicked", **fields: Any) -> dict:
        fields.setdefault("userId", f"u{g.rng.randrange(1000)}")
        fields.setdefault("properties", g.traits(g.rng.randrange(0, 6)))
        return g.event("track", event=name, **fields)

    for name in TRACK_NAMES:
        preset_set = "classic" if name in CURRENT_EXCLUDED else g.pick(["classic", "current"])
        g.braze(f"track named {json.dumps(name[:40])}", "Track Calls", preset_set, track(name))
    for i in range(10):
        g.braze(f"track random property shapes #{i}", "Track Calls", g.pick(["classic", "current"]), track())
    g.braze("track with context.traits.email only", "Track Calls", "classic",
            track(userId=_DROP, anonymousId="a", context={"traits": {"email": "c@example.com"}}))
    g.braze("track with properties.email only", "Track Calls", "classic",
            track(userId=_DROP, anonymousId="a", properties={"email": "p@example.com"}))
    g.braze("track with context.traits.email null and properties.email", "Track Calls", "classic",
            track(userId=_DROP, anonymousId="a", context={"traits": {"email": None}},
                  properties={"email": "p@example.com"}))
    g.braze("track with properties.braze_id only", "Track Calls", "classic",
            track(userId=_DROP, anonymousId="a", properties={"braze_id": "bz"}))
    g.braze("track with properties.braze_id null", "Track Calls", "classic",
            track(userId="u1", properties={"braze_id": None}))
    g.braze("track without identifier", "Track Calls", "classic", track(userId=_DROP, anonymousId="a"))
    g.braze("track with empty userId", "Track Calls", "classic", track(userId=""))
    g.braze("track with empty event name", "Track Calls", "classic", track(""))
    g.braze("track without event name", "Track Calls", "classic", g.event("track", userId="u1", properties={}))
    g.braze("track without properties", "Track Calls", "classic", track(properties=_DROP))
    g.braze("track with null properties", "Track Calls", "classic", track(properties=None))
    g.braze("track with array properties", "Track Calls", "classic", track(properties=[1, 2]))
    g.braze("track with numeric userId", "Track Calls", "classic", track(userId=77))
    g.braze("track update-existing-only", "Track Calls", "current", track(), update_only=True)
    g.braze("track without app_id setting", "Track Calls", "classic", track(),
            settings={"api_key": "k2", "endpoint": ENDPOINT_PLACEHOLDER})
    g.braze("track with empty app_id setting", "Track Calls", "classic", track(),
            settings={"api_key": "k3", "endpoint": ENDPOINT_PLACEHOLDER, "app_id": ""})
    for received in ["2026-11-20T10:00:00Z", "2026-11-20T10:00:00.123456Z", "2026-11-20T12:00:00+02:00",
                     "2026-11-20", "2026-11-20 10:00:00", "Fri, 20 Nov 2026 10:00:00 GMT", "yesterday", "",
                     None, 1795000000000, *ODD_DATES]:
        g.braze(f"track receivedAt {json.dumps(received)}", "Track Calls", "classic", track(receivedAt=received))
    g.braze("track without receivedAt", "Track Calls", "classic", track(receivedAt=_DROP))


def _product(g: Gen, i: int, shape: str = "full") -> dict:
    product = {"product_id": f"p{i}", "sku": f"SKU-{i}", "name": f"Product {i}", "variant": f"v{i}",
               "price": g.pick([9.99, 10, 0, 1234.5, 0.01]), "quantity": g.pick([1, 2, 3, 10]),
               "currency": g.pick(["EUR", "USD", "GBP"]), "category": "c", "url": "https://shop.example/p",
               "image_url": "https://shop.example/p.png"}
    if shape == "minimal":
        return {"product_id": f"p{i}", "price": product["price"]}
    if shape == "odd":
        product[g.pick(["price", "quantity", "product_id", "currency", "name", "variant"])] = g.pick(
            ["10", "2", None, "", "abc", 3, True, [1], {"v": 1}, -1, 2.5])
        if g.rng.random() < 0.4:
            product.pop(g.pick(["price", "quantity", "currency", "variant", "name", "product_id"]), None)
    return product


def order_props(g: Gen, items: Any, **extra: Any) -> dict:
    props = {"order_id": f"o{g.rng.randrange(10 ** 6)}", "checkout_id": "ch1", "total": 42.5, "revenue": 40,
             "discount": 2.5, "currency": "EUR", "source": "web", "cart_id": "cart-9", "coupon": "SAVE",
             "products": items, "order_status_url": "https://shop.example/o", "checkout_url": "https://c",
             "reason": "changed mind", "discount_items": [{"code": "SAVE", "amount": 2.5}]}
    props.update(extra)
    return {k: v for k, v in props.items() if v is not _DROP}


def purchase_cases(g: Gen) -> None:
    def order(products: Any, **fields: Any) -> dict:
        fields.setdefault("userId", f"u{g.rng.randrange(1000)}")
        extra = fields.pop("extra", {})
        return g.event("track", event="Order Completed", properties=order_props(g, products, **extra), **fields)

    for n in (0, 1, 2, 5):
        g.braze(f"classic Order Completed with {n} full products", "Order Completed Calls", "classic",
                order([_product(g, i) for i in range(n)]))
    g.braze("classic Order Completed with minimal products", "Order Completed Calls", "classic",
            order([_product(g, i, "minimal") for i in range(3)]))
    for i in range(8):
        g.braze(f"classic Order Completed with odd products #{i}", "Order Completed Calls", "classic",
                order([_product(g, j, g.pick(["full", "odd", "odd", "minimal"]))
                       for j in range(g.rng.randrange(1, 4))]))
    g.braze("classic Order Completed, products not a list", "Order Completed Calls", "classic",
            order({"product_id": "p", "price": 1}))
    g.braze("classic Order Completed, products null", "Order Completed Calls", "classic", order(None))
    g.braze("classic Order Completed, products missing", "Order Completed Calls", "classic",
            order([], extra={"products": _DROP}))
    g.braze("classic Order Completed, price 10.0 written as a float", "Order Completed Calls", "classic",
            order([{"product_id": "p", "price": 10.0, "quantity": 1.0}]))
    g.braze("classic Order Completed, 80 products in one event", "Order Completed Calls", "classic",
            order([_product(g, i, "minimal") for i in range(80)]))
    g.braze("classic Order Completed with top-level traits.email and no userId", "Order Completed Calls", "classic",
            order([_product(g, 1)], userId=_DROP, anonymousId="a", traits={"email": "t@example.com"}))
    g.braze("classic Order Completed without identifier", "Order Completed Calls", "classic",
            order([_product(g, 1)], userId=_DROP, anonymousId="a"))
    g.braze("classic Order Completed update-existing-only", "Order Completed Calls", "classic",
            order([_product(g, 1)]), update_only=True)
    g.braze("classic Order Completed with properties.braze_id", "Order Completed Calls", "classic",
            order([_product(g, 1)], userId=_DROP, anonymousId="a", extra={"braze_id": "bz-7"}))


def ecommerce_cases(g: Gen) -> None:
    presets = {"Order Completed": "Order Placed (beta)", "Checkout Started": "Checkout Started (beta)",
               "Order Refunded": "Order Refunded (beta)", "Order Cancelled": "Order Cancelled (beta)"}

    def ecom(name: str, products: Any, **fields: Any) -> dict:
        fields.setdefault("userId", f"u{g.rng.randrange(1000)}")
        extra = fields.pop("extra", {})
        return g.event("track", event=name, properties=order_props(g, products, **extra), **fields)

    for name, preset in presets.items():
        g.braze(f"current {name} complete", preset, "current", ecom(name, [_product(g, i) for i in range(2)]))
        g.braze(f"current {name} with no products", preset, "current", ecom(name, []))
        g.braze(f"current {name} with minimal products", preset, "current",
                ecom(name, [_product(g, 0, "minimal")]))
        for i in range(2):
            g.braze(f"current {name} with odd products #{i}", preset, "current",
                    ecom(name, [_product(g, j, g.pick(["full", "odd"])) for j in range(g.rng.randrange(1, 3))]))
        drop = g.rng.sample(["order_id", "checkout_id", "total", "currency", "source", "reason", "discount",
                             "cart_id", "discount_items"], 3)
        g.braze(f"current {name} missing {', '.join(drop)}", preset, "current",
                ecom(name, [_product(g, 0)], extra={k: _DROP for k in drop}))
        g.braze(f"current {name} with odd currency/total", preset, "current",
                ecom(name, [_product(g, 0)], extra={"currency": g.pick(["eur", "XXX", "", 978]),
                                                     "total": g.pick(["42", None, "abc"])}))
        g.braze(f"current {name} email-only identity", preset, "current",
                ecom(name, [_product(g, 0)], userId=_DROP, anonymousId="a",
                     context={"traits": {"email": "shop@example.com"}}))
        g.braze(f"current {name} phone-only identity", preset, "current",
                ecom(name, [_product(g, 0)], userId=_DROP, anonymousId="a", extra={"phone": "+15550100"}))
        g.braze(f"current {name} update-existing-only", preset, "current", ecom(name, [_product(g, 0)]),
                update_only=True)
    g.braze("current Order Completed, invalid email and no userId", "Order Placed (beta)", "current",
            ecom("Order Completed", [_product(g, 0)], userId=_DROP, anonymousId="a", extra={"email": "nope"}))
    g.braze("current Order Completed without identifier", "Order Placed (beta)", "current",
            ecom("Order Completed", [_product(g, 0)], userId=_DROP, anonymousId="a"))
    g.braze("current Order Completed, discount_items with bad amounts", "Order Placed (beta)", "current",
            ecom("Order Completed", [_product(g, 0)], extra={"discount_items": [{"code": "A", "amount": "1"},
                                                                                 {"code": 5}, {"amount": 3}]}))
    g.braze("current Order Completed, odd timestamp", "Order Placed (beta)", "current",
            ecom("Order Completed", [_product(g, 0)], timestamp="2026-11-20T12:00:00+02:00"))
    for ts in ("soon", "2026-02-30T10:00:00Z", "0001-01-01T00:00:00Z", "2026-11-20", "1795000000000"):
        g.braze(f"current Order Completed, timestamp {json.dumps(ts)}", "Order Placed (beta)", "current",
                ecom("Order Completed", [_product(g, 0)], timestamp=ts))
    g.braze("current Order Completed, integral floats (total 42.0, price 10.0)", "Order Placed (beta)", "current",
            ecom("Order Completed", [{**_product(g, 0), "price": 10.0, "quantity": 2.0}], extra={"total": 42.0}))

    def viewed(**props: Any) -> dict:
        fields = {"userId": props.pop("userId", "u1")}
        base = {"product_id": "p1", "sku": "S1", "name": "Shoe", "variant": "red", "price": 59.9, "currency": "EUR",
                "source": "app", "url": "https://shop.example/s", "image_url": "https://shop.example/s.png",
                "category": "shoes"}
        base.update(props)
        return g.event("track", event="Product Viewed",
                       properties={k: v for k, v in base.items() if v is not _DROP}, **fields)

    g.braze("current Product Viewed complete", "Product Viewed (beta)", "current", viewed())
    for key in ["product_id", "name", "variant", "price", "currency", "source", "url", "image_url"]:
        g.braze(f"current Product Viewed without {key}", "Product Viewed (beta)", "current", viewed(**{key: _DROP}))
    for i in range(6):
        key = g.pick(["price", "product_id", "name", "url", "image_url", "currency"])
        val = g.pick(["10", None, "", "abc", 3, True, "not a uri", "http://x.y/ä"])
        g.braze(f"current Product Viewed {key}={json.dumps(val)} #{i}", "Product Viewed (beta)", "current",
                viewed(**{key: val}))
    g.braze("current Product Viewed anonymous only", "Product Viewed (beta)", "current", viewed(userId=_DROP))
    g.braze("current Product Viewed update-existing-only", "Product Viewed (beta)", "current", viewed(),
            update_only=True)
    g.braze("classic Product Viewed goes to Track Calls", "Track Calls", "classic", viewed())


def batch_cases(g: Gen) -> None:
    def track(i: int) -> dict:
        ident = g.pick([{"userId": f"b{i}"}, {"userId": f"b{i}"}, {"anonymousId": f"a{i}"},
                        {"anonymousId": f"a{i}", "context": {"traits": {"email": f"e{i}@example.com"}}}])
        return g.event("track", lean=True, event=g.pick(["A", "B", "Signed Up"]), properties=g.traits(2), **ident)

    for n in (2, 3, 5, 12, 40, 75):
        g.braze(f"batch of {n} tracks", "Track Calls", g.pick(["classic", "current"]), [track(i) for i in range(n)])
    g.braze("batch of 2 tracks, none identified", "Track Calls", "classic",
            [g.event("track", event="A", anonymousId="x", properties={}) for _ in range(2)])
    g.braze("batch of 3 tracks update-existing-only", "Track Calls", "classic", [track(i) for i in range(3)],
            update_only=True)

    def ident(i: int) -> dict:
        ident_fields = g.pick([{"userId": f"b{i}"}, {"anonymousId": f"a{i}"}, {"userId": f"b{i}"}])
        traits = g.traits(3)
        if g.rng.random() < 0.4:
            traits.update({"email": g.pick(EMAILS), "gender": g.pick(GENDERS), "firstName": g.pick(NAMES)})
        return g.event("identify", lean=True, traits=traits, **ident_fields)

    for n in (2, 4, 9, 30, 75):
        g.braze(f"batch of {n} identifies", "Identify Calls", "classic", [ident(i) for i in range(n)])
    g.braze("batch of 2 identifies, none identified", "Identify Calls", "classic",
            [g.event("identify", anonymousId=f"a{i}", traits={"x": i}) for i in range(2)])
    g.braze("batch of 2 identifies, one with an invalid avatar", "Identify Calls", "classic",
            [g.event("identify", userId="b1", traits={"avatar": "not a url"}),
             g.event("identify", userId="b2", traits={"avatar": "https://example.com/a.png"})])

    def order(i: int, n_products: int, event: str = "Order Completed", shape: str = "full", **fields: Any) -> dict:
        fields.setdefault("userId", f"b{i}")
        return g.event("track", lean=True, event=event,
                       properties=order_props(g, [_product(g, j, shape) for j in range(n_products)]), **fields)

    g.braze("classic batch of 4 orders", "Order Completed Calls", "classic",
            [order(i, g.rng.randrange(1, 4)) for i in range(4)])
    g.braze("classic batch of 3 orders of 40 products (> 75 objects)", "Order Completed Calls", "classic",
            [order(i, 40, shape="minimal") for i in range(3)])
    g.braze("classic batch, one order of 80 products", "Order Completed Calls", "classic",
            [order(0, 80, shape="minimal"), order(1, 2)])
    g.braze("classic batch, exactly 75 objects", "Order Completed Calls", "classic",
            [order(0, 50, shape="minimal"), order(1, 25, shape="minimal"), order(2, 1)])
    g.braze("classic batch, orders with and without products", "Order Completed Calls", "classic",
            [order(0, 0), order(1, 2), order(2, 0)])
    g.braze("classic batch, all orders without products", "Order Completed Calls", "classic",
            [order(0, 0), order(1, 0)])
    g.braze("classic batch, one order without identifier", "Order Completed Calls", "classic",
            [order(0, 1), order(1, 1, userId=_DROP, anonymousId="a"), order(2, 1)])
    g.braze("classic batch, orders with odd products", "Order Completed Calls", "classic",
            [order(i, 2, shape="odd") for i in range(4)])
    for name, preset in [("Order Completed", "Order Placed (beta)"), ("Checkout Started", "Checkout Started (beta)"),
                         ("Order Refunded", "Order Refunded (beta)"), ("Order Cancelled", "Order Cancelled (beta)")]:
        g.braze(f"current batch of 3 {name}", preset, "current", [order(i, 2, name) for i in range(3)])
        g.braze(f"current batch of {name}, one anonymous, one odd", preset, "current",
                [order(0, 1, name), order(1, 1, name, userId=_DROP, anonymousId="a"), order(2, 2, name, "odd")])
    g.braze("current batch of 2 Order Completed, both anonymous", "Order Placed (beta)", "current",
            [order(i, 1, userId=_DROP, anonymousId=f"a{i}") for i in range(2)])
    g.braze("current batch of 30 Order Completed", "Order Placed (beta)", "current",
            [order(i, g.rng.randrange(0, 3), shape=g.pick(["full", "odd", "minimal"])) for i in range(30)])
    g.braze("current batch of Order Completed update-existing-only", "Order Placed (beta)", "current",
            [order(i, 1) for i in range(2)], update_only=True)
    viewed = [g.event("track", event="Product Viewed", userId=f"v{i}",
                      properties={"product_id": f"p{i}", "name": "n", "variant": "v", "price": g.pick([1, "2", None]),
                                  "currency": "USD", "source": "app"}) for i in range(5)]
    g.braze("current batch of 5 Product Viewed", "Product Viewed (beta)", "current", viewed)


def cohort_cases(g: Gen) -> None:
    key = "dormant_shopper"

    def personas(k: str = key, cid: str = "aud_2f1", cls: str = "audience") -> dict:
        return {"computation_class": cls, "computation_id": cid, "computation_key": k, "namespace": "spa_sandbox",
                "space_id": "spa_sandbox"}

    def aud(member: Any, user: Any = None, minute: int | None = None, k: str = key, **fields: Any) -> dict:
        fields.setdefault("userId", user if user is not None else f"c{g.rng.randrange(1000)}")
        ctx = {"personas": fields.pop("personas", personas(k))}
        ctx.update(fields.pop("ctx", {}))
        props = fields.pop("properties", {"audience_key": k, k: member})
        ev = g.event("track", event="Audience Entered" if member is True else "Audience Exited", context=ctx,
                     properties=props, **fields)
        if minute is not None:
            ev["timestamp"] = ev["originalTimestamp"] = g.stamp(minute)
        return ev

    def cohort(description: str, evs: dict | list[dict], audience_key: str = key, mapping: dict | None = None,
               partner: bool = False, subscription_identify: bool = False) -> None:
        oracle: dict[str, Any] = {"action": "syncAudiences", "mapping": {"personas_audience_key": audience_key,
                                                                           **(mapping or {})}}
        overrides: dict[str, Any] = {"personas_audience_key": audience_key}
        if mapping:
            overrides["mapping"] = mapping
        if partner:
            oracle["env"] = {"BRAZE_COHORTS_PARTNER_API_KEY_US": PARTNER_KEY}
            overrides["partner_api_key"] = PARTNER_KEY
        kw = {"events": evs} if isinstance(evs, list) else {"event": evs}
        g.add(f"cohorts: {description}", "braze-cohorts", "Sync Audience", "classic", oracle, dict(COHORT_SETTINGS),
              overrides, **kw)

    for member in (True, False, "true", 1, 0, None, "", "false"):
        cohort(f"audience event with membership {json.dumps(member)}", aud(member))
    cohort("Audience Entered with empty properties", aud(True, properties={}))
    cohort("Audience Entered without properties", aud(True, properties=_DROP))
    cohort("Audience Entered, membership only in traits", aud(True, properties=_DROP, traits={key: True}))
    cohort("computed-trait class", aud(True, personas=personas(cls="computed_trait")))
    cohort("audience key mismatch", aud(True, k="other"))
    cohort("missing computation_id", aud(True, personas={"computation_key": key, "computation_class": "audience"}))
    cohort("missing personas context", aud(True, personas={}))
    cohort("anonymous only, no ids", aud(True, userId=_DROP, anonymousId="anon"))
    cohort("empty userId", aud(True, userId=""))
    cohort("numeric userId", aud(True, userId=42))
    cohort("partner api key from the environment", aud(True), partner=True)
    cohort("partner api key, batch", [aud(True), aud(False)], partner=True)
    device = {"device_id": {"@path": "$.context.device.id"}}
    alias = {"user_alias": {"@if": {"exists": {"@path": "$.properties.alias_name"},
                                    "then": {"alias_name": {"@path": "$.properties.alias_name"},
                                             "alias_label": "email"}}}}
    cohort("device id only", aud(True, userId=_DROP, anonymousId="x", ctx={"device": {"id": "dev-1"}}), mapping=device)
    cohort("device id and userId", aud(False, ctx={"device": {"id": "dev-2"}}), mapping=device)
    cohort("alias only (email alias)", aud(True, userId=_DROP, anonymousId="x",
                                           properties={key: True, "alias_name": "a@example.com"}), mapping=alias)
    cohort("alias with an empty name", aud(True, userId=_DROP, anonymousId="x",
                                           properties={key: True, "alias_name": ""}), mapping=alias)
    for mode in ("identify-mode", "identify-mode exit"):
        member = mode == "identify-mode"
        ev = g.event("identify", userId=f"c{g.rng.randrange(1000)}", traits={key: member, "email": "i@example.com"},
                     context={"personas": personas()})
        cohort(f"{mode} audience (membership from traits)", ev)
    cohort("identify-mode batch", [g.event("identify", userId=f"i{i}", traits={key: i % 2 == 0},
                                           context={"personas": personas()}) for i in range(6)])
    # Batches: latest event per user wins, odd and equal timestamps, many users.
    for i in range(8):
        users = [f"c{j}" for j in range(g.rng.randrange(1, 6))]
        evs = [aud(g.pick([True, False]), g.pick(users), g.rng.randrange(0, 120)) for _ in range(g.rng.randrange(2, 9))]
        cohort(f"batch, latest event per user wins #{i}", evs)
    evs = [aud(True, "same", 5), aud(False, "same", 5), aud(True, "same", 5)]
    cohort("batch, equal timestamps", evs)
    odd = [aud(True, f"o{i}") for i in range(5)]
    for ev, ts in zip(odd, ["not a date", "", "2026-11-20T10:00:00+05:00", "2026-11-20", "2026-11-19T23:59:59.999Z"]):
        ev["timestamp"] = ts
    cohort("batch with odd timestamps", odd)
    odd = [aud(i % 2 == 0, f"o{i % 3}") for i in range(len(ODD_DATES))]
    for ev, ts in zip(odd, ODD_DATES):
        ev["timestamp"] = ts
    cohort("batch, same users with odd timestamps", odd)
    for ts in ("2026-02-30T10:00:00Z", "0001-01-01T00:00:00Z", 1795000000000):
        cohort(f"Audience Entered with timestamp {json.dumps(ts)}", aud(True, timestamp=ts))
    cohort("batch, no timestamps", [aud(g.pick([True, False]), f"n{i}", timestamp=_DROP) for i in range(4)])
    cohort("batch of 60 users entering and exiting", [aud(i % 3 != 0, f"m{i}", lean=True) for i in range(60)])
    cohort("batch of 75 exits", [aud(False, f"x{i}", lean=True) for i in range(75)])
    cohort("batch, only anonymous events", [aud(True, userId=_DROP, anonymousId=f"a{i}") for i in range(3)])
    # Segment batches by (cohort_name, cohort_id) before performBatch, so a batch never mixes audience keys.
    cohort("batch, every event's key mismatches", [aud(True, k="other"), aud(False, k="other")])
    cohort("batch with devices and users", [
        aud(True, "u1", 1, ctx={"device": {"id": "d1"}}), aud(False, "u1", 2, ctx={"device": {"id": "d2"}}),
        aud(True, userId=_DROP, anonymousId="a", ctx={"device": {"id": "d3"}}),
        aud(False, userId=_DROP, anonymousId="b", ctx={"device": {"id": "d3"}}, minute=0)], mapping=device)
    cohort("batch with aliases", [
        aud(True, userId=_DROP, anonymousId="a", properties={key: True, "alias_name": "x@example.com"}),
        aud(False, userId=_DROP, anonymousId="b", properties={key: False, "alias_name": "x@example.com"}),
        aud(False, userId=_DROP, anonymousId="c", properties={key: False, "alias_name": "y@example.com"}),
        aud(True, "u9")], mapping=alias)


def fuzz_found_cases(g: Gen) -> None:
    """One to three cases per class of difference scripts/fuzz_oracle.py found (no random choices: appended last, so
    the cases above stay as they were)."""
    big = {"int": 2 ** 60 + 3, "neg": -(2 ** 63), "exp": 10 ** 22 + 1, "safe": 2 ** 53 - 1, "float": 1e17 + 8.0,
           "negfloat": -8.533505580155858e16, "list": [12345678901234567890, {"n": 2 ** 53 + 1}]}
    g.braze("fuzz: integers beyond 2**53 (JSON.parse makes doubles)", "Identify Calls", "classic",
            g.event("identify", userId="big1", traits=big))
    g.braze("fuzz: integers beyond 2**53 in properties", "Track Calls", "current",
            g.event("track", userId="big2", event="Clicked", properties={"total": 96103477752717164544, **big}))
    g.braze("fuzz: keys of non-ASCII digits are no array indexes", "Identify Calls", "classic",
            g.event("identify", userId="k1", traits={"b": 1, "١٢٣": 2, "10": 3, "٣": 4, "2": 5, "٠": 6}))
    legacy = [" 2026-11-20", "Nov 20, 2026 10:00 PM", "20 Nov 2026", "-1", "2026/11/20 10:00", "Friday 10:00",
              "11/31/2026", "2026-11-20 10:00:00 GMT+0200", "12:00 2026-11-20", "Nov 2026 20"]
    g.braze("fuzz: receivedAt in V8's legacy date forms (batch)", "Track Calls", "classic",
            [g.event("track", lean=True, userId=f"d{i}", event="Clicked", properties={}, receivedAt=when)
             for i, when in enumerate(legacy)])
    g.braze("fuzz: receivedAt ' 2026-11-20' (V8 skips the space, dayjs does not)", "Track Calls", "classic",
            g.event("track", userId="d1", event="Clicked", properties={}, receivedAt=" 2026-11-20"))
    g.braze("fuzz: quantity and price 'Infinity' (ajv coerces, JSON writes null)", "Order Completed Calls",
            "classic", g.event("track", userId="inf", event="Order Completed", properties={
                "products": [{"product_id": "p1", "price": "Infinity", "quantity": "-Infinity"}]}))
    g.braze("fuzz: context null (actions-core's audience membership throws)", "Identify Calls", "classic",
            g.event("identify", userId="cn", traits={"plan": "x"}, context=None))
    g.braze("fuzz: batch with a null context and a refused event: the batch fails", "Track Calls", "classic",
            [g.event("track", lean=True, userId="c1", event="A", properties={}),
             g.event("track", lean=True, userId="c2", event="A", properties={}, context=None),
             g.event("track", lean=True, anonymousId="x", event="A", properties={}, receivedAt="never")])
    g.braze("fuzz: batch whose only valid event has a null personas", "Identify Calls", "current",
            [g.event("identify", lean=True, userId="p1", traits={}, context={"personas": None}),
             g.event("identify", lean=True, userId=["a", "b"], traits={})])
    order = order_props(g, [_product(g, 0)])
    g.braze("fuzz: ecommerce timestamp with a +02 zone (ajv date-time yes, dayjs no)", "Order Placed (beta)",
            "current", g.event("track", userId="tz", event="Order Completed", properties=order,
                               timestamp="2026-11-20T10:00:00+02"))
    g.braze("fuzz: ecommerce batch with one +02 timestamp: the batch fails", "Checkout Started (beta)", "current",
            [g.event("track", lean=True, userId=f"tz{i}", event="Checkout Started", properties=order, timestamp=ts)
             for i, ts in enumerate(["2026-11-20T10:00:00Z", "2026-11-20T10:00:00+02", "2026-11-20T11:00:00Z"])])
    g.braze("fuzz: __proto__ keys (JSON.parse's own key, dropped by Object.assign)", "Identify Calls", "classic",
            g.event("identify", userId="pr", traits={"__proto__": {"email": "p@example.com"}, "a": 1,
                                                     "n": {"__proto__": None, "k": [{"__proto__": 5, "z": 0}]}}))
    g.braze("fuzz: a __proto__ object is the product's prototype (inherited product_id)", "Order Completed Calls",
            "classic", g.event("track", userId="pi", event="Order Completed", properties={
                "products": [{"__proto__": {"product_id": "p-inherited", "sku": "s"}, "price": 1}]}))
    # Braze answering something else than 201 success (`answer`): what Segment records per event.
    def answered(status: int, body: dict) -> None:
        g.cases[-1]["answer"] = {"status": status, "body": body}

    tracks = [g.event("track", lean=True, userId=f"r{i}", event="A", properties={}) for i in range(3)]
    g.braze("fuzz answers: 201 with errors indexed '1', 2.0 and -1 (JavaScript property keys)", "Track Calls",
            "classic", tracks)
    answered(201, {"message": "success", "errors": [{"type": "bad1", "index": "1"}, {"type": "bad2", "index": 2.0},
                                                    {"type": "x", "index": -1}, {"type": "y", "index": "01"}]})
    g.braze("fuzz answers: 400 whose error names no sent object (TypeError reading it)", "Identify Calls", "classic",
            [g.event("identify", lean=True, userId=f"r{i}", traits={"plan": i}) for i in range(2)])
    answered(400, {"message": "Valid data must be provided", "errors": [{"type": "t", "index": 0},
                                                                         {"type": "t", "index": 5}]})
    g.braze("fuzz answers: 201 with a null error (TypeError reading it)", "Track Calls", "current", tracks[:2])
    answered(201, {"message": "success", "errors": [None]})
    ecommerce = [g.event("track", lean=True, userId=f"e{i}", event="Order Completed",
                         properties=order_props(g, [_product(g, 0)], **({"currency": _DROP} if i == 0 else {})))
                 for i in range(3)]
    g.braze("fuzz answers: ecommerce errors index the payloads that passed the check", "Order Placed (beta)",
            "current", ecommerce)
    answered(201, {"message": "success", "errors": [{"type": "bad", "index": 1}]})
    key = "dormant_shopper"
    personas = {"computation_class": "audience", "computation_id": "aud_2f1", "computation_key": key}

    def aud(user: str, member: bool, ts: Any, **fields: Any) -> dict:
        ev = g.event("track", lean=True, userId=user, event="Audience Entered" if member else "Audience Exited",
                     context={"personas": dict(personas)}, properties={key: member}, **fields)
        if ts is _DROP:
            ev.pop("timestamp")
        else:
            ev["timestamp"] = ts
        return ev

    cohort_oracle = {"action": "syncAudiences", "mapping": {"personas_audience_key": key}}
    g.add("cohorts: fuzz: legacy date forms order the batch", "braze-cohorts", "Sync Audience", "classic",
          cohort_oracle, dict(COHORT_SETTINGS), {"personas_audience_key": key},
          events=[aud("u1", True, "Nov 20, 2026 10:00"), aud("u1", False, " 2026-11-20"),
                  aud("u2", False, "20 Nov 2026 09:00 GMT"), aud("u2", True, "-1"), aud("u3", True, "2026/11/21")])
    g.add("cohorts: fuzz: a key mismatch fails the refused events of the batch too", "braze-cohorts",
          "Sync Audience", "classic", {**cohort_oracle, "mapping": {"personas_audience_key": "other"}},
          dict(COHORT_SETTINGS), {"personas_audience_key": "other"},
          events=[aud("m1", True, "2026-11-20T10:00:00Z"), aud("m2", True, _DROP)])
    g.add("cohorts: fuzz: personas null", "braze-cohorts", "Sync Audience", "classic", cohort_oracle,
          dict(COHORT_SETTINGS), {"personas_audience_key": key},
          event={**aud("n1", True, "2026-11-20T10:00:00Z"), "context": {"personas": None}})
    g.add("cohorts: fuzz: membership inherited from a __proto__ object", "braze-cohorts", "Sync Audience",
          "classic", cohort_oracle, dict(COHORT_SETTINGS), {"personas_audience_key": key},
          events=[{**aud("i1", True, "2026-11-20T10:00:00Z"), "properties": {"__proto__": {key: True}}},
                  {**aud("i2", True, "2026-11-20T10:00:00Z"), "properties": {"__proto__": {"__proto__": None}}},
                  {**aud("i3", False, "2026-11-20T10:00:00Z"), "properties": {"__proto__": None}}])
    odd_key = "toString"
    g.add("cohorts: fuzz: an audience key named like an Object.prototype member", "braze-cohorts", "Sync Audience",
          "classic", {**cohort_oracle, "mapping": {"personas_audience_key": odd_key}}, dict(COHORT_SETTINGS),
          {"personas_audience_key": odd_key},
          event={**aud("t1", False, "2026-11-20T10:00:00Z"), "properties": {},
                 "context": {"personas": {**personas, "computation_key": odd_key}}})
    g.add("cohorts: fuzz answers: a failed call fails the batch's refused events too", "braze-cohorts",
          "Sync Audience", "classic", cohort_oracle, dict(COHORT_SETTINGS), {"personas_audience_key": key},
          events=[aud("f1", True, "2026-11-20T10:00:00Z"), aud("f2", False, _DROP)])
    answered(500, {"message": "oops"})


def build(seed: int) -> list[dict]:
    g = Gen(seed)
    for section in (identify_cases, track_cases, purchase_cases, ecommerce_cases, batch_cases, cohort_cases,
                    fuzz_found_cases):
        section(g)
    return g.cases


# -- running the oracle -----------------------------------------------------------------------------------------------


def case_endpoint(case: dict, endpoint: str, n: int) -> str:
    """Where the oracle sends case n's requests: the 201 endpoint, or /a/<n> for a case with its own answer."""
    if "answer" not in case:
        return endpoint
    ANSWERS[n] = (case["answer"]["status"], json.dumps(case["answer"]["body"]).encode())
    return f"{endpoint}/a/{n}"


def _oracle_input(case: dict, endpoint: str) -> dict:
    settings = {k: (endpoint if v == ENDPOINT_PLACEHOLDER else v) for k, v in case["settings"].items()}
    spec = case["oracle"]
    item: dict[str, Any] = {"raw": True, "dest": case["destination"], "settings": settings,
                            "mapping": spec.get("mapping", {})}
    if "preset" in spec:
        item["preset"] = spec["preset"]
    else:
        item["action"] = spec["action"]
    if "events" in case:
        item["events"] = case["events"]
    else:
        item["event"] = case["event"]
    return item


def run_oracle(oracle_dir: Path, cases: list[dict], endpoint: str,
               endpoint_for: Callable[[dict, int], str] | None = None) -> list[dict]:
    """Run the cases through the oracle, one node process per distinct environment; results in case order.
    `endpoint_for(case, i)`: where case i's requests go (default `case_endpoint`)."""
    endpoint_for = endpoint_for or (lambda case, i: case_endpoint(case, endpoint, i))
    results: list[dict | None] = [None] * len(cases)
    by_env: dict[str, list[int]] = {}
    for i, case in enumerate(cases):
        by_env.setdefault(json.dumps(case.get("oracle", {}).get("env", {}), sort_keys=True), []).append(i)
    for env_text, indexes in by_env.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRAZE_COHORTS_PARTNER_API_KEY")}
        env.update(json.loads(env_text))
        stdin = json.dumps([_oracle_input(cases[i], endpoint_for(cases[i], i)) for i in indexes])
        done = subprocess.run(["node", "oracle.js"], cwd=oracle_dir, input=stdin, capture_output=True, text=True,
                              env=env, check=False)
        if done.returncode != 0:
            sys.exit(f"oracle failed ({done.returncode}): {done.stderr[-2000:]}")
        for i, result in zip(indexes, json.loads(done.stdout)):
            results[i] = result
    return results  # type: ignore[return-value]


def _request(raw: dict, endpoint: str) -> dict:
    assert raw["url"].startswith(endpoint), raw["url"]
    return {"method": raw["method"], "headers": raw["headers"], "body": raw["body"], "path": raw["url"][len(endpoint):]}


def _per_event(entry: dict) -> dict:
    return {k: entry[k] for k in ("status", "errortype", "errormessage") if k in entry}


def record(case: dict, result: dict, endpoint: str) -> dict:
    """The case with Segment's answer, in the fixture's layout."""
    out = {k: v for k, v in case.items() if k not in ("event", "events")}
    out["event" if "event" in case else "events"] = case["event" if "event" in case else "events"]
    out["requests"] = [_request(r, endpoint) for r in result["requests"]]
    out["outcome"] = "sent" if result["ok"] else "error"
    if not result["ok"]:
        out["error"] = result["error"]
        if result.get("status") is not None:
            out["error_status"] = result["status"]
    if result.get("multistatus"):
        out["per_event_results"] = [_per_event(e) for e in result["multistatus"]]
    return out


ABOUT = ("Cases generated by scripts/gen_oracle_cases.py (seed {seed}) and run through Segment's own Braze "
         "destinations, npm @segment/action-destinations {version} (destinations 'braze' and 'braze-cohorts'), with "
         "/work/shared/tools/segment-destination-oracle against a local endpoint answering 201 (or a case's 'answer': "
         "its status and body). Same layout as "
         "segment-braze-destinations.json; 'oracle' says how Segment's action was invoked (preset or action, the "
         "mapping overrides it got, its environment), 'mapping_overrides' what our destination gets in its "
         "settings, 'preset_set' the preset set the event is routed in. An 'error' outcome with 'events' means "
         "performBatch threw: every event of the batch fails with that message.")


def _package_version(oracle_dir: Path) -> str:
    meta = oracle_dir / "node_modules" / "@segment" / "action-destinations" / "package.json"
    if not meta.exists():
        sys.exit(f"{oracle_dir}: run `npm install --no-audit --no-fund` there first")
    return json.loads(meta.read_text())["version"]


def _existing_as_cases() -> Iterator[tuple[dict, dict]]:
    """The older fixture's cases with the oracle invocation they imply."""
    for case in json.loads(EXISTING.read_text())["cases"]:
        preset = case["preset_or_action"]
        if case["destination"] == "braze-cohorts":
            oracle = {"action": "syncAudiences", "mapping": case["mapping_overrides"]}
        elif preset == "Order Completed Calls":
            oracle = {"action": "trackPurchase"}
        else:
            oracle = {"preset": preset}
        yield case, {**{k: v for k, v in case.items() if k in ("settings", "destination", "event", "events")},
                     "oracle": oracle}


def check_existing(oracle_dir: Path, endpoint: str) -> None:
    pairs = list(_existing_as_cases())
    results = run_oracle(oracle_dir, [c for _, c in pairs], endpoint)
    bad = 0
    for (case, invocation), result in zip(pairs, results):
        mine = record(invocation, result, endpoint)
        for key in ("requests", "outcome", "error", "per_event_results"):
            if mine.get(key) != case.get(key) or json.dumps(mine.get(key)) != json.dumps(case.get(key)):
                bad += 1
                print(f"existing case {case['description']!r}: {key} differs", file=sys.stderr)
    print(f"existing fixture: {len(pairs) - bad}/{len(pairs)} cases reproduced exactly", file=sys.stderr)
    if bad:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--oracle", type=Path, default=DEFAULT_ORACLE, help="the oracle directory (npm-installed)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check-existing", action="store_true",
                        help="also check that the conversion reproduces fixtures/segment-braze-destinations.json")
    args = parser.parse_args(argv)
    version = _package_version(args.oracle)
    server, endpoint = _serve()
    try:
        if args.check_existing:
            check_existing(args.oracle, endpoint)
        cases = build(args.seed)
        results = run_oracle(args.oracle, cases, endpoint)
        recorded = [record(c, r, case_endpoint(c, endpoint, i)) for i, (c, r) in enumerate(zip(cases, results))]
    finally:
        server.shutdown()
    text = json.dumps({"about": ABOUT.format(seed=args.seed, version=version), "cases": recorded}, indent=1,
                      ensure_ascii=False) + "\n"
    args.out.write_text(text)
    errors = sum(c["outcome"] == "error" for c in recorded)
    print(f"{len(recorded)} cases ({errors} refused) -> {args.out} ({len(text.encode()) // 1024} KiB)", file=sys.stderr)


if __name__ == "__main__":
    main()

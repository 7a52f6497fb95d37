"""The compiled mappings and precomputed payload checks against the interpretation they replaced.

tests/destinations/reference/ holds the destination modules as they were before (commit 3df274e). Random events
(and random mappings) go through both; everything planned must be the same, byte for byte: bodies in JSON.stringify's
key order, headers, which event each object came from, refusals with their status, code and message text.
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from emulator.segment.destinations import braze_cloud, braze_cohorts, mapping
from .reference import braze_cloud as ref_cloud, braze_cohorts as ref_cohorts, mapping as ref_mapping

# The event strategies are large: Hypothesis warns about the size of their repr, which is of no interest here.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")

SETTINGS = {"api_key": "k", "endpoint": "http://braze.test"}


def _plan_digest(plan: Any) -> str:
    requests = [[r.method, r.path, r.headers, r.body, r.events, r.sources, r.action, r.endpoint, r.batch,
                 r.batch_events] for r in plan.requests]
    refusals = sorted((i, r.status, r.code, r.message) for i, r in plan.refusals.items())
    return json.dumps([requests, refusals, plan.filtered, plan.skipped, sorted(plan.created_cohorts)])


def _outcome(fn, *args) -> tuple[str, str]:
    try:
        return "ok", json.dumps(fn(*args), default=repr)
    except Exception as error:  # the same exception, with the same message, is the same behaviour
        return type(error).__name__, str(error)


# -- random events: the shapes Segment messages take, with the values that exercise coercion and formats ----------

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["", "0", "1", "10", "2.5", " 7", "true", "false", "abc", "USD", "EUR", "usd", "web",
                     "male", "Female", "o", "prefer not to say", "ana@example.com", "not an email",
                     "https://example.com/a.png", "a:b", "2026-11-20T10:00:00.000Z", "2026-11-20T10:00:00+02:00",
                     "2026-11-20", "2026/11/20 10:00", "Fri, 20 Nov 2026 10:00:00 GMT", "1700000000000",
                     "subscribed", "unsubscribed", "ecommerce.product_viewed"]))
_KEYS = st.sampled_from(["a", "b", "10", "2", "0", "01", "email", "firstName", "lastName", "avatar", "name",
                         "price", "quantity", "currency", "product_id", "products", "properties", "time", "braze_id",
                         "external_id", "user_alias", "alias_name", "alias_label", "country", "city", "x"])
_VALUES = st.recursive(_SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(_KEYS, children, max_size=4)), max_leaves=8)


def _product() -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={
        "product_id": _SCALARS, "name": _SCALARS, "variant": _SCALARS, "price": _SCALARS, "quantity": _SCALARS,
        "currency": _SCALARS, "url": _SCALARS, "image_url": _SCALARS, "sku": _SCALARS, "extra": _VALUES})


_PROPERTIES = st.fixed_dictionaries({}, optional={
    "products": st.one_of(st.lists(_product(), max_size=3), _VALUES), "product_id": _SCALARS, "name": _SCALARS,
    "variant": _SCALARS, "price": _SCALARS, "currency": _SCALARS, "source": _SCALARS, "order_id": _SCALARS,
    "checkout_id": _SCALARS, "cart_id": _SCALARS, "total": _SCALARS, "discount": _SCALARS, "reason": _SCALARS,
    "email": _SCALARS, "phone": _SCALARS, "braze_id": _SCALARS, "url": _SCALARS, "image_url": _SCALARS,
    "order_status_url": _SCALARS, "checkout_url": _SCALARS, "aud": _VALUES, "10": _VALUES,
    "discount_items": st.one_of(st.lists(st.fixed_dictionaries({}, optional={"code": _SCALARS, "amount": _SCALARS}),
                                         max_size=2), _VALUES)})
_TRAITS = st.fixed_dictionaries({}, optional={
    "email": _SCALARS, "firstName": _SCALARS, "lastName": _SCALARS, "gender": _SCALARS, "phone": _SCALARS,
    "avatar": _SCALARS, "address": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"city": _SCALARS})),
    "plan": _SCALARS, "2": _VALUES, "nested": _VALUES, "aud": _VALUES, "braze_id": _SCALARS})
_CONTEXT = st.fixed_dictionaries({}, optional={
    "traits": _TRAITS, "location": st.fixed_dictionaries({}, optional={
        "country": _SCALARS, "latitude": _SCALARS, "longitude": _SCALARS}),
    "personas": st.fixed_dictionaries({}, optional={"computation_key": st.sampled_from(["aud", "other", ""]),
                                                    "computation_id": _SCALARS}),
    "device": st.fixed_dictionaries({"id": _SCALARS})})
_EVENT_NAMES = st.sampled_from(["Order Completed", "Product Viewed", "Checkout Started", "Order Refunded",
                                "Order Cancelled", "Clicked", "Audience Entered", "Audience Exited"])
_TYPES = st.sampled_from(["track", "identify", "page"])
EVENTS = st.fixed_dictionaries(
    # Mostly the usual types and names; sometimes anything (a list is no string, and cannot key a memo).
    {"type": st.one_of(_TYPES, _TYPES, _TYPES, _VALUES)},
    optional={"event": st.one_of(_EVENT_NAMES, _EVENT_NAMES, _EVENT_NAMES, _VALUES), "userId": st.one_of(_SCALARS, st.sampled_from(["u1", "u2", "u3"])),
              "anonymousId": st.sampled_from(["a1", "a2"]), "receivedAt": _SCALARS, "timestamp": _SCALARS,
              "properties": st.one_of(_PROPERTIES, _VALUES), "traits": st.one_of(_TRAITS, _VALUES),
              "context": _CONTEXT})


@hsettings(max_examples=200, deadline=None)
@given(st.lists(EVENTS, max_size=8), st.sampled_from(["classic", "current"]), st.booleans(), st.booleans())
def test_braze_cloud_plans_what_the_interpretation_planned(events: list[dict], preset_set: str, app_id: bool,
                                                           update_only: bool) -> None:
    settings = {**SETTINGS, **({"app_id": "app"} if app_id else {}), "update_existing_only": update_only}
    for batch in (events, events[:1]):  # performBatch and perform
        ours = _outcome(lambda: json.loads(_plan_digest(braze_cloud.build_requests(batch, settings, preset_set))))
        theirs = _outcome(lambda: json.loads(_plan_digest(ref_cloud.build_requests(batch, settings, preset_set))))
        assert ours == theirs


_COHORT_MAPPINGS = st.sampled_from([
    None,
    {"device_id": {"@path": "$.context.device.id"}},
    {"user_alias": {"@if": {"exists": {"@path": "$.properties.name"},
                            "then": {"alias_name": {"@path": "$.properties.name"}, "alias_label": "email"}}}},
    {"external_id": {"@if": {"blank": {"@path": "$.userId"}, "then": {"@path": "$.userId"},
                             "else": {"@path": "$.anonymousId"}}}},
])


@hsettings(max_examples=200, deadline=None)
@given(st.lists(EVENTS, max_size=8), _COHORT_MAPPINGS, st.sampled_from([None, 'type = "identify"']))
def test_braze_cohorts_plan_what_the_interpretation_planned(events: list[dict], overrides: dict | None,
                                                            subscription: str | None) -> None:
    settings = {"client_secret": "s", "endpoint": "http://braze.test", "personas_audience_key": "aud",
                **({"mapping": overrides} if overrides else {}), **({"subscription": subscription} if subscription else {})}
    for batch in (events, events[:1]):
        ours = _outcome(lambda: json.loads(_plan_digest(braze_cohorts.build_requests(batch, settings, set()))))
        theirs = _outcome(lambda: json.loads(_plan_digest(ref_cohorts.build_requests(batch, settings, set()))))
        assert ours == theirs


# -- random mappings, odd shapes included: the compiler falls back to the interpreter where it must ----------------

_PATHS = st.sampled_from(["$.properties", "$.properties.a", "$.properties.a.b", "$.properties.10", "$.traits.a.length",
                          "$.x", "$.", "", ".", "$.properties['a']", "$.list[0]", "$.list.1.a", "a.b.c", 5, None])
_MAPPINGS = st.recursive(
    st.one_of(_SCALARS, st.builds(lambda p: {"@path": p}, _PATHS)),
    lambda children: st.one_of(
        st.dictionaries(st.sampled_from(["a", "b", "10", "_metadata"]), children, max_size=3),
        st.lists(children, max_size=2),
        st.builds(lambda kind, probe, then, other: {"@if": {kind: probe, "then": then, "else": other}},
                  st.sampled_from(["exists", "blank"]), children, children, children),
        st.builds(lambda probe, then: {"@if": {"exists": probe, "then": then}}, children, children),
        st.builds(lambda opts: {"@if": opts}, children),
        st.builds(lambda p, shape: {"@arrayPath": [p, shape]}, st.one_of(_PATHS, children), children),
        st.builds(lambda opts: {"@arrayPath": opts}, children),
        st.builds(lambda value: {"@path": value}, children),
        st.builds(lambda value: {"@template": value, "_metadata": 1}, children),
    ), max_leaves=10)
_PAYLOADS = st.fixed_dictionaries({}, optional={"properties": _VALUES, "traits": _VALUES, "x": _SCALARS,
                                                "list": st.lists(_VALUES, max_size=3)})


@hsettings(max_examples=500, deadline=None)
@given(_MAPPINGS, _PAYLOADS)
def test_compiled_mapping_resolves_like_the_interpreter(mapping_: Any, payload: dict) -> None:
    ours = _outcome(mapping.compile_mapping(mapping_), payload)
    theirs = _outcome(lambda p: ref_mapping.remove_undefined(ref_mapping.resolve(mapping_, p)), payload)
    assert ours == theirs
    if isinstance(mapping_, dict):
        assert _outcome(mapping.transform, mapping_, payload) == _outcome(ref_mapping.transform, mapping_, payload)


@hsettings(max_examples=150, deadline=None)
@given(st.sampled_from(["classic", "current"]), EVENTS)
def test_matched_presets_are_the_same(preset_set: str, event: dict) -> None:
    ours = [p.name for p in braze_cloud.match_presets(event, preset_set)]
    assert ours == [p.name for p in ref_cloud.match_presets(event, preset_set)]
    assert ours == [p.name for p in braze_cloud.match_presets(event, preset_set)]  # memoised answer, same again


# -- the payload check on random payloads (more coercions, formats and nesting than mapped events reach) -----------

_FIELD_KEYS = st.sampled_from([
    "product_id", "product_name", "variant_id", "price", "quantity", "currency", "image_url", "product_url",
    "alias_name", "alias_label", "latitude", "longitude", "app_id", "token", "device_id", "subscription_group_id",
    "subscription_state", "code", "amount", "id", "likes", "num_friends", "10", "x"])
_CHECKED_VALUES = st.recursive(_SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(_FIELD_KEYS, children, max_size=5)), max_leaves=10)
_ALL_FIELDS = [*braze_cloud.ACTION_FIELDS.values(), braze_cohorts.SYNC_AUDIENCES_FIELDS]
_REF_FIELDS = [*ref_cloud.ACTION_FIELDS.values(), ref_cohorts.SYNC_AUDIENCES_FIELDS]


def _checked(check, payload: dict, fields: dict, single: bool) -> tuple:
    try:
        return "ok", json.dumps(check(payload, fields, single), default=repr)
    except Exception as error:
        return type(error).__name__, str(error), getattr(error, "status", None), getattr(error, "code", None)


@hsettings(max_examples=250, deadline=None)
@given(st.integers(0, len(_ALL_FIELDS) - 1), st.data(), st.booleans())
def test_payload_check_answers_like_the_interpretation(which: int, data: st.DataObject, single: bool) -> None:
    from emulator.segment.destinations import base
    from .reference import base as ref_base
    keys = st.sampled_from([*_ALL_FIELDS[which], "extra"])
    payload = data.draw(st.dictionaries(keys, _CHECKED_VALUES, max_size=12))
    assert _checked(base.check_payload, payload, _ALL_FIELDS[which], single) == \
        _checked(ref_base.check_payload, payload, _REF_FIELDS[which], single)


@hsettings(max_examples=400, deadline=None)
@given(st.one_of(_SCALARS, st.floats(-1e14, 1e15), st.datetimes().map(lambda d: d.isoformat(timespec="milliseconds") + "Z"),
                 st.text(alphabet="0123456789-:TZ. +", max_size=26)))
def test_dates_read_and_written_like_the_interpretation(value: Any) -> None:
    from emulator.segment.destinations import base
    from .reference import base as ref_base
    assert _outcome(base.to_iso, value) == _outcome(ref_base.to_iso, value)
    if isinstance(value, str):
        for fmt, (check, _) in base._FORMATS.items():
            assert check(value) == ref_base._FORMATS[fmt][0](value)

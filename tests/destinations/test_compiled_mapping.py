"""Compiled mappings (mapping.compile_mapping: closures built once per mapping) against the mapping-kit interpreter
they replace on the hot path (mapping.resolve + remove_undefined, which follow actions-core step by step and still
serve the odd shapes). What Segment sends for whole events is checked against Segment's own package in
test_braze_fixtures.py and test_oracle_cases.py."""
from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings as hsettings, strategies as st

from emulator.segment.destinations import mapping


def _outcome(fn, *args) -> tuple[str, str]:
    try:
        return "ok", json.dumps(fn(*args), default=repr)
    except Exception as error:  # the same exception, with the same message, is the same behaviour
        return type(error).__name__, str(error)


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
    theirs = _outcome(lambda p: mapping.remove_undefined(mapping.resolve(mapping_, p)), payload)
    assert ours == theirs

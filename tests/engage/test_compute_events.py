"""Engage evaluation of event conditions: streams, where() filters, time windows on the sandbox clock, every
reducer (as audience and as computed trait), funnels, dynamic references, backfill, merges."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import Sandbox
from emulator.clock import iso
from emulator.segment.engage.compute import Evaluator
from emulator.segment.engage.query import check_definition

from engage.compute_support import evaluate, members


def _track(user: str, event: str, **properties: object) -> dict:
    return {"type": "track", "userId": user, "event": event, "properties": properties}


@pytest.fixture
def shoppers(sandbox: Sandbox) -> Sandbox:
    """a: three pricey shoes 10 days ago and one cheap yesterday; b: one cheap pair today; c: only returns."""
    sandbox.segment.ingest([_track("a", "Shoes Bought", price=150, brand="Acme", size="42", tags=["x", "y"]),
                            _track("a", "Shoes Bought", price=120, brand="Zeta", size="43"),
                            _track("a", "Shoes Bought", price=200, brand="Acme", size="42")])
    sandbox.clock.advance("9d")
    sandbox.segment.ingest([_track("a", "Shoes Bought", price=20, brand="Zeta", size="43"),
                            _track("c", "Shoes Returned", price=80)])
    sandbox.clock.advance("1d")
    sandbox.segment.ingest([_track("b", "Shoes Bought", price="30", brand="Bolt", size="40", gift=True)])
    return sandbox


EVENT_CASES = [
    ("event('Shoes Bought').count() >= 1", {"a", "b"}),
    ("event('Shoes Bought').count() >= 4", {"a"}),
    ("event('Shoes Bought').count() = 0", {"c"}),
    ("event('Shoes Bought').within(7 days).count() >= 1", {"a", "b"}),
    ("event('Shoes Bought').within(7 days).count() >= 2", set()),
    ("event('Shoes Bought').within(12 hours).count() >= 1", {"b"}),
    ("event('Shoes Bought').within(240 hours).count() >= 4", {"a"}),
    ("event('Shoes Bought').between(2 days, 11 days).count() >= 1", {"a"}),
    ("event('Shoes Bought').between(1 hour, 2 days).count() >= 1", {"a"}),
    ("event('Shoes Bought').where( property('price') >= 100 ).count() >= 1", {"a"}),
    ("event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1", set()),
    ("event('Shoes Bought').where( property('price') < 25 ).count() >= 1", {"a"}),  # '30' is a string
    ("event('Shoes Bought').where( property('brand') = 'Bolt' ).count() = 1", {"b"}),
    ("event('Shoes Bought').where( property('brand') != 'Acme' ).count() >= 2", {"a"}),
    ("event('Shoes Bought').where( property('brand').one_of('Bolt', 'Zeta') ).count() >= 1", {"a", "b"}),
    ("event('Shoes Bought').where( property('brand').contains('ol') ).count() >= 1", {"b"}),
    ("event('Shoes Bought').where( property('brand').starts_with('Ac') ).count() >= 2", {"a"}),
    ("event('Shoes Bought').where( property('gift').exists() ).count() >= 1", {"b"}),
    ("event('Shoes Bought').where( property('gift') = true ).count() >= 1", {"b"}),
    ("event('Shoes Bought').where( property('brand').ends_with('ta') ).count() >= 1", {"a"}),
    ("event('Shoes Bought').where( property('gift').absent() ).count() >= 4", {"a"}),
    ("event('Shoes Bought').where( property('brand').none_of('Acme', 'Zeta') ).count() >= 1", {"b"}),
    ("event('Shoes Bought').where( property('brand').omits('e') ).count() >= 1", {"b"}),
    ("event('Shoes Bought').where( property('size') <= '41' ).count() >= 1", {"b"}),  # strings: lexicographic
    ("event('Shoes Bought').where( property('price') > 100 AND property('brand') = 'Acme' ).count() >= 2", {"a"}),
    ("event('Shoes Bought').where( property('price') > 100 OR property('brand') = 'Bolt' ).count() >= 1",
     {"a", "b"}),
    ("event('Shoes Bought').where( NOT property('brand') = 'Acme' ).count() = 2", {"a"}),
    ("event('Shoes Bought').where(property('brand') = 'Acme').where(property('size') = '42').count() = 2", {"a"}),
    ("event('Shoes Bought').sum(property('price')) > 400", {"a"}),
    ("event('Shoes Bought').avg(property('price')) < 130", {"a"}),  # (150+120+200+20)/4 = 122.5
    ("event('Shoes Bought').max(property('price')) >= 200", {"a"}),
    ("event('Shoes Bought').min(property('price')) <= 20", {"a"}),
    ("event('Shoes Bought').max(property('brand') as string) = 'Zeta'", {"a"}),
    ("event('Shoes Bought').first(property('brand')) = 'Acme'", {"a"}),
    ("event('Shoes Bought').last(property('brand')) = 'Zeta'", {"a"}),
    ("event('Shoes Bought').last(property('brand')) = 'Bolt'", {"b"}),
    ("event('Shoes Bought').mode(property('size'), 2) = '42'", {"a"}),
    ("event('Shoes Bought').mode(property('size'), 3) = '42'", set()),
    ("event('Shoes Bought').unique(property('brand')).count() >= 2", {"a"}),
    ("event('Shoes Bought').unique(property('brand')).count() = 1", {"b"}),
    ("event('Shoes Bought').count() >= 1 AND NOT event('Shoes Returned').count() >= 1", {"a", "b"}),
    ("event('Shoes Returned').count() >= 1 OR event('Shoes Bought').within(1 hour).count() >= 1", {"b", "c"}),
    ("event('Shoes Bought').count() >= 1 AND trait('plan').absent()", {"a", "b"}),
]


@pytest.mark.parametrize("text,expected", EVENT_CASES)
def test_each_event_condition_selects_exactly_the_profiles_it_describes(shoppers: Sandbox, text: str,
                                                                         expected: set[str]) -> None:
    result = evaluate(shoppers, text)
    assert set(result) == {"a", "b", "c"}
    assert {user for user, member in result.items() if member} == expected


TRAIT_CASES = [
    ("event('Shoes Bought').count()", {"a": 4, "b": 1, "c": 0}),
    ("event('Shoes Bought').within(7 days).count()", {"a": 1, "b": 1, "c": 0}),
    ("event('Shoes Bought').sum(property('price'))", {"a": 490, "b": None, "c": None}),  # only numeric values
    ("event('Shoes Bought').avg(property('price'))", {"a": 122.5, "b": None, "c": None}),
    ("event('Shoes Bought').min(property('price'))", {"a": 20, "b": None, "c": None}),
    ("event('Shoes Bought').max(property('price'))", {"a": 200, "b": None, "c": None}),
    ("event('Shoes Bought').min(property('price') as string)", {"a": "120", "b": "30", "c": None}),
    ("event('Shoes Bought').first(property('price'))", {"a": 150, "b": "30", "c": None}),
    ("event('Shoes Bought').last(property('price'))", {"a": 20, "b": "30", "c": None}),
    ("event('Shoes Bought').first(property('tags'))", {"a": ["x", "y"], "b": None, "c": None}),
    ("event('Shoes Bought').first(property('gift'))", {"a": None, "b": True, "c": None}),
    ("event('Shoes Bought').mode(property('size'), 2)", {"a": "42", "b": None, "c": None}),
    ("event('Shoes Bought').mode(property('size'))", {"a": "42", "b": "40", "c": None}),
    ("event('Shoes Bought').unique(property('brand'))", {"a": ["Acme", "Zeta"], "b": ["Bolt"], "c": None}),
    ("event('Shoes Bought').unique(property('brand')).count()", {"a": 2, "b": 1, "c": 0}),
    ("event('Shoes Bought').where(property('brand') = 'Acme').sum(property('price'))",
     {"a": 350, "b": None, "c": None}),
    ("literal(7)", {"a": 7, "b": 7, "c": 7}),
]


@pytest.mark.parametrize("text,expected", TRAIT_CASES)
def test_each_reducer_computes_the_trait_value(shoppers: Sandbox, text: str, expected: dict) -> None:
    assert evaluate(shoppers, text, "trait") == expected


def test_mode_tie_goes_to_the_first_alphabetical_value(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([_track("u", "Viewed", color=c) for c in ["red", "blue", "red", "blue", "green"]])
    assert evaluate(sandbox, "event('Viewed').mode(property('color'), 2)", "trait") == {"u": "blue"}
    sandbox.segment.ingest([_track("u", "Viewed", color="red")])
    assert evaluate(sandbox, "event('Viewed').mode(property('color'), 2)", "trait") == {"u": "red"}


def test_a_within_window_exits_when_the_clock_moves_past_it(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([_track("u", "Order Completed")])
    text = "event('Order Completed').within(7 days).count() >= 1"
    sandbox.clock.advance("6d")
    assert members(sandbox, text) == {"u"}
    sandbox.clock.advance("1d")
    assert members(sandbox, text) == {"u"}  # exactly 7 days ago still counts
    sandbox.clock.advance("1h")
    assert members(sandbox, text) == set()


def test_windows_use_the_event_timestamp_not_the_time_it_was_received(sandbox: Sandbox) -> None:
    old = (sandbox.clock.now() - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    sandbox.segment.ingest([{**_track("u", "Order Completed"), "timestamp": old}])
    assert members(sandbox, "event('Order Completed').within(7 days).count() >= 1") == set()
    assert members(sandbox, "event('Order Completed').between(14 days, 30 days).count() >= 1") == {"u"}


def test_page_and_screen_calls_are_page_viewed_and_screen_viewed_events(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([{"type": "page", "userId": "web", "name": "Pricing", "properties": {"path": "/p"}},
                            {"type": "screen", "userId": "app", "name": "Home"},
                            _track("both", "Page Viewed", name="Docs"),
                            {"type": "identify", "userId": "idonly", "traits": {"x": 1}}])
    assert members(sandbox, "event('Page Viewed').count() >= 1") == {"web", "both"}
    assert members(sandbox, "event('Screen Viewed').count() >= 1") == {"app"}
    assert members(sandbox, "event('Page Viewed').where(property('name') = 'Pricing').count() >= 1") == {"web"}
    assert members(sandbox, "event('Screen Viewed').where(property('screen_name') = 'Home').count() = 1") == {"app"}
    assert members(sandbox, "event('identify').count() >= 1") == set()


def test_context_fields_filter_events(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([{**_track("u1", "Page Seen"), "context": {"page": {"url": "https://x.io/pricing"}}},
                            {**_track("u2", "Page Seen"), "context": {"page": {"url": "https://x.io/docs"}}}])
    assert members(sandbox, "event('Page Seen').where(context('page.url').ends_with('/pricing')).count() >= 1") == {
        "u1"}


def test_excluded_sources_do_not_count(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([_track("u", "Clicked")])
    source = sandbox.store.query("SELECT source FROM segment_events")[0]["source"]
    assert members(sandbox, "event('Clicked').count() >= 1") == {"u"}
    assert members(sandbox, f"event('Clicked').sources({{exclude: '{source}'}}).count() >= 1") == set()
    assert members(sandbox, "event('Clicked').sources({exclude: 'other'}).count() >= 1") == {"u"}


def test_a_funnel_step_counts_only_after_the_parent_event_and_within_its_window(sandbox: Sandbox) -> None:
    text = ("event('Shoes Bought').where( event('Shoes Returned').within(parent: 5 days).count() >= 1 )"
            ".count() >= 1")
    sandbox.segment.ingest([_track("returned_late", "Shoes Bought"), _track("returned_fast", "Shoes Bought"),
                            _track("returned_before", "Shoes Returned")])
    sandbox.clock.advance("2d")
    sandbox.segment.ingest([_track("returned_fast", "Shoes Returned"), _track("returned_before", "Shoes Bought")])
    sandbox.clock.advance("6d")
    sandbox.segment.ingest([_track("returned_late", "Shoes Returned")])
    assert members(sandbox, text) == {"returned_fast"}
    # "did not return within 5 days": the negated step
    negated = ("event('Shoes Bought').where( NOT event('Shoes Returned').within(parent: 5 days).count() >= 1 )"
               ".count() >= 1")
    assert members(sandbox, negated) == {"returned_late", "returned_before"}


def test_a_funnel_step_can_match_a_property_of_its_parent(sandbox: Sandbox) -> None:
    text = ("event('Product Added').where( event('Order Completed').where( property('sku') = "
            "property(parent: 'sku') ).within(parent: 1 day).count() >= 1 ).count() >= 1")
    sandbox.segment.ingest([_track("same", "Product Added", sku="s1"), _track("other", "Product Added", sku="s1")])
    sandbox.clock.advance("1h")
    sandbox.segment.ingest([_track("same", "Order Completed", sku="s1"), _track("other", "Order Completed", sku="s2")])
    assert members(sandbox, text) == {"same"}


def test_a_dynamic_reference_compares_an_event_property_with_a_trait(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([{"type": "identify", "userId": "hi", "traits": {"avg_spend": 100, "quote_id": "q1"}},
                            {"type": "identify", "userId": "lo", "traits": {"avg_spend": 10, "quote_id": "q9"}},
                            _track("hi", "Shoes Bought", price=150), _track("lo", "Shoes Bought", price=5),
                            _track("hi", "Quote Generated", quote_id="q0"),
                            _track("lo", "Quote Generated", quote_id="q9")])
    assert members(sandbox, "event('Shoes Bought').where( property('price') >= trait('avg_spend') ).within(30 days)"
                            ".count() >= 1") == {"hi"}
    assert members(sandbox, "event('Quote Generated').where(property('quote_id') = trait('quote_id')).count() >= 1"
                   ) == {"lo"}


def test_a_nested_event_condition_without_parent_is_about_the_profile(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([_track("u1", "A"), _track("u1", "B"), _track("u2", "A")])
    assert members(sandbox, "event('A').where(event('B').count() >= 1).count() >= 1") == {"u1"}


def test_with_backfill_off_only_events_received_since_creation_count_but_traits_do(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([_track("old", "Clicked"), {"type": "identify", "userId": "old", "traits": {"vip": True}}])
    sandbox.clock.advance("1h")
    created = iso(sandbox.clock.now())
    sandbox.segment.ingest([_track("new", "Clicked")])
    assert members(sandbox, "event('Clicked').count() >= 1", since=created) == {"new"}
    assert members(sandbox, "event('Clicked').count() >= 1") == {"old", "new"}
    assert members(sandbox, "trait('vip') = true", since=created) == {"old"}


def test_events_of_a_merged_profile_follow_it(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([{"type": "track", "anonymousId": "anon", "event": "Viewed"},
                            _track("u", "Viewed")])
    assert evaluate(sandbox, "event('Viewed').count()", "trait") == {"anon": 1, "u": 1}
    sandbox.segment.ingest([{"type": "identify", "userId": "u", "anonymousId": "anon"}])
    assert evaluate(sandbox, "event('Viewed').count()", "trait") == {"u": 2}


def test_realtime_evaluation_sees_the_batch_being_ingested(sandbox: Sandbox) -> None:
    evaluator = Evaluator(sandbox.store)
    query = check_definition("event('Signed Up').count() >= 1")
    seen: list[dict] = []

    def listener(messages: list[dict], conn: object) -> None:
        touched = sorted({m["_profile"] for m in messages if "_profile" in m})
        seen.append(evaluator.evaluate(query, at=sandbox.clock.now(), profile_ids=touched, conn=conn))

    sandbox.segment.tracking.listeners.append(listener)
    sandbox.segment.ingest([_track("u", "Signed Up")])
    profile = sandbox.engage.resolve("user_id:u")
    assert seen == [{profile: True}]


def test_a_session_window_counts_the_current_session_and_resets_after_the_gap(sandbox: Sandbox) -> None:
    text = "event('Page Viewed').expires_after(1 hour).count()"

    def view() -> None:
        sandbox.segment.ingest([{"type": "page", "userId": "u", "name": "Home"}])

    view()
    sandbox.clock.advance("30m")
    view()
    assert evaluate(sandbox, text, "trait") == {"u": 2}
    sandbox.clock.advance("59m")
    assert evaluate(sandbox, text, "trait") == {"u": 2}
    sandbox.clock.advance("2m")  # an hour without a view: the session expired
    assert evaluate(sandbox, text, "trait") == {"u": 0}
    view()  # a new session starts from this view only
    assert evaluate(sandbox, text, "trait") == {"u": 1}
    sandbox.clock.advance("50m")
    view()
    assert evaluate(sandbox, text, "trait") == {"u": 2}
    assert evaluate(sandbox, "event('Page Viewed').expires_after(1 hour).count() >= 2") == {"u": True}


def test_a_reducer_inside_where_is_evaluated_per_profile(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([_track("fan", "Viewed", color="red"), _track("fan", "Viewed", color="red"),
                            _track("fan", "Bought"), _track("other", "Viewed", color="blue"),
                            _track("other", "Bought")])
    text = "event('Bought').where( event('Viewed').mode(property('color'), 2) = 'red' ).count() >= 1"
    assert members(sandbox, text) == {"fan"}
    text = "event('Bought').where( event('Viewed').last(property('color')) = 'blue' ).count() >= 1"
    assert members(sandbox, text) == {"other"}


def test_any_reads_each_users_filtered_events(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([{"type": "group", "userId": "u1", "groupId": "big"},
                            {"type": "group", "userId": "u2", "groupId": "small"},
                            _track("u1", "Order Completed", total=900), _track("u2", "Order Completed", total=90)])
    assert evaluate(sandbox, "ANY event('Order Completed').where(property('total') > 500).count() >= 1") == {
        "big": True, "small": False}


_EVENT = st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(["Bought", "Viewed"]),
                   st.integers(0, 200), st.integers(0, 24 * 20))


@settings(max_examples=25, deadline=None)
@given(events=st.lists(_EVENT, max_size=25), name=st.sampled_from(["Bought", "Viewed"]), price=st.integers(0, 200),
       days=st.integers(1, 15), at_least=st.integers(0, 3))
def test_counts_with_where_and_within_match_a_direct_count(events: list, name: str, price: int, days: int,
                                                           at_least: int) -> None:
    with Sandbox() as sandbox:
        now = sandbox.clock.now()
        messages = [{**_track(user, event, price=amount), "timestamp": iso(now - timedelta(hours=hours))}
                    for user, event, amount, hours in events]
        messages += [{"type": "identify", "userId": user} for user in ("u1", "u2", "u3")]
        sandbox.segment.ingest(messages)
        text = f"event('{name}').where(property('price') >= {price}).within({days} days).count() >= {at_least}"
        expected = {user for user in ("u1", "u2", "u3")
                    if sum(1 for u, e, amount, hours in events
                           if u == user and e == name and amount >= price and hours <= days * 24) >= at_least}
        assert members(sandbox, text) == expected
        counts = evaluate(sandbox, f"event('{name}').where(property('price') >= {price}).within({days} days).count()",
                          "trait")
        assert {u for u, n in counts.items() if n >= at_least} == expected


def test_since_may_be_any_iso_spelling_of_the_instant(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([_track("old", "Clicked")])
    sandbox.clock.advance("2h")
    sandbox.segment.ingest([_track("new", "Clicked")])
    assert members(sandbox, "event('Clicked').count() >= 1", since="2026-01-01T01:00:00+00:00") == {"new"}
    assert members(sandbox, "event('Clicked').count() >= 1", since="2026-01-01T02:00:00+02:00") == {"old", "new"}

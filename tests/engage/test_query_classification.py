"""Realtime vs batch (SPEC.md §2 "Engage"), references between definitions, and audience cycles."""
import pytest

from emulator.segment.engage.durations import Duration
from emulator.segment.engage.query import CYCLE_MESSAGE, check_definition, detect_cycle, parse

REALTIME_AUDIENCES = [
    "event('Purchased').count() >= 1",
    "event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1",
    "NOT ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
    "trait('email').contains('@') AND event('Motivation Submitted').count() >= 1",
    "trait('birthday').within_next(7 days)",
    # a nested event condition without parent: is a plain condition on the profile, not a funnel
    "event('A').where(event('B').count() >= 1).count() >= 1",
]


@pytest.mark.parametrize("text", REALTIME_AUDIENCES)
def test_audience_without_funnel_between_dynamic_reference_or_account_junction_is_realtime(text):
    query = check_definition(text, "audience")
    assert query.is_batch is False
    assert query.batch_reasons == ()


@pytest.mark.parametrize("text,reason", [
    ("event('Shoes Bought').where(event('Shoes Returned').within(parent: 5 days).count() >= 1).count() >= 1",
     "funnel: within(parent: 5 days)"),
    ("event('A').where(event('B').where(property('sku') = property(parent: 'sku')).count() >= 1).count() >= 1",
     "funnel: property(parent: 'sku')"),
    ("event('A').between(7 days, 10 days).count() >= 1", "between window: between(7 days, 10 days)"),
    ("event('Quote Generated').where(property('quote_id') = trait('quote_id')).count() >= 1",
     "dynamic reference: trait('quote_id') inside where()"),
    ("ANY event('Shoes Bought').count() >= 1", "account-level ANY (ANY/ALL audiences are computed in batch)"),
    ("ALL NOT event('Shoes Bought').count() >= 1", "account-level ALL (ANY/ALL audiences are computed in batch)"),
])
def test_audience_that_needs_batch_says_why(text, reason):
    query = check_definition(text, "audience")
    assert query.is_batch is True
    assert reason in query.batch_reasons


def test_every_reason_is_listed_once():
    query = parse("event('Shoes Bought').where( property('price') >= trait('avg_spend') AND "
                  "event('Shoes Returned').within(parent: 5 days).count() >= 1 ).between(1 day, 30 days).count() >= 1 "
                  "AND event('C').where(property('x') = trait('avg_spend')).count() >= 1")
    assert query.batch_reasons == ("between window: between(1 day, 30 days)",
                                   "dynamic reference: trait('avg_spend') inside where()",
                                   "funnel: within(parent: 5 days)")


def test_definition_can_force_batch():
    query = check_definition("event('Purchased').count() >= 1", "audience", force_batch=True)
    assert query.is_batch is True
    assert query.batch_reasons == ("forced by the definition (batch: true)",)


def test_computed_trait_counter_without_window_is_realtime():
    assert check_definition("event('Shoes Bought').count()", "trait").is_batch is False


def test_computed_trait_with_session_window_is_realtime():
    # docs src/unify/Traits/computed-traits.md: "Computed traits that use session windows are always created as
    # real-time computations."
    query = check_definition("event('Page Viewed').expires_after(30 seconds).count()", "trait")
    assert query.is_batch is False
    assert query.windows == (Duration(30, "second"),)


def test_computed_trait_with_sliding_window_is_batch_as_segment_documents():
    # Same page: "Those that use sliding windows are created as batch-based computations and do not receive
    # real-time updates." The real service wins over SPEC.md's shorter list.
    query = check_definition("event('Shoes Bought').within(30 days).avg(property('spend'))", "trait")
    assert query.is_batch is True
    assert query.batch_reasons == ("computed trait with a sliding window: within(30 days)",)


def test_same_window_on_an_audience_stays_realtime_with_a_clock_window():
    query = check_definition("event('Shoes Bought').within(30 days).count() >= 1", "audience")
    assert query.is_batch is False
    assert query.windows == (Duration(30, "day"),)


# --- references and cycles ----------------------------------------------------------------------------------------

def _defs(**texts):
    return {key: parse(text) for key, text in texts.items()}


def test_audience_reference_is_reported_by_key():
    assert parse("trait('vip_buyers') = true AND trait('address.city') = 'Paris'").references == (
        "vip_buyers", "address")


def test_no_cycle_when_references_form_a_chain():
    assert detect_cycle(_defs(a="trait('b') = true", b="trait('c') = true", c="trait('plan') = 'pro'")) is None


def test_cycle_between_two_audiences_is_found_with_its_path():
    assert detect_cycle(_defs(a="trait('b') = true", b="trait('a') = true")) == ["a", "b", "a"]


def test_longer_cycle_through_a_where_filter_is_found():
    defs = _defs(a="trait('b') = true",
                 b="event('x').where(property('p') = trait('c')).count() >= 1",
                 c="NOT trait('a') = true",
                 d="trait('a') = true")
    assert detect_cycle(defs) == ["a", "b", "c", "a"]


def test_audience_referencing_itself_is_a_cycle():
    assert detect_cycle(_defs(a="trait('a') = true OR event('x').count() >= 1")) == ["a", "a"]


def test_cycle_message_is_the_one_segment_gives():
    assert CYCLE_MESSAGE == "The audience would create a cycle by referencing another audience"


@pytest.mark.parametrize("text,account_level", [("ANY event('x').count() >= 1", True),
                                                ("trait('a') = 1 AND ALL trait('b') = 1", True),
                                                ("event('x').count() >= 1", False)])
def test_query_says_whether_it_is_account_level(text, account_level):
    assert parse(text).account_level is account_level

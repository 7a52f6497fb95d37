"""Engage evaluation of trait conditions: every comparator true for one population and false for another,
junctions, audience references, identifier rules, account-level ANY/ALL, and clear refusals."""
from __future__ import annotations

import pytest

from emulator import Sandbox
from emulator.segment.engage.compute import Evaluator
from emulator.segment.engage.definitions import DEFAULT_EXTERNAL_IDS as DEFAULT_EXTERNAL_ID_TYPES
from emulator.segment.engage.query import QueryError, check_definition, parse

from engage.compute_support import evaluate, members


@pytest.fixture
def people(sandbox: Sandbox) -> Sandbox:
    # the sandbox clock starts at 2026-01-01T00:00:00.000Z
    sandbox.segment.ingest([
        {"type": "identify", "userId": "a", "traits": {
            "plan": "pro", "spend": 250, "email": "a@shop.com", "created": "2025-12-20T00:00:00Z",
            "renewal": "2026-01-05T00:00:00Z", "vip": True, "address": {"city": "Oslo"}, "score": 0.2}},
        {"type": "identify", "userId": "b", "traits": {
            "plan": "free", "spend": 50, "email": "b@mail.org", "created": "2024-01-01T00:00:00Z",
            "renewal": "2026-03-01T00:00:00Z", "vip": False, "address": {"city": "Rome"}, "score": "0.9"}},
        {"type": "track", "userId": "c", "event": "Signed Up"},
    ])
    return sandbox


# (definition, the users for whom it is true); each is false for the others of the population above
TRAIT_CASES = [
    ("trait('plan') = 'pro'", {"a"}),
    ("trait('plan') == 'free'", {"b"}),
    ("trait('plan').equals('pro')", {"a"}),
    ("trait('plan').eq('pro')", {"a"}),  # deprecated name
    ("trait('plan') != 'pro'", {"b"}),  # docs: differs is false when the value is absent (c)
    ("trait('plan').differs('free')", {"a"}),
    ("trait('spend') > 100", {"a"}),
    ("trait('spend') > 250", set()),
    ("trait('spend') >= 250", {"a"}),
    ("trait('spend').at_least(50)", {"a", "b"}),
    ("trait('spend') < 100", {"b"}),
    ("trait('spend') <= 50", {"b"}),
    ("trait('spend').less_than(50)", set()),
    ("trait('score') <= .20", {"a"}),  # a string '0.9' is not a number
    ("trait('plan').exists()", {"a", "b"}),
    ("trait('plan').absent()", {"c"}),
    ("trait('email').contains('@shop', '@nowhere')", {"a"}),
    ("trait('email').contains(['@mail', '@shop'])", {"a", "b"}),
    ("trait('email').omits('@shop')", {"b", "c"}),
    ("trait('email').starts_with('a@')", {"a"}),
    ("trait('email').ends_with('.org')", {"b"}),
    ("trait('plan').one_of('pro', 'team')", {"a"}),
    ("trait('plan').none_of('pro', 'team')", {"b"}),
    ("trait('created').before_date(2025-01-01)", {"b"}),
    ("trait('created').after_date('2025-06-01T00:00:00Z')", {"a"}),
    ("trait('created').within_last(30 days)", {"a"}),
    ("trait('created').before_last(30 days)", {"b"}),
    ("trait('renewal').within_next(7 days)", {"a"}),
    ("trait('renewal').after_next(30 days)", {"b"}),
    ("trait('renewal').within_next(24 hours)", set()),
    ("trait('vip') = true", {"a"}),
    ("trait('vip') = 'true'", {"a"}),  # the docs compare trait('VIP') = 'true'
    ("trait('vip') = false", {"b"}),
    ("trait('address.city') = 'Oslo'", {"a"}),
    ("literal(3) > 2", {"a", "b", "c"}),
    # junctions: AND binds tighter than OR; NOT of a missing value is true
    ("trait('plan') = 'pro' OR trait('plan') = 'free' AND trait('spend') > 100", {"a"}),
    ("(trait('plan') = 'pro' OR trait('plan') = 'free') AND trait('spend') < 100", {"b"}),
    ("NOT trait('plan') = 'pro'", {"b", "c"}),
    ("NOT (trait('plan').exists() AND trait('spend') > 200)", {"b", "c"}),
]


@pytest.mark.parametrize("text,expected", TRAIT_CASES)
def test_each_trait_comparator_selects_exactly_the_profiles_it_describes(people: Sandbox, text: str,
                                                                          expected: set[str]) -> None:
    result = evaluate(people, text)
    assert set(result) == {"a", "b", "c"}
    assert {user for user, member in result.items() if member} == expected


def test_an_audience_is_referenced_by_its_key_as_a_trait(people: Sandbox) -> None:
    a = people.engage.resolve("user_id:a")
    b = people.engage.resolve("user_id:b")
    people.engage.set_trait(a, "big_spenders", True, "audience")
    people.engage.set_trait(b, "big_spenders", False, "audience")
    assert members(people, "trait('big_spenders') = true") == {"a"}
    assert members(people, "trait('big_spenders') = 'true' AND trait('plan') = 'pro'") == {"a"}
    assert members(people, "NOT trait('big_spenders') = true") == {"b", "c"}


def test_a_computed_trait_value_is_compared_like_any_trait(people: Sandbox) -> None:
    people.engage.set_trait(people.engage.resolve("user_id:b"), "orders_30d", 4, "computed_trait")
    assert members(people, "trait('orders_30d') >= 3") == {"b"}


def test_a_trait_definition_copies_the_value_with_its_json_type(people: Sandbox) -> None:
    assert evaluate(people, "trait('address')", "trait") == {"a": {"city": "Oslo"}, "b": {"city": "Rome"}, "c": None}
    assert evaluate(people, "trait('vip')", "trait") == {"a": True, "b": False, "c": None}


def test_profiles_without_an_allowed_identifier_are_not_members(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([{"type": "identify", "anonymousId": "anon-1", "traits": {"plan": "pro"}},
                            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}])
    assert members(sandbox, "trait('plan') = 'pro'") == {"anon-1", "u1"}
    assert evaluate(sandbox, "trait('plan') = 'pro'", external_id_types=DEFAULT_EXTERNAL_ID_TYPES) == {
        "anon-1": False, "u1": True}
    assert evaluate(sandbox, "trait('plan')", "trait", external_id_types=DEFAULT_EXTERNAL_ID_TYPES) == {
        "anon-1": None, "u1": "pro"}
    assert members(sandbox, "trait('plan') = 'pro'",
                   external_id_types=DEFAULT_EXTERNAL_ID_TYPES + ("anonymous_id",)) == {"anon-1", "u1"}


def test_only_the_profiles_asked_for_are_evaluated_and_merged_ids_are_skipped(people: Sandbox) -> None:
    evaluator = Evaluator(people.store)
    query = check_definition("trait('plan').exists()")
    a = people.engage.resolve("user_id:a")
    assert evaluator.evaluate(query, at=people.clock.now(), profile_ids=[a, a, "use_nobody"]) == {a: True}
    assert evaluator.evaluate(query, at=people.clock.now(), profile_ids=[]) == {}


def test_evaluation_reads_uncommitted_rows_through_the_connection_it_is_given(people: Sandbox) -> None:
    evaluator = Evaluator(people.store)
    query = check_definition("trait('plan') = 'gold'")
    a = people.engage.resolve("user_id:a")
    with people.store.transaction() as conn:
        conn.execute("UPDATE engage_traits SET value = '\"gold\"' WHERE profile_id = ? AND key = 'plan'", (a,))
        assert evaluator.evaluate(query, at=people.clock.now(), profile_ids=[a], conn=conn) == {a: True}
        conn.execute("UPDATE engage_traits SET value = '\"pro\"' WHERE profile_id = ? AND key = 'plan'", (a,))


def test_compiled_statement_is_cached_per_query(people: Sandbox) -> None:
    evaluator = Evaluator(people.store)
    query = check_definition("trait('plan') = 'pro'")
    assert evaluator.compile(query) is evaluator.compile(query)
    assert evaluator.compile(query, realtime=True) is not evaluator.compile(query)


@pytest.fixture
def accounts(sandbox: Sandbox) -> Sandbox:
    sandbox.segment.ingest([
        {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"tier": "gold"}},
        {"type": "group", "userId": "u2", "groupId": "acme"},
        {"type": "group", "userId": "u3", "groupId": "initech", "traits": {"tier": "silver"}},
        {"type": "group", "userId": "u4", "groupId": "initech"},
        {"type": "track", "userId": "u1", "event": "Shoes Bought"},
        {"type": "track", "userId": "u3", "event": "Shoes Bought"},
        {"type": "track", "userId": "u4", "event": "Shoes Bought"},
        {"type": "identify", "userId": "u3", "traits": {"total_spend": 500}},
        {"type": "identify", "userId": "u4", "traits": {"total_spend": 300}},
    ])
    return sandbox


def test_any_selects_accounts_with_at_least_one_matching_user(accounts: Sandbox) -> None:
    assert evaluate(accounts, "ANY event('Shoes Bought').count() >= 1") == {"acme": True, "initech": True}
    assert evaluate(accounts, "ANY trait('total_spend') > 400") == {"acme": False, "initech": True}


def test_all_selects_accounts_whose_every_user_matches(accounts: Sandbox) -> None:
    assert evaluate(accounts, "ALL ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )") == {
        "acme": False, "initech": True}
    assert evaluate(accounts, "ALL NOT event('Shoes Bought').count() >= 1") == {"acme": False, "initech": False}


def test_account_traits_combine_with_any(accounts: Sandbox) -> None:
    assert evaluate(accounts, "ANY event('Shoes Bought').count() >= 1 AND trait('tier') = 'gold'") == {
        "acme": True, "initech": False}


@pytest.mark.parametrize("text,kind,words,column", [
    ("entity('orders').count() >= 1", "audience", "entity() belongs to Linked Audiences", 1),
    ("event('Viewed').mode(property('tags') as array, 2)", "trait", "mode(... as array) is not supported", 1),
])
def test_what_cannot_be_evaluated_is_refused_by_name(sandbox: Sandbox, text: str, kind: str, words: str,
                                                     column: int) -> None:
    query = parse(text, kind)  # check_definition already refuses entity(); the evaluator must too
    with pytest.raises(QueryError) as caught:
        Evaluator(sandbox.store).evaluate(query, at=sandbox.clock.now())
    assert words in str(caught.value)
    assert (caught.value.line, caught.value.column) == (1, column)


def test_a_batch_evaluation_is_one_sql_statement_whatever_the_number_of_profiles(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([{"type": "track", "userId": f"u{n}", "event": "Clicked", "properties": {"n": n}}
                            for n in range(50)])
    query = check_definition("event('Clicked').where(property('n') >= 10).count() >= 1 AND NOT trait('x').exists()"
                             " OR event('Clicked').where(event('Clicked').within(parent: 1 day).count() >= 1)"
                             ".count() >= 1")
    evaluator = Evaluator(sandbox.store)
    statements: list[str] = []
    sandbox.store.conn.set_trace_callback(statements.append)
    try:
        result = evaluator.evaluate(query, at=sandbox.clock.now())
    finally:
        sandbox.store.conn.set_trace_callback(None)
    assert len(result) == 50 and sum(result.values()) == 40
    assert len(statements) == 1 and statements[0].startswith("WITH P(pid)")


def test_an_account_whose_users_all_left_is_in_an_all_audience_but_not_in_any(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([{"type": "group", "userId": "u1", "groupId": "empty"},
                            {"type": "group", "userId": "u2", "groupId": "busy"},
                            {"type": "track", "userId": "u2", "event": "Clicked"}])
    sandbox.store.execute("DELETE FROM engage_links WHERE account_id = ?", (sandbox.engage.resolve(
        "group_id:empty", "accounts"),))
    assert evaluate(sandbox, "ALL event('Clicked').count() >= 1") == {"empty": True, "busy": True}
    assert evaluate(sandbox, "ANY event('Clicked').count() >= 1") == {"empty": False, "busy": True}

"""Realtime definitions are re-evaluated only for profiles whose messages could change them: these are the cases
where a message that does not name a definition's event still changes its value, and must not be skipped."""
from emulator import Sandbox


def sandbox_with(*audiences, traits=()):
    return Sandbox(config={"segment": {"audiences": list(audiences), "computed_traits": list(traits)}})


def member_ids(sb, key):
    return sorted(next(x["id"] for x in sb.engage.external_ids(p) if x["type"] == "user_id")
                  for p in sb.engage.computations.members(key))


def track(event, **ids):
    return {"type": "track", "event": event, **ids}


def test_a_new_profile_enters_an_audience_defined_only_by_the_absence_of_an_event():
    never_bought = {"key": "never_bought", "query": "NOT event('Order Completed').count() >= 1"}
    with sandbox_with(never_bought) as sb:
        sb.segment.ingest(track("Product Viewed", userId="u1"))
        assert member_ids(sb, "never_bought") == ["u1"]
        sb.segment.ingest(track("Order Completed", userId="u1"))
        assert member_ids(sb, "never_bought") == []


def test_an_anonymous_profile_enters_when_an_unrelated_event_identifies_it():
    # anonymous profiles are not counted by default: the user_id arriving on "Signed Up" makes the earlier views count
    viewers = {"key": "viewers", "query": "event('Product Viewed').count() >= 1"}
    with sandbox_with(viewers) as sb:
        sb.segment.ingest(track("Product Viewed", anonymousId="anon-1"))
        assert member_ids(sb, "viewers") == []
        sb.segment.ingest(track("Signed Up", anonymousId="anon-1", userId="u1"))
        assert member_ids(sb, "viewers") == ["u1"]


def test_a_merge_brings_the_merged_profiles_events_into_the_audience():
    buyers = {"key": "repeat_buyers", "query": "event('Order Completed').count() >= 2"}
    with sandbox_with(buyers) as sb:
        sb.segment.ingest([track("Order Completed", anonymousId="anon-1"), track("Order Completed", userId="u1")])
        assert member_ids(sb, "repeat_buyers") == []
        sb.segment.ingest({"type": "identify", "anonymousId": "anon-1", "userId": "u1"})
        assert member_ids(sb, "repeat_buyers") == ["u1"]


def test_traits_carried_in_the_context_of_a_track_call_move_a_trait_audience():
    pros = {"key": "pros", "query": "trait('plan') = 'pro'"}
    with sandbox_with(pros) as sb:
        sb.segment.ingest({"type": "identify", "userId": "u1", "traits": {"plan": "free"}})
        assert member_ids(sb, "pros") == []
        sb.segment.ingest({**track("Upgraded", userId="u1"), "context": {"traits": {"plan": "pro"}}})
        assert member_ids(sb, "pros") == ["u1"]


def test_an_audience_reading_another_follows_it_in_the_same_request():
    buyers = {"key": "buyers", "query": "event('Order Completed').count() >= 1"}
    vip = {"key": "vip", "query": "trait('buyers') = true AND trait('plan') = 'gold'"}
    with sandbox_with(buyers, vip) as sb:
        sb.segment.ingest({"type": "identify", "userId": "u1", "traits": {"plan": "gold"}})
        assert member_ids(sb, "vip") == []
        sb.segment.ingest(track("Order Completed", userId="u1"))
        assert member_ids(sb, "buyers") == ["u1"] and member_ids(sb, "vip") == ["u1"]


def test_page_and_screen_calls_count_as_page_viewed_and_screen_viewed():
    readers = {"key": "readers", "query": "event('Page Viewed').count() >= 1 OR event('Screen Viewed').count() >= 1"}
    with sandbox_with(readers) as sb:
        sb.segment.ingest([track("Noise", userId="u1"), track("Noise", userId="u2")])
        sb.segment.ingest([{"type": "page", "userId": "u1", "name": "Home"},
                           {"type": "screen", "userId": "u2", "name": "Home"}])
        assert member_ids(sb, "readers") == ["u1", "u2"]


def test_a_computed_trait_follows_only_its_event_and_keeps_its_value_on_other_messages():
    spend = {"key": "total_spend", "query": "event('Order Completed').sum(property('revenue'))"}
    with sandbox_with(traits=[spend]) as sb:
        sb.segment.ingest({**track("Order Completed", userId="u1"), "properties": {"revenue": 30}})
        sb.segment.ingest([track("Product Viewed", userId="u1"),
                           {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}])
        sb.segment.ingest({**track("Order Completed", userId="u1"), "properties": {"revenue": 12}})
        profile = sb.engage.resolve("user_id:u1")
        assert sb.engage.traits(profile)["total_spend"] == 42


# --- differential: after any sequence of messages, realtime membership equals a full evaluation -------------------
from hypothesis import given, settings, HealthCheck, strategies as st  # noqa: E402

AUDIENCES = [
    {"key": "a_twice", "query": "event('A').count() >= 2"},
    {"key": "no_b", "query": "NOT event('B').count() >= 1"},
    {"key": "pro", "query": "trait('plan') = 'pro'"},
    {"key": "pro_reader", "query": "trait('pro') = true AND event('Page Viewed').count() >= 1"},
    {"key": "a_big", "query": "event('A').where(property('n') > 2).count() >= 1 OR trait('plan').exists()"},
    {"key": "anon_ok", "query": "event('B').count() >= 1", "include_anonymous": True},
    {"key": "a_and_pro", "query": "event('A').count() > 1 AND trait('plan') = 'pro'"},
    {"key": "few_a", "query": "event('A').count() <= 1"},
    {"key": "few_a1", "query": "event('A').where(property('n') = 1).count() <= 1 AND event('C').count() >= 1"},
    {"key": "c_or_a3", "query": "event('C').where(property('n') >= 3).count() >= 1 OR "
                                "event('A').where(property('n') = 3).count() >= 2"},
]
_ids = st.fixed_dictionaries({}, optional={"userId": st.sampled_from(["u1", "u2", "u3", "u4", "u5", "u6"]),
                                           "anonymousId": st.sampled_from(["x1", "x2", "x3", "x4"])}).filter(bool)
_message = st.one_of(
    st.builds(lambda ids, e, n: {"type": "track", "event": e, "properties": {"n": n}, **ids},
              _ids, st.sampled_from(["A", "B", "C"]), st.integers(0, 4)),
    st.builds(lambda ids, plan: {"type": "identify", "traits": {"plan": plan} if plan else {}, **ids},
              _ids, st.sampled_from(["pro", "free", None])),
    st.builds(lambda ids: {"type": "page", "name": "Home", **ids}, _ids),
    st.builds(lambda ids, plan, n: {"type": "track", "event": "C", "context": {"traits": {"plan": plan}},
                                    "properties": {"n": n}, **ids},
              _ids, st.sampled_from(["pro", "free"]), st.integers(0, 4)),
    st.builds(lambda ids, prev: {"type": "alias", "previousId": prev, **ids}, _ids, st.sampled_from(["x1", "u2"])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_message, min_size=1, max_size=16), min_size=1, max_size=5))
def test_realtime_membership_always_equals_a_full_evaluation(batches):
    with sandbox_with(*AUDIENCES) as sb:
        computations = sb.engage.computations
        for batch in batches:
            sb.segment.ingest(batch)
        now = sb.clock.now()
        for definition in computations.definitions.all():
            full = computations.evaluator.evaluate(definition.query, at=now,
                                                   external_id_types=definition.external_id_types)
            assert sorted(p for p, member in full.items() if member) == computations.members(definition.key), \
                definition.key


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 5), st.sampled_from([">=", ">", "<=", "<", "=", "!="]),
       st.sampled_from(["0", "1", "2", "2.5", "3", "-1", "0.5"]))
def test_a_count_compared_with_any_number_answers_as_the_full_count(events, sign, number):
    # counting stops early (at floor(N)+1 matches) for a count compared with a literal: same answer as Python's
    with sandbox_with({"key": "probe", "query": f"event('A').count() {sign} {number}"}) as sb:
        sb.segment.ingest([track("A", userId="u1") for _ in range(events)] + [track("B", userId="u1")])
        expected = {">=": events >= float(number), ">": events > float(number), "<=": events <= float(number),
                    "<": events < float(number), "=": events == float(number), "!=": events != float(number)}[sign]
        assert member_ids(sb, "probe") == (["u1"] if expected else [])


def test_a_store_written_before_migration_7_is_upgraded_with_its_events_names(tmp_path):
    import sqlite3

    from emulator.schema import MIGRATIONS

    path = str(tmp_path / "old.db")
    with Sandbox(path=path) as sb:
        sb.segment.ingest([track("Viewed", userId="u1"), track("Viewed", userId="u1"),
                           {"type": "page", "userId": "u1", "name": "Home"}])
    with sqlite3.connect(path) as conn:  # back to the schema as it was before migration 7
        conn.executescript("DROP INDEX engage_event_profiles_name;"
                           " ALTER TABLE engage_event_profiles DROP COLUMN name;"
                           " ALTER TABLE engage_event_profiles DROP COLUMN timestamp;"
                           " DELETE FROM schema_version WHERE version = 7;")
    viewers = {"key": "viewers", "query": "event('Viewed').count() >= 2 AND event('Page Viewed').count() >= 1"}
    with Sandbox(path=path, config={"segment": {"audiences": [viewers]}}) as sb:
        assert sb.store.version == max(version for version, _, _ in MIGRATIONS)
        assert member_ids(sb, "viewers") == ["u1"]


def test_in_a_large_batch_only_events_passing_a_filter_move_profiles_and_all_of_them_do():
    big_orders = {"key": "big_orders", "query": "event('Order Completed').where(property('revenue') > 100).count() >= 1"}
    few_small = {"key": "few_small", "query": "event('Order Completed').where(property('revenue') <= 100).count() <= 1"
                                              " AND event('Order Completed').count() >= 1"}
    with sandbox_with(big_orders, few_small) as sb:
        users = [f"u{i}" for i in range(8)]
        sb.segment.ingest([{**track("Order Completed", userId=u), "properties": {"revenue": 50}} for u in users])
        assert member_ids(sb, "big_orders") == [] and member_ids(sb, "few_small") == sorted(users)
        sb.segment.ingest([{**track("Order Completed", userId=u), "properties": {"revenue": 500 if i % 2 else 20}}
                           for i, u in enumerate(users)])
        assert member_ids(sb, "big_orders") == sorted(users[1::2])
        assert member_ids(sb, "few_small") == sorted(users[1::2])

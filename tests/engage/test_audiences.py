"""Audiences and computed traits as a user of Engage sees them: membership, timing, and what is sent."""
import pytest

from emulator import Sandbox
from emulator.config import ConfigError
from emulator.segment.engage.definitions import CYCLE_MESSAGE, DefinitionError

SPACE = "spa_sandbox"


def sandbox_with(audiences=(), traits=(), **segment):
    return Sandbox(config={"segment": {"audiences": list(audiences), "computed_traits": list(traits), **segment}})


def viewed(user, n=1, event="Product Viewed", **properties):
    return [{"type": "track", "userId": user, "event": event, "properties": dict(properties)} for _ in range(n)]


def members(sb, key):
    return sorted(next(x["id"] for x in sb.engage.external_ids(p) if x["type"] == "user_id")
                  for p in sb.engage.computations.members(key))


def sent(sb, key=None, destination=None):
    return list(reversed(sb.engage.computations.messages(definition_key=key, destination=destination, limit=1000)))


BROWSERS = {"key": "browsers", "query": "event('Product Viewed').count() >= 2",
            "destinations": {"braze": {"identify": True, "track": True}}}


def test_a_track_call_moves_a_profile_into_a_realtime_audience_before_the_next_request():
    with sandbox_with([BROWSERS]) as sb, sb.segment_client("sandbox-write-key") as client:
        client.post("/v1/batch", json={"batch": viewed("u1")})
        assert members(sb, "browsers") == []
        client.post("/v1/track", json={"userId": "u1", "event": "Product Viewed"})
        assert members(sb, "browsers") == ["u1"]
        body = client.get("/_emulator/segment/engage/audiences/browsers/members").json()
        assert body["count"] == 1


def test_advancing_the_clock_past_a_within_window_exits_the_audience_and_sends_audience_exited():
    audience = {"key": "recent_viewers", "query": "event('Product Viewed').within(7 days).count() >= 1",
                "destinations": {"braze": {"track": True}}}
    with sandbox_with([audience]) as sb:
        sb.segment.ingest(viewed("u1"))
        assert members(sb, "recent_viewers") == ["u1"]
        sb.clock.advance("6d")
        assert members(sb, "recent_viewers") == ["u1"]
        sb.clock.advance("25h")
        assert members(sb, "recent_viewers") == []
        events = [(m["event"], m["properties"]["recent_viewers"]) for m in sent(sb, "recent_viewers")]
        assert events == [("Audience Entered", True), ("Audience Exited", False)]
        assert sb.engage.traits(sb.engage.resolve("user_id:u1"))["recent_viewers"] is False


def test_a_batch_funnel_audience_changes_only_at_the_next_8_hour_run():
    funnel = {"key": "viewed_then_bought",
              "query": "event('Product Viewed').where(event('Order Completed').within(parent: 1 days).count() >= 1)"
                       ".count() >= 1"}
    with sandbox_with([funnel]) as sb:
        definition = sb.engage.computations.definitions.by_key("audience", "viewed_then_bought")
        assert definition.is_batch
        sb.segment.ingest(viewed("u1") + viewed("u1", event="Order Completed"))
        assert members(sb, "viewed_then_bought") == []  # realtime would have it by now
        sb.clock.advance("7h")
        assert members(sb, "viewed_then_bought") == []
        sb.clock.advance("1h")
        assert members(sb, "viewed_then_bought") == ["u1"]


def test_historical_backfill_on_and_off_give_different_first_syncs():
    with Sandbox() as sb:
        sb.segment.ingest(viewed("old", n=2))
        sb.clock.advance("1h")
        on = sb.engage.computations.create("audience", key="with_history", query=BROWSERS["query"])
        off = sb.engage.computations.create("audience", key="without_history", query=BROWSERS["query"], backfill=False)
        assert members(sb, "with_history") == ["old"]
        assert members(sb, "without_history") == []
        sb.segment.ingest(viewed("new", n=2))
        assert members(sb, "without_history") == ["new"]
        assert on.backfill and not off.backfill


def test_identify_mode_payload_matches_segments_documented_shape():
    audience = {"key": "first_time_shopper", "query": "event('Order Completed').count() = 1",
                "destinations": {"braze": {"identify": True}}}
    with sandbox_with([audience]) as sb:
        sb.segment.ingest([{"type": "identify", "userId": "u123"}] + viewed("u123", event="Order Completed"))
        [message] = sent(sb, "first_time_shopper")
        definition = sb.engage.computations.definitions.by_key("audience", "first_time_shopper")
        assert definition.id.startswith("aud_")
        assert message["type"] == "identify" and message["userId"] == "u123"
        assert message["traits"] == {"first_time_shopper": True}
        assert message["context"] == {"personas": {
            "computation_class": "audience", "computation_id": definition.id, "computation_key": "first_time_shopper",
            "namespace": SPACE, "space_id": SPACE}}
        assert message["integrations"] == {"All": False, "Braze Cloud Mode (Actions)": True}
        assert message["messageId"].startswith("personas_")
        sb.segment.ingest(viewed("u123", event="Order Completed"))
        exit_message = sent(sb, "first_time_shopper")[-1]
        assert exit_message["traits"] == {"first_time_shopper": False}


def test_track_mode_payload_carries_the_audience_key_and_email_in_context_traits():
    audience = {"key": "vip", "query": "trait('plan') = 'vip'", "destinations": {"braze": {"track": True}}}
    with sandbox_with([audience]) as sb:
        sb.segment.ingest({"type": "identify", "userId": "u1", "traits": {"plan": "vip", "email": "ana@example.com"}})
        [message] = sent(sb, "vip")
        assert message["event"] == "Audience Entered"
        assert message["properties"] == {"audience_key": "vip", "vip": True}
        assert message["context"]["traits"] == {"email": "ana@example.com"}
        assert "traits" not in message


def test_enter_and_exit_event_names_are_configurable_per_connection():
    audience = {"key": "vip", "query": "trait('plan') = 'vip'",
                "destinations": {"braze": {"track": True, "enter_event": "VIP In", "exit_event": "VIP Out"}}}
    with sandbox_with([audience]) as sb:
        sb.segment.ingest({"type": "identify", "userId": "u1", "traits": {"plan": "vip"}})
        sb.segment.ingest({"type": "identify", "userId": "u1", "traits": {"plan": "basic"}})
        assert [m["event"] for m in sent(sb, "vip")] == ["VIP In", "VIP Out"]


def test_first_sync_sends_one_call_per_identifier_later_syncs_one():
    with Sandbox() as sb:
        sb.segment.ingest([{"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}},
                           {"type": "identify", "userId": "u1", "traits": {"email": "b@example.com"}}]
                          + viewed("u1", n=2))
        sb.engage.computations.create("audience", key="browsers", query=BROWSERS["query"],
                                      destinations={"braze": {"identify": True}})
        first = sent(sb, "browsers")
        assert [m["traits"].get("email") for m in first] == [None, "a@example.com", "b@example.com"]
        sb.segment.ingest(viewed("u2", n=2) + [{"type": "identify", "userId": "u2", "traits": {"email": "c@example.com"}}])
        later = sent(sb, "browsers")[len(first):]
        assert len(later) == 1 and later[0]["userId"] == "u2"


def test_a_computed_trait_is_sent_only_when_its_value_changes():
    trait = {"key": "last_viewed", "query": "event('Product Viewed').last(property('sku'))",
             "destinations": {"braze": {"identify": True, "track": True}}}
    with sandbox_with(traits=[trait]) as sb:
        sb.segment.ingest(viewed("u1", sku="a"))
        sb.segment.ingest(viewed("u1", sku="a"))
        sb.segment.ingest(viewed("u1", sku="b"))
        messages = sent(sb, "last_viewed")
        identifies = [m["traits"]["last_viewed"] for m in messages if m["type"] == "identify"]
        tracks = [m for m in messages if m["type"] == "track"]
        assert identifies == ["a", "b"]
        assert tracks[-1]["event"] == "Trait Computed"
        assert tracks[-1]["properties"] == {"trait_key": "last_viewed", "last_viewed": "b"}
        assert tracks[-1]["context"]["personas"]["computation_class"] == "trait"
        assert tracks[-1]["context"]["personas"]["computation_id"].startswith("tra_")
        assert sb.engage.traits(sb.engage.resolve("user_id:u1"), cls="computed_trait") == {"last_viewed": "b"}


def test_an_audience_can_read_another_audience_and_a_cycle_is_refused():
    with Sandbox() as sb:
        sb.engage.computations.create("audience", key="a", query="event('X').count() >= 1")
        sb.engage.computations.create("audience", key="b", query="trait('a') = true")
        sb.segment.ingest(viewed("u1", event="X"))
        assert members(sb, "b") == ["u1"]
        with pytest.raises(DefinitionError) as refused:
            sb.engage.computations.update(sb.engage.computations.definitions.by_key("audience", "a").id,
                                          query="trait('b') = true")
        assert CYCLE_MESSAGE in str(refused.value)


def test_a_config_with_a_bad_query_or_a_cycle_is_refused_at_load_with_its_path():
    with pytest.raises(ConfigError) as bad:
        sandbox_with([{"key": "x", "query": "event('A').count() >= "}])
    assert bad.value.path == "segment.audiences[0].query" and "line 1" in str(bad.value)
    with pytest.raises(ConfigError) as cycle:
        sandbox_with([{"key": "a", "query": "trait('b') = true"}, {"key": "b", "query": "trait('a') = true"}])
    assert CYCLE_MESSAGE in str(cycle.value)
    with pytest.raises(ConfigError) as unknown:
        sandbox_with([{"key": "a", "query": "trait('b') = true", "destinations": {"amplitude": True}}])
    assert unknown.value.path == "segment.audiences[0].destinations"


def test_configured_definitions_keep_their_ids_across_reset_and_restart(tmp_path):
    config = {"segment": {"audiences": [BROWSERS]}}
    with Sandbox(path=tmp_path / "s.db", config=config) as sb:
        first_id = sb.engage.computations.definitions.by_key("audience", "browsers").id
        sb.engage.computations.create("audience", key="api_made", query="event('X').count() >= 1")
        sb.reset()
        assert sb.engage.computations.definitions.by_key("audience", "browsers").id == first_id
        assert sb.engage.computations.definitions.by_key("audience", "api_made") is None
    with Sandbox(path=tmp_path / "s.db", config=config) as sb:
        assert sb.engage.computations.definitions.by_key("audience", "browsers").id == first_id


def test_the_engage_debugger_is_served_over_http():
    with sandbox_with([BROWSERS]) as sb:
        sb.segment.ingest(viewed("u1", n=2))
        body = sb.segment_client().get("/_emulator/segment/engage/debugger", params={"key": "browsers"}).json()
        assert [m["type"] for m in body["messages"]] == ["track", "identify"]


def test_a_realtime_audience_reading_another_follows_it_when_the_clock_or_a_batch_run_changes_it():
    config = {"segment": {"audiences": [
        {"key": "recent_buyers", "query": "event('Order Completed').within(7 days).count() >= 1"},
        {"key": "vip", "query": "trait('recent_buyers') = true"},
        {"key": "nightly", "query": "event('Signed Up').count() >= 1", "batch": True},
        {"key": "welcomed", "query": "trait('nightly') = true"}]}}
    with Sandbox(config=config) as sb:
        members = sb.engage.computations.members
        sb.segment.ingest([{"type": "track", "userId": "u1", "event": "Order Completed"},
                           {"type": "track", "userId": "u1", "event": "Signed Up"}])
        assert members("vip") == members("recent_buyers") != [] and members("welcomed") == []
        sb.clock.advance("8d")  # the window closes; the 8-hour batch run comes due
        assert members("recent_buyers") == members("vip") == []
        assert members("welcomed") == members("nightly") != []
        for key in ("vip", "welcomed"):  # what a recompute from scratch finds
            before = members(key)
            sb.engage.computations.run(sb.engage.computations.definitions.by_key("audience", key).id)
            assert members(key) == before


def test_a_member_that_gains_an_external_id_is_synced_again_carrying_it():
    # segment-api.md §2.1: "Re-sync also happens when a new external_id is added to a profile"
    config = {"segment": {"audiences": [{"key": "buyers", "query": "event('Order Completed').count() >= 1",
                                         "destinations": {"braze": {"identify": True}}}]}}
    with Sandbox(config=config) as sb:
        sb.segment.ingest([{"type": "track", "userId": "u1", "event": "Order Completed"},
                           {"type": "track", "userId": "u2", "event": "Viewed"}])
        sent = len(sb.engage.computations.messages())
        sb.segment.ingest([{"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}},
                           {"type": "identify", "userId": "u2", "traits": {"email": "u2@example.com"}}])
        resync = sb.engage.computations.messages()[:len(sb.engage.computations.messages()) - sent]
        assert sorted((m["userId"], m["traits"].get("email") or "") for m in resync) == [("u1", ""),
                                                                                           ("u1", "u1@example.com")]
        assert all(m["traits"]["buyers"] is True for m in resync)  # u2 is in no audience: nothing to re-sync
        sb.segment.ingest([{"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}}])
        assert len(sb.engage.computations.messages()) == sent + len(resync)  # a known id: no re-sync


def test_a_configuration_with_an_audience_and_a_trait_of_the_same_key_is_refused():
    config = {"segment": {"audiences": [{"key": "buyers", "query": "event('A').count() >= 1"}],
                          "computed_traits": [{"key": "buyers", "query": "event('A').count()"}]}}
    with pytest.raises(ConfigError) as refused:
        Sandbox(config=config)
    assert "segment.computed_traits[0].key" in str(refused.value)


def test_a_configuration_change_of_lookback_days_is_applied():
    audience = {"key": "buyers", "query": "event('Order Completed').count() >= 1"}
    with Sandbox(config={"segment": {"audiences": [audience]}}) as sb:
        sb.configure({"segment": {"audiences": [{**audience, "lookback_days": 7}]}})
        assert sb.engage.computations.definitions.by_key("audience", "buyers").lookback_days == 7


@pytest.mark.parametrize("how, resent", [
    ("a new anonymousId (not carried by the payloads)", 0),
    ("an anonymous profile with an email, merged in later", 2),
    ("an anonymous profile with an email, merged in the same batch", 2),
])
def test_a_member_is_synced_again_only_when_the_ids_the_payloads_carry_change(how, resent):
    config = {"segment": {"audiences": [{"key": "buyers", "query": "event('Order Completed').count() >= 1",
                                         "destinations": {"braze": {"identify": True}}}]}}
    with Sandbox(config=config) as sb:
        sb.segment.ingest([{"type": "track", "userId": "u1", "anonymousId": "device-0", "event": "Order Completed"}])
        if how.startswith("an anonymous profile") and how.endswith("later"):
            sb.segment.ingest([{"type": "identify", "anonymousId": "a1", "traits": {"email": "u1@example.com"}}])
        sent = len(sb.engage.computations.messages())
        if how.startswith("a new anonymousId"):
            batch = [{"type": "page", "userId": "u1", "anonymousId": f"device-{n}"} for n in range(1, 4)]
        elif how.endswith("later"):
            batch = [{"type": "track", "userId": "u1", "anonymousId": "a1", "event": "Viewed"}]
        else:
            batch = [{"type": "identify", "anonymousId": "a1", "traits": {"email": "u1@example.com"}},
                     {"type": "track", "userId": "u1", "anonymousId": "a1", "event": "Viewed"}]
        sb.segment.ingest(batch)
        assert len(sb.engage.computations.messages()) - sent == resent


def test_backfill_off_leaves_out_events_received_before_creation_even_at_the_same_instant():
    # a manual clock standing still: the events before and after creation share their receivedAt
    with Sandbox() as sb:
        sb.segment.ingest([{"type": "track", "userId": "old", "event": "Viewed"}])
        sb.engage.computations.create("audience", key="viewers", query="event('Viewed').count() >= 1", backfill=False)
        sb.segment.ingest([{"type": "track", "userId": "new", "event": "Viewed"}])
        members = sb.engage.computations.members("viewers")
        assert members == [sb.engage.profile_id_for("user_id", "new")]


def test_a_computed_trait_cannot_be_connected_to_braze_cohorts():
    trait = {"key": "views", "query": "event('Viewed').count()", "destinations": {"braze_cohorts": True}}
    with pytest.raises(ConfigError) as refused:
        Sandbox(config={"segment": {"computed_traits": [trait]}})
    assert "segment.computed_traits[0].destinations.braze_cohorts" in str(refused.value)
    with Sandbox() as sb, pytest.raises(DefinitionError):
        sb.engage.computations.create("trait", key="views", query="event('Viewed').count()",
                                      destinations={"braze_cohorts": True})


def test_a_configuration_cannot_take_the_key_of_a_definition_made_through_the_api():
    with Sandbox() as sb:
        sb.engage.computations.create("trait", key="views", query="event('Viewed').count()")
        with pytest.raises(ConfigError) as refused:
            sb.configure({"segment": {"audiences": [{"key": "views", "query": "event('Viewed').count() >= 1"}]}})
        assert "segment.audiences[0].key" in str(refused.value)
        assert [d.kind for d in sb.engage.computations.definitions.all()] == ["trait"]  # nothing applied


def test_turning_backfill_off_in_python_clears_its_lookback():
    with Sandbox() as sb:
        created = sb.engage.computations.create("audience", key="buyers", query="event('A').count() >= 1",
                                                lookback_days=5)
        updated = sb.engage.computations.update(created.id, backfill=False)
        assert (updated.backfill, updated.lookback_days) == (False, None)

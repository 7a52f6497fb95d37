"""Identity resolution: messages land on profiles by their external ids, with Unify's limits and priorities."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import Sandbox


def _ids(sandbox: Sandbox, identifier: str) -> set[tuple[str, str]]:
    profile = sandbox.engage.resolve(identifier)
    assert profile is not None, identifier
    return {(row["type"], row["id"]) for row in sandbox.engage.external_ids(profile)}


def test_anonymous_activity_and_identify_land_on_one_profile(sandbox: Sandbox) -> None:
    sandbox.segment.ingest({"type": "track", "event": "Viewed", "anonymousId": "a1"})
    sandbox.segment.ingest({"type": "identify", "anonymousId": "a1", "userId": "u1",
                            "traits": {"email": "jane@example.com", "name": "Jane"}})
    engage = sandbox.engage
    assert engage.profile_ids() == [engage.resolve("user_id:u1")]
    assert _ids(sandbox, "anonymous_id:a1") == {("anonymous_id", "a1"), ("user_id", "u1"),
                                                ("email", "jane@example.com")}
    assert [e.get("event") or e["type"] for e in engage.events(engage.resolve("email:jane@example.com"))] == [
        "Viewed", "identify"]
    assert engage.traits(engage.resolve("user_id:u1")) == {"email": "jane@example.com", "name": "Jane"}


def test_profiles_that_come_to_share_an_id_merge_into_the_older_one(sandbox: Sandbox) -> None:
    sandbox.segment.ingest({"type": "identify", "anonymousId": "a1", "traits": {"plan": "free", "city": "Oslo"}})
    older = sandbox.engage.resolve("anonymous_id:a1")
    sandbox.advance("1h")
    sandbox.segment.ingest({"type": "track", "event": "Clicked", "anonymousId": "a2",
                            "context": {"traits": {"plan": "pro"}}})
    newer = sandbox.engage.resolve("anonymous_id:a2")
    assert older != newer
    sandbox.advance("1h")
    sandbox.segment.ingest({"type": "identify", "userId": "u1", "anonymousId": "a2",
                            "traits": {"email": "x@example.com"}})
    sandbox.segment.ingest({"type": "track", "event": "Bought", "userId": "u1", "anonymousId": "a1"})
    engage = sandbox.engage
    assert engage.profile_ids() == [older]
    assert engage.resolve(newer) == older  # the merged id still finds the profile
    assert engage.profile(newer)["profile_id"] == older
    assert _ids(sandbox, "user_id:u1") == {("anonymous_id", "a1"), ("anonymous_id", "a2"), ("user_id", "u1"),
                                           ("email", "x@example.com")}
    assert [e.get("event") or e["type"] for e in engage.events(older)] == ["identify", "Clicked", "identify",
                                                                           "Bought"]
    # later messages win per key
    assert engage.traits(older) == {"plan": "pro", "city": "Oslo", "email": "x@example.com"}


def test_a_second_user_id_with_a_known_email_gets_its_own_profile(sandbox: Sandbox) -> None:
    # The settings page's worked example: user_id limit 1, email demoted, a new profile for abc456.
    sandbox.segment.ingest({"type": "identify", "userId": "abc123", "traits": {"email": "jane@example1.com"}})
    sandbox.segment.ingest({"type": "identify", "userId": "abc456", "traits": {"email": "jane@example1.com",
                                                                               "name": "J"}})
    engage = sandbox.engage
    first, second = engage.resolve("user_id:abc123"), engage.resolve("user_id:abc456")
    assert first != second and len(engage.profile_ids()) == 2
    assert engage.resolve("email:jane@example1.com") == first
    assert _ids(sandbox, "user_id:abc456") == {("user_id", "abc456")}
    assert engage.traits(second) == {"email": "jane@example1.com", "name": "J"}
    assert len(engage.events(second)) == 1


def test_a_shared_device_does_not_merge_two_known_users(sandbox: Sandbox) -> None:
    ipad = {"device": {"type": "ios", "id": "ipad-1"}}
    sandbox.segment.ingest({"type": "track", "event": "Signed In", "userId": "u1", "context": ipad})
    sandbox.segment.ingest({"type": "track", "event": "Signed In", "userId": "u2", "context": ipad})
    engage = sandbox.engage
    assert engage.resolve("user_id:u1") != engage.resolve("user_id:u2")
    assert engage.resolve("ios.id:ipad-1") == engage.resolve("user_id:u1")
    assert [e["userId"] for e in engage.events(engage.resolve("user_id:u2"))] == ["u2"]


def test_a_raised_user_id_limit_lets_the_profiles_merge() -> None:
    config = {"segment": {"space": {"identity": {"identifiers": {"user_id": {"limit": 2}}}}}}
    with Sandbox(config=config) as sandbox:
        sandbox.segment.ingest({"type": "identify", "userId": "abc123", "traits": {"email": "j@example.com"}})
        sandbox.segment.ingest({"type": "identify", "userId": "abc456", "traits": {"email": "j@example.com"}})
        assert sandbox.engage.resolve("user_id:abc123") == sandbox.engage.resolve("user_id:abc456")
        assert sandbox.config["segment"]["space"]["identity"]["identifiers"]["user_id"] == {"limit": 2, "priority": 1}


def test_the_lowest_priority_identifier_is_the_one_demoted() -> None:
    # anonymous_id ranked above user_id: the new user_id is the id dropped, the event joins a1's profile.
    config = {"segment": {"space": {"identity": {"identifiers": {
        "anonymous_id": {"priority": 1}, "user_id": {"limit": 1, "priority": 9}}}}}}
    with Sandbox(config=config) as sandbox:
        sandbox.segment.ingest({"type": "identify", "userId": "u1", "anonymousId": "a1"})
        sandbox.segment.ingest({"type": "track", "event": "E", "userId": "u2", "anonymousId": "a1"})
        engage = sandbox.engage
        assert engage.resolve("user_id:u2") is None
        assert [e["type"] for e in engage.events(engage.resolve("user_id:u1"))] == ["identify", "track"]


def test_default_limit_of_five_applies_to_other_identifiers(sandbox: Sandbox) -> None:
    for n in range(7):
        sandbox.segment.ingest({"type": "track", "event": "E", "userId": "u1", "anonymousId": f"a{n}"})
    engage = sandbox.engage
    profile = engage.resolve("user_id:u1")
    assert sorted(v for t, v in _ids(sandbox, "user_id:u1") if t == "anonymous_id") == ["a0", "a1", "a2", "a3", "a4"]
    assert engage.resolve("anonymous_id:a5") is None  # demoted: kept off every profile
    assert len(engage.events(profile)) == 7  # the events still land on the user's profile


def test_a_weekly_limit_counts_only_ids_first_seen_that_week() -> None:
    config = {"segment": {"space": {"identity": {"identifiers": {"anonymous_id": {"limit": 2,
                                                                                  "frequency": "weekly"}}}}}}
    with Sandbox(config=config) as sandbox:
        for anon in ("a1", "a2", "a3"):
            sandbox.segment.ingest({"type": "track", "event": "E", "userId": "u1", "anonymousId": anon})
        assert sandbox.engage.resolve("anonymous_id:a3") is None
        sandbox.advance("8d")
        sandbox.segment.ingest({"type": "track", "event": "E", "userId": "u1", "anonymousId": "a4"})
        assert sandbox.engage.resolve("anonymous_id:a4") == sandbox.engage.resolve("user_id:u1")


def test_blocked_values_never_join_profiles() -> None:
    config = {"segment": {"space": {"identity": {"blocked_values": ["anonymous", "/^[0-]*$/"]}}}}
    with Sandbox(config=config) as sandbox:
        sandbox.segment.ingest({"type": "identify", "userId": "u1", "anonymousId": "anonymous"})
        sandbox.segment.ingest({"type": "identify", "anonymousId": "anonymous", "traits": {"email": "b@example.com"}})
        sandbox.segment.ingest({"type": "track", "event": "E", "userId": "000-000"})
        engage = sandbox.engage
        assert engage.resolve("anonymous_id:anonymous") is None
        assert engage.resolve("user_id:000-000") is None
        assert engage.resolve("email:b@example.com") != engage.resolve("user_id:u1")
        assert len(engage.profile_ids()) == 2


def test_bad_identity_settings_are_refused_at_load() -> None:
    from emulator.config import ConfigError

    with pytest.raises(ConfigError, match="user_id.limit"):
        Sandbox(config={"segment": {"space": {"identity": {"identifiers": {"user_id": {"limit": 0}}}}}})
    with pytest.raises(ConfigError, match="frequency"):
        Sandbox(config={"segment": {"space": {"identity": {"identifiers": {"email": {"frequency": "hourly"}}}}}})


def test_a_profile_takes_at_most_100_merges(sandbox: Sandbox) -> None:
    sandbox.configure({"segment": {"space": {"identity": {"identifiers": {"anonymous_id": {"limit": 500}}}}}})
    sandbox.segment.ingest([{"type": "track", "event": "E", "anonymousId": f"a{n}"} for n in range(102)])
    sandbox.segment.ingest({"type": "identify", "userId": "u1"})
    for n in range(102):
        sandbox.segment.ingest({"type": "identify", "userId": "u1", "anonymousId": f"a{n}"})
    engage = sandbox.engage
    user = engage.resolve("user_id:u1")  # a0's profile: the older profile survives a merge
    # u1 into a0, then a1..a99: 100 merges; a100 and a101 stay apart
    assert user == engage.resolve("anonymous_id:a0") == engage.resolve("anonymous_id:a99")
    assert engage.resolve("anonymous_id:a100") not in (None, user)
    assert len(engage.events(user)) == 1 + 100 + 102  # events still resolve to the profile
    assert len(engage.profile_ids()) == 3


def test_a_profile_takes_at_most_1000_identity_mappings(sandbox: Sandbox) -> None:
    config = {"segment": {"space": {"identity": {"default_limit": 10}}}}
    sandbox.configure(config)
    for part in range(5):
        ids = [{"id": f"v{part}-{n}", "type": f"t{part * 250 + n:04}", "collection": "users", "encoding": "none"}
               for n in range(250)]
        sandbox.segment.ingest({"type": "track", "event": "E", "userId": "u1", "context": {"externalIds": ids}})
    assert len(sandbox.engage.external_ids(sandbox.engage.resolve("user_id:u1"))) == 1000


def test_alias_links_the_previous_anonymous_id_to_the_user(sandbox: Sandbox) -> None:
    sandbox.segment.ingest({"type": "track", "event": "Viewed", "anonymousId": "anon-1"})
    sandbox.segment.ingest({"type": "identify", "userId": "u1"})
    assert sandbox.engage.resolve("anonymous_id:anon-1") != sandbox.engage.resolve("user_id:u1")
    sandbox.segment.ingest({"type": "alias", "userId": "u1", "previousId": "anon-1"})
    assert sandbox.engage.resolve("anonymous_id:anon-1") == sandbox.engage.resolve("user_id:u1")
    assert len(sandbox.engage.profile_ids()) == 1


def test_alias_between_two_user_ids_is_refused_by_the_user_id_limit(sandbox: Sandbox) -> None:
    sandbox.segment.ingest({"type": "identify", "userId": "old-id"})
    sandbox.segment.ingest({"type": "identify", "userId": "new-id"})
    sandbox.segment.ingest({"type": "alias", "userId": "new-id", "previousId": "old-id"})
    assert sandbox.engage.resolve("user_id:old-id") != sandbox.engage.resolve("user_id:new-id")


def test_device_ids_advertising_ids_and_custom_external_ids_are_promoted(sandbox: Sandbox) -> None:
    sandbox.segment.ingest({"type": "track", "event": "Opened", "userId": "u1", "context": {
        "device": {"type": "android", "id": "dev-1", "advertisingId": "ad-1", "adTrackingEnabled": True,
                   "token": "tok-1"},
        "externalIds": [{"id": "S-9", "type": "Shopify_ID", "collection": "users", "encoding": "none"},
                        {"id": "acct", "type": "crm_id", "collection": "accounts", "encoding": "none"}]},
        "integrations": {"Google Analytics": {"clientId": "ga.1"}}})
    sandbox.segment.ingest({"type": "track", "event": "Opened", "userId": "u2", "context": {
        "device": {"type": "ios", "id": "dev-2", "advertisingId": "ad-2", "adTrackingEnabled": False}}})
    assert _ids(sandbox, "user_id:u1") == {("user_id", "u1"), ("android.id", "dev-1"), ("android.idfa", "ad-1"),
                                           ("android.push_token", "tok-1"), ("shopify_id", "S-9"),
                                           ("ga_client_id", "ga.1")}
    # no advertising id unless ad tracking is enabled
    assert _ids(sandbox, "user_id:u2") == {("user_id", "u2"), ("ios.id", "dev-2")}


def test_group_calls_make_an_account_linked_to_the_user(sandbox: Sandbox) -> None:
    sandbox.segment.ingest({"type": "group", "userId": "u1", "groupId": "g1", "traits": {"plan": "enterprise"}})
    sandbox.segment.ingest({"type": "group", "anonymousId": "a9", "groupId": "g1", "traits": {"seats": 10}})
    engage = sandbox.engage
    account = engage.resolve("group_id:g1", "accounts")
    assert account is not None and account.startswith("acc_")
    assert engage.traits(account) == {"plan": "enterprise", "seats": 10}
    assert engage.traits(engage.resolve("user_id:u1")) == {}  # group traits describe the account
    assert engage.resolve("user_id:u1") != engage.resolve("anonymous_id:a9")  # sharing a group is no merge
    assert [link["profile_id"] for link in engage.links(engage.resolve("user_id:u1"))] == [account]
    assert len(engage.links(account, "accounts")) == 2


def test_computed_traits_and_audiences_are_not_overwritten_by_identify(sandbox: Sandbox) -> None:
    sandbox.segment.ingest({"type": "identify", "userId": "u1", "traits": {"vip": False}})
    profile = sandbox.engage.resolve("user_id:u1")
    sandbox.engage.set_trait(profile, "big_spender", True, "audience")
    sandbox.segment.ingest({"type": "identify", "userId": "u1", "traits": {"big_spender": "no", "vip": True}})
    assert sandbox.engage.traits(profile) == {"big_spender": True, "vip": True}
    assert sandbox.engage.traits(profile, "audience") == {"big_spender": True}
    with pytest.raises(ValueError):
        sandbox.engage.set_trait(profile, "x", 1, "weird")
    assert sandbox.engage.delete_trait(profile, "big_spender") is True
    assert sandbox.engage.traits(profile) == {"vip": True}


def test_traits_can_be_written_in_bulk_for_many_profiles(sandbox: Sandbox) -> None:
    sandbox.segment.ingest([{"type": "identify", "userId": f"u{n}"} for n in range(3)])
    ids = sandbox.engage.profile_ids()
    sandbox.engage.set_traits({p: {"orders": n, "tier": "gold"} for n, p in enumerate(ids)}, "computed_trait")
    assert [sandbox.engage.traits(p, "computed_trait") for p in ids] == [
        {"orders": n, "tier": "gold"} for n in range(3)]


def test_an_identify_with_300_traits_does_not_reach_the_profile(sandbox: Sandbox) -> None:
    sandbox.segment.ingest({"type": "identify", "userId": "u1", "traits": {f"t{i}": i for i in range(300)}})
    assert sandbox.engage.resolve("user_id:u1") is None
    assert len(sandbox.segment.events(user_id="u1")) == 1  # the message itself is still accepted


def test_later_accept_listeners_see_the_profile_each_message_landed_on(sandbox: Sandbox) -> None:
    seen: list[tuple[str, str]] = []
    sandbox.segment.tracking.listeners.append(
        lambda messages, conn: seen.extend((m["messageId"], m.get("_profile")) for m in messages))
    sandbox.segment.ingest([{"type": "track", "event": "E", "anonymousId": "a1", "messageId": "m1"},
                            {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m2"}])
    profile = sandbox.engage.resolve("user_id:u1")
    assert seen == [("m1", profile), ("m2", profile)]


def test_reconfigured_limits_apply_to_the_next_messages(sandbox: Sandbox) -> None:
    sandbox.segment.ingest({"type": "identify", "userId": "u1", "traits": {"email": "e@example.com"}})
    sandbox.configure({"segment": {"space": {"identity": {"identifiers": {"user_id": {"limit": 3}}}}}})
    sandbox.segment.ingest({"type": "identify", "userId": "u2", "traits": {"email": "e@example.com"}})
    assert sandbox.engage.resolve("user_id:u2") == sandbox.engage.resolve("user_id:u1")


def test_reset_forgets_every_profile(sandbox: Sandbox) -> None:
    sandbox.segment.ingest({"type": "identify", "userId": "u1"})
    sandbox.reset()
    assert sandbox.engage.profile_ids() == [] and sandbox.engage.profile("user_id:u1") is None


_message = st.fixed_dictionaries(
    {"type": st.sampled_from(["identify", "track", "alias"])},
    optional={"userId": st.sampled_from(["u1", "u2", "u3"]), "anonymousId": st.sampled_from(["a1", "a2", "a3", "a4"]),
              "email": st.sampled_from(["e1@x.com", "e2@x.com"]), "previousId": st.sampled_from(["a1", "a2", "u1"])})


def _as_segment(spec: dict, n: int) -> dict | None:
    message: dict = {"type": spec["type"], "messageId": f"m{n}"}
    for key in ("userId", "anonymousId"):
        if key in spec:
            message[key] = spec[key]
    if "userId" not in message and "anonymousId" not in message:
        return None
    if spec["type"] == "track":
        message["event"] = "E"
    if spec["type"] == "alias":
        if "previousId" not in spec:
            return None
        message["previousId"] = spec["previousId"]
    if "email" in spec:
        message["context"] = {"traits": {"email": spec["email"]}}
    return message


def _partition(sandbox: Sandbox) -> set[frozenset]:
    return {frozenset((r["type"], r["id"]) for r in sandbox.engage.external_ids(p))
            for p in sandbox.engage.profile_ids()}


_limits = st.fixed_dictionaries({"user_id": st.integers(1, 2), "anonymous_id": st.integers(1, 3),
                                 "email": st.integers(1, 2)})


@settings(max_examples=60)
@given(st.lists(_message, max_size=12), _limits)
def test_one_batch_resolves_exactly_like_the_same_messages_one_at_a_time(specs: list[dict], limits: dict) -> None:
    messages = [m for n, spec in enumerate(specs) if (m := _as_segment(spec, n)) is not None]
    identifiers = {name: {"limit": limit} for name, limit in limits.items()}
    config = {"segment": {"space": {"identity": {"identifiers": identifiers}}}}
    with Sandbox(config=config) as one_by_one, Sandbox(config=config) as batched:
        for message in messages:
            one_by_one.segment.ingest(message)
        if messages:
            batched.segment.ingest(messages)
        assert _partition(one_by_one) == _partition(batched)
        for sandbox in (one_by_one, batched):
            live = sandbox.engage.profile_ids()
            owned = [r for p in live for r in sandbox.engage.external_ids(p)]
            # every id on one profile, no profile over the user_id limit, every event on a live profile
            assert len({(r["type"], r["id"]) for r in owned}) == len(owned)
            for profile in live:
                types = [r["type"] for r in sandbox.engage.external_ids(profile)]
                assert all(types.count(name) <= limit for name, limit in limits.items())
            mapped = sandbox.store.query("SELECT DISTINCT profile_id FROM engage_event_profiles")
            assert {r["profile_id"] for r in mapped} <= set(live)


_junk = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
                  st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
_context = st.fixed_dictionaries({}, optional={
    "device": st.one_of(_junk, st.fixed_dictionaries({}, optional={
        "type": st.one_of(_junk, st.sampled_from(["ios", "android", "IOS"])), "id": _junk, "advertisingId": _junk,
        "adTrackingEnabled": _junk, "token": _junk})),
    "traits": st.one_of(_junk, st.fixed_dictionaries({}, optional={"email": _junk})),
    "externalIds": st.one_of(_junk, st.lists(st.one_of(_junk, st.fixed_dictionaries({}, optional={
        "id": _junk, "type": _junk, "collection": st.one_of(_junk, st.just("users"))})), max_size=3)),
    "integrations": st.one_of(_junk, st.fixed_dictionaries({}, optional={"Google Analytics": st.one_of(
        _junk, st.fixed_dictionaries({}, optional={"clientId": _junk}))}))})


@settings(max_examples=60)
@given(st.lists(st.fixed_dictionaries({
    "type": st.sampled_from(["identify", "track", "page", "group", "alias"]), "userId": st.sampled_from(["u1", "u2"]),
    "event": st.just("E"), "groupId": st.sampled_from(["g1", "g2"]), "previousId": st.sampled_from(["a1", "u2"]),
    "context": _context, "traits": st.one_of(st.none(), st.dictionaries(st.text(max_size=3), _junk, max_size=3))}),
    min_size=1, max_size=6))
def test_odd_identity_fields_never_break_ingest(messages: list[dict]) -> None:
    with Sandbox() as sandbox:
        receipt = sandbox.segment.ingest(messages)
        attached = sandbox.store.query("SELECT count(*) AS n FROM engage_event_profiles")[0]["n"]
        assert attached == receipt.accepted  # every accepted message carries user_id u1 or u2


def test_a_profile_at_the_mapping_limit_still_receives_its_messages(sandbox: Sandbox) -> None:
    # "no additional mappings will be added ... Event resolution for the profile, however, will continue"
    sandbox.configure({"segment": {"space": {"identity": {"default_limit": 10}}}})
    for part in range(4):
        ids = [{"id": f"v{part}-{n}", "type": f"t{part * 250 + n:04}", "collection": "users", "encoding": "none"}
               for n in range(249)]
        sandbox.segment.ingest({"type": "track", "event": "E", "userId": "u1", "anonymousId": f"a{part}",
                                "context": {"externalIds": ids}})
    profile = sandbox.engage.resolve("user_id:u1")
    assert len(sandbox.engage.external_ids(profile)) == 1000
    sandbox.segment.ingest({"type": "identify", "anonymousId": "a3", "traits": {"email": "new@example.com"}})
    assert sandbox.engage.resolve("anonymous_id:a3") == profile
    assert len(sandbox.engage.profile_ids()) == 1
    assert sandbox.engage.traits(profile)["email"] == "new@example.com"
    assert len(sandbox.engage.external_ids(profile)) == 1000

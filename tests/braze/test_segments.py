"""Braze segments: filter groups over attributes, events, purchases and cohorts, on the sandbox clock."""
import pytest

from emulator import Sandbox
from emulator.braze.segments import SegmentDefinitionError


def people(sandbox, **custom_by_user):
    sandbox.braze.track(attributes=[{"external_id": user, **attrs} for user, attrs in custom_by_user.items()])


def who(sandbox, *filters, **definition):
    body = {"name": "adhoc", **definition}
    if filters:
        body["filters"] = list(filters)
    return [m["external_id"] for m in sandbox.braze.segment_members(definition=body)]


def attr(key, op, value=None):
    f = {"custom_attribute": key, "op": op}
    if value is not None:
        f["value"] = value
    return f


@pytest.fixture
def crowd(sandbox):
    people(sandbox,
           a={"vip": True, "age": 30, "plan": "Pro", "tags": ["x", "y"], "renews": "2026-01-20"},
           b={"vip": False, "age": 0, "plan": "free", "tags": [], "renews": "2025-12-01"},
           c={"age": 50, "plan": "pro-plus", "tags": ["yellow"]},
           d={})
    return sandbox


@pytest.mark.parametrize("f, expected", [
    (attr("vip", "is", True), ["a"]),
    (attr("vip", "is", False), ["b"]),
    (attr("vip", "is true or not set"), ["a", "c", "d"]),
    (attr("vip", "is_false_or_not_set"), ["b", "c", "d"]),
    (attr("vip", "is_blank"), ["c", "d"]),
    (attr("vip", "is_not_blank"), ["a", "b"]),
])
def test_boolean_operators(crowd, f, expected):
    assert who(crowd, f) == expected


@pytest.mark.parametrize("f, expected", [
    (attr("age", "exactly", 30), ["a"]),
    (attr("age", "exactly", 0), ["b", "d"]),          # "Exactly 0" includes users without it
    (attr("age", "does not equal", 30), ["b", "c", "d"]),
    (attr("age", "more_than", 29), ["a", "c"]),
    (attr("age", "less_than", 40), ["a", "b", "d"]),  # "Less Than" includes users without it
    (attr("age", "is_blank"), ["d"]),
])
def test_number_operators(crowd, f, expected):
    assert who(crowd, f) == expected


@pytest.mark.parametrize("f, expected", [
    (attr("plan", "equals", "pro"), []),               # case-sensitive
    (attr("plan", "equals", "Pro"), ["a"]),
    (attr("plan", "does_not_equal", "pro"), ["b", "c", "d"]),  # not case sensitive
    (attr("plan", "matches_regex", "^pro"), ["a", "c"]),        # case-insensitive
    (attr("plan", "does_not_match_regex", "^pro"), ["b"]),      # needs a value
    (attr("plan", "is_any_of", ["Pro", "free"]), ["a", "b"]),
    (attr("plan", "is_none_of", ["Pro", "free"]), ["c", "d"]),
    (attr("plan", "contains_any_of", ["plus", "ree"]), ["b", "c"]),
    (attr("plan", "doesn't contain any of", ["plus"]), ["a", "b", "d"]),
    (attr("plan", "is_not_blank"), ["a", "b", "c"]),
])
def test_string_operators(crowd, f, expected):
    assert who(crowd, f) == expected


@pytest.mark.parametrize("f, expected", [
    (attr("tags", "includes_value", "x"), ["a"]),
    (attr("tags", "doesn't include value", "x"), ["b", "c", "d"]),
    (attr("tags", "includes_any_of", ["y", "yellow"]), ["a", "c"]),
    (attr("tags", "includes_none_of", ["y", "yellow"]), ["b", "d"]),
    (attr("tags", "matches_regex", "^yel"), ["c"]),
    (attr("tags", "has_a_value"), ["a", "c"]),
    (attr("tags", "is_empty"), ["b", "d"]),
    (attr("tags", "values_contain_any_of", ["ell"]), ["c"]),
    (attr("tags", "values_do_not_contain_any_of", ["ell"]), ["a", "b", "d"]),
    (attr("tags", "is_all_of", ["x", "y"]), ["a"]),
    (attr("tags", "isn't all of", ["x", "y"]), ["b", "c", "d"]),
])
def test_array_operators(crowd, f, expected):
    assert who(crowd, f) == expected


@pytest.mark.parametrize("f, expected", [
    (attr("renews", "before", "2026-01-01"), ["b"]),
    (attr("renews", "after", "2026-01-01"), ["a"]),
    (attr("renews", "more_than_days_ago", 30), ["b"]),
    (attr("renews", "less_than_days_ago", 40), ["b"]),
    (attr("renews", "in_less_than_days", 30), ["a"]),
    (attr("renews", "in_more_than_days", 30), []),
    (attr("renews", "is_blank"), ["c", "d"]),
])
def test_time_operators_relative_to_the_sandbox_clock(crowd, f, expected):
    assert who(crowd, f) == expected


def test_time_filters_move_with_the_clock(crowd):
    f = attr("renews", "in_less_than_days", 30)
    assert who(crowd, f) == ["a"]
    crowd.advance("25d")
    assert who(crowd, f) == []
    assert who(crowd, attr("renews", "less_than_days_ago", 10)) == ["a"]


def test_groups_join_with_and_or_and_exclusions(crowd):
    g_vip = {"filters": [attr("vip", "is", True)]}
    g_old = {"filters": [attr("age", "more_than", 40), attr("plan", "equals", "free")], "join": "or"}
    assert who(crowd, groups=[g_vip, g_old], groups_join="or") == ["a", "b", "c"]
    assert who(crowd, groups=[g_vip, g_old], groups_join="and") == []
    assert who(crowd, groups=[g_old], exclude=[{"filters": [attr("plan", "equals", "free")]}]) == ["c"]
    assert who(crowd) == ["a", "b", "c", "d"]


def test_custom_event_filters(sandbox):
    sandbox.braze.track(events=[
        {"external_id": "a", "name": "Viewed", "time": "2025-12-30T00:00:00Z"},
        {"external_id": "a", "name": "Viewed", "time": "2025-12-31T12:00:00Z"},
        {"external_id": "a", "name": "Viewed", "time": "2025-11-01T00:00:00Z"},
        {"external_id": "b", "name": "Viewed", "time": "2025-10-01T00:00:00Z"},
        {"external_id": "c", "name": "Other", "time": "2025-12-31T00:00:00Z"}])
    ev = lambda op, value, **kw: {"custom_event": "Viewed", "op": op, "value": value, **kw}  # noqa: E731
    assert who(sandbox, ev("more_than", 1)) == ["a"]
    assert who(sandbox, ev("exactly", 1)) == ["b"]
    assert who(sandbox, ev("less_than", 1)) == ["c"]
    assert who(sandbox, ev("more_than", 1, days=3)) == ["a"]       # 2 in the past 3 days
    assert who(sandbox, ev("exactly", 1, days=1)) == ["a"]
    assert who(sandbox, ev("last_after", "2025-12-01")) == ["a"]
    assert who(sandbox, ev("last_before", "2025-12-01")) == ["b"]
    assert who(sandbox, ev("last_more_than_days_ago", 30)) == ["b"]
    assert who(sandbox, ev("last_less_than_days_ago", 2)) == ["a"]
    sandbox.advance("3d")
    assert who(sandbox, ev("more_than", 0, days=3)) == []


def test_purchase_filters(sandbox):
    sandbox.braze.track(purchases=[
        {"external_id": "a", "product_id": "p1", "currency": "USD", "price": 30, "quantity": 2, "time": "2025-12-31T00:00:00Z"},
        {"external_id": "b", "product_id": "p2", "currency": "USD", "price": 5, "time": "2025-06-01T00:00:00Z"}])
    sandbox.braze.track(attributes=[{"external_id": "c"}])
    assert who(sandbox, {"purchase": "any", "op": "spent_more_than", "value": 50}) == ["a"]
    assert who(sandbox, {"purchase": "any", "op": "spent_less_than", "value": 10}) == ["b", "c"]
    assert who(sandbox, {"purchase": "p1", "op": "exactly", "value": 2}) == ["a"]
    assert who(sandbox, {"purchase": "any", "op": "more_than", "value": 0, "days": 7}) == ["a"]
    assert who(sandbox, {"purchase": "any", "op": "last_more_than_days_ago", "value": 100}) == ["b"]


def test_segment_cohorts_filter_follows_membership(sandbox):
    people(sandbox, a={}, b={})
    sandbox.braze.cohorts.upsert({"client_secret": "sandbox-data-import-key", "name": "dormant", "cohort_id": "aud_1",
                                  "created_at": "2026-01-01T00:00:00Z"})
    change = {"client_secret": "sandbox-data-import-key", "cohort_id": "aud_1",
              "cohort_changes": [{"user_ids": ["a"], "device_ids": [], "aliases": []}]}
    sandbox.braze.cohorts.change_users(change)
    assert who(sandbox, {"segment_cohort": "dormant"}) == ["a"]
    assert who(sandbox, {"segment_cohort": "aud_1", "op": "not_in"}) == ["b"]
    change["cohort_changes"][0]["should_remove"] = True
    sandbox.braze.cohorts.change_users(change)
    assert who(sandbox, {"segment_cohort": "dormant"}) == []


def test_named_segments_from_configuration_python_and_http():
    config = {"braze": {"segments": [{"name": "Dormant shoppers",
                                      "filters": [{"custom_attribute": "dormant_shopper", "op": "equals", "value": True}]}]}}
    with Sandbox(config=config) as sb, sb.braze_client() as client:
        people(sb, u1={"dormant_shopper": True}, u2={"dormant_shopper": False})
        assert [m["external_id"] for m in sb.braze.segment_members("Dormant shoppers")] == ["u1"]
        response = client.get("/_emulator/braze/segments/Dormant shoppers/members")
        assert response.json()["count"] == 1 and response.json()["members"][0]["external_id"] == "u1"
        created = client.post("/_emulator/braze/segments", json={"name": "Not dormant", "filters": [
            {"custom_attribute": "dormant_shopper", "op": "is", "value": False}]})
        assert created.status_code == 201
        assert [s["name"] for s in client.get("/_emulator/braze/segments").json()["segments"]] == [
            "Dormant shoppers", "Not dormant"]
        assert [m["external_id"] for m in sb.braze.segment_members("Not dormant")] == ["u2"]
        sb.reset()  # definitions are configuration: reset keeps them, data goes
        assert sb.braze.segment_members("Not dormant") == []
        assert client.delete("/_emulator/braze/segments/Not dormant").status_code == 200
        assert client.get("/_emulator/braze/segments/Not dormant").status_code == 404


def test_bad_segment_definition_is_refused_with_what_is_wrong(sandbox, braze):
    with pytest.raises(SegmentDefinitionError, match="days"):
        sandbox.braze.define_segment({"name": "x", "filters": [
            {"custom_event": "E", "op": "more_than", "value": 1, "days": 5}]})
    response = braze.post("/_emulator/braze/segments", json={"name": "x", "filters": [
        {"custom_attribute": "plan", "op": "matches_regex", "value": "("}]})
    assert response.status_code == 400 and "regular expression" in response.json()["error"]
    assert braze.get("/_emulator/braze/segments/nope/members").status_code == 404


def test_old_occurrences_leave_the_30_day_window_table(sandbox):
    sandbox.braze.track(events=[{"external_id": "a", "name": "E", "time": "2025-12-31T00:00:00Z"}])
    sandbox.advance("40d")
    sandbox.braze.track(events=[{"external_id": "a", "name": "E", "time": "2026-02-09T00:00:00Z"}])
    rows = sandbox.store.query("SELECT time FROM braze_occurrences")
    assert [r["time"] for r in rows] == ["2026-02-09T00:00:00.000Z"]
    assert who(sandbox, {"custom_event": "E", "op": "exactly", "value": 1, "days": 30}) == ["a"]
    assert who(sandbox, {"custom_event": "E", "op": "exactly", "value": 2}) == ["a"]

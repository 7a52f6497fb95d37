"""`/users/alias/new`, `/users/identify`, `/users/delete`, `/users/merge` (reference/braze-api.md §4)."""
import pytest

from .helpers import export_one


def track(braze, **arrays):
    response = braze.post("/users/track", json=arrays)
    assert response.status_code == 201, response.text


def test_docs_alias_new_adds_an_alias_to_an_existing_user(braze, docs_examples):
    track(braze, attributes=[{"external_id": "external_identifier"}])
    example = docs_examples["users_alias_new"]
    response = braze.post("/users/alias/new", json=example["request"])
    assert (response.status_code, response.json()) == (201, example["response"])
    assert export_one(braze, alias=("example_name", "example_label"))["external_id"] == "external_identifier"


def test_alias_new_for_an_unknown_external_id_adds_it_nowhere(braze):
    braze.post("/users/alias/new", json={"user_aliases": [{"external_id": "ghost", "alias_name": "n", "alias_label": "l"}]})
    assert export_one(braze, alias=("n", "l")) is None
    assert export_one(braze, external_id="ghost") is None


def test_alias_new_without_external_id_creates_an_alias_only_user(braze):
    braze.post("/users/alias/new", json={"user_aliases": [{"alias_name": "anon-1", "alias_label": "device"}]})
    user = export_one(braze, alias=("anon-1", "device"))
    assert "external_id" not in user and user["user_aliases"] == [{"alias_name": "anon-1", "alias_label": "device"}]


def test_docs_identify_merges_alias_and_email_profiles(braze, docs_examples):
    track(braze, attributes=[
        {"user_alias": {"alias_name": "a", "alias_label": "l"}, "_update_existing_only": False, "color": "red",
         "first_name": "Anon"},
        {"external_id": "ext", "first_name": "Known"},
        {"email": "john@braze.com", "fav": "tea"}])
    track(braze, events=[{"user_alias": {"alias_name": "a", "alias_label": "l"}, "name": "E",
                          "time": "2025-12-01T00:00:00Z"},
                         {"external_id": "ext", "name": "E", "time": "2025-12-05T00:00:00Z"}])
    example = docs_examples["users_identify"]
    response = braze.post("/users/identify", json=example["request"])
    assert (response.status_code, response.json()) == (201, example["response"])
    user = export_one(braze, external_id="ext")
    assert user["first_name"] == "Known"                    # the identified profile's field wins
    assert user["custom_attributes"] == {"color": "red"}    # fields only on the anonymous one move over
    assert user["user_aliases"] == [{"alias_name": "a", "alias_label": "l"}]
    assert user["custom_events"] == [{"name": "E", "first": "2025-12-01T00:00:00.000Z",
                                      "last": "2025-12-05T00:00:00.000Z", "count": 2}]
    # ext2 did not exist: the email-only profile simply gets the external id
    ext2 = export_one(braze, external_id="ext2")
    assert ext2["email"] == "john@braze.com" and ext2["custom_attributes"] == {"fav": "tea"}
    assert braze.post("/users/export/ids", json={"email_address": "john@braze.com"}).json()["users"] == [ext2]


def test_identify_with_merge_behavior_none_moves_only_the_alias(braze):
    alias = {"alias_name": "a", "alias_label": "l"}
    track(braze, attributes=[{"user_alias": alias, "_update_existing_only": False, "color": "red"},
                             {"external_id": "ext"}])
    braze.post("/users/identify", json={"aliases_to_identify": [{"external_id": "ext", "user_alias": alias}]})
    user = export_one(braze, external_id="ext")
    assert user["user_aliases"] == [alias] and "custom_attributes" not in user


def test_identify_does_not_merge_when_the_target_has_an_alias_with_that_label(braze):
    track(braze, attributes=[{"user_alias": {"alias_name": "a", "alias_label": "l"}, "_update_existing_only": False},
                             {"external_id": "ext"}])
    braze.post("/users/alias/new", json={"user_aliases": [{"external_id": "ext", "alias_name": "b", "alias_label": "l"}]})
    braze.post("/users/identify", json={"aliases_to_identify": [
        {"external_id": "ext", "user_alias": {"alias_name": "a", "alias_label": "l"}}], "merge_behavior": "merge"})
    assert "external_id" not in export_one(braze, alias=("a", "l"))


def test_identify_email_prioritization_picks_among_profiles(braze):
    track(braze, attributes=[{"email": "x@y.io", "n": 1}])
    track(braze, attributes=[{"external_id": "other", "email": "x@y.io"}])
    braze.post("/users/identify", json={"emails_to_identify": [
        {"external_id": "new", "email": "x@y.io", "prioritization": ["unidentified", "most_recently_updated"]}]})
    assert export_one(braze, external_id="new")["custom_attributes"] == {"n": 1}


def test_identify_phone_merges_a_phone_only_profile(braze):
    track(braze, attributes=[{"phone": "+15550001", "n": 1}, {"external_id": "ext", "m": 2}])
    response = braze.post("/users/identify", json={"merge_behavior": "merge", "phone_numbers_to_identify": [
        {"external_id": "ext", "phone": "+15550001", "prioritization": ["unidentified"]}]})
    assert response.json() == {"aliases_processed": 0, "phone_numbers_processed": 1, "message": "success"}
    assert export_one(braze, external_id="ext")["custom_attributes"] == {"m": 2, "n": 1}


def test_identify_needs_prioritization_for_emails(braze):
    response = braze.post("/users/identify", json={"emails_to_identify": [{"external_id": "e", "email": "a@b.io"}]})
    assert response.status_code == 400 and "prioritization" in response.json()["message"]


def test_docs_delete_removes_the_profile_and_answers_201(braze, docs_examples):
    track(braze, attributes=[{"external_id": "user1"}])
    example = docs_examples["users_delete"]
    response = braze.post("/users/delete", json=example["request"])
    assert (response.status_code, response.json()) == (201, example["response"])
    assert export_one(braze, external_id="user1") is None


def test_delete_takes_one_identifier_kind_per_request(braze):
    response = braze.post("/users/delete", json={"external_ids": ["a"], "braze_ids": ["b"]})
    assert response.status_code == 400


def test_delete_by_alias_and_by_email(braze):
    track(braze, attributes=[{"user_alias": {"alias_name": "a", "alias_label": "l"}, "_update_existing_only": False},
                             {"external_id": "e1", "email": "q@w.io"}])
    assert braze.post("/users/delete", json={"user_aliases": [{"alias_name": "a", "alias_label": "l"}]}).json()["deleted"] == 1
    assert braze.post("/users/delete", json={"email_addresses": [
        {"email": "q@w.io", "prioritization": ["most_recently_updated"]}]}).json()["deleted"] == 1
    assert export_one(braze, external_id="e1") is None


def test_deleted_user_leaves_cohorts_and_segments(sandbox, braze):
    track(braze, attributes=[{"external_id": "u1", "vip": True}])
    sandbox.braze.define_segment({"name": "VIP", "filters": [{"custom_attribute": "vip", "op": "is", "value": True}]})
    assert len(sandbox.braze.segment_members("VIP")) == 1
    braze.post("/users/delete", json={"external_ids": ["u1"]})
    assert sandbox.braze.segment_members("VIP") == []


def test_docs_merge_folds_one_profile_into_another_and_answers_202(braze, docs_examples):
    track(braze, attributes=[{"external_id": "old-user1", "a": 1, "first_name": "Old"},
                             {"external_id": "current-user1", "b": 2}])
    track(braze, purchases=[{"external_id": "old-user1", "product_id": "p", "currency": "USD", "price": 5,
                             "time": "2025-12-01T00:00:00Z"}])
    example = docs_examples["users_merge"]
    response = braze.post("/users/merge", json=example["request"])
    assert (response.status_code, response.json()) == (202, example["response"])
    kept = export_one(braze, external_id="current-user1")
    assert kept["custom_attributes"] == {"b": 2, "a": 1} and kept["first_name"] == "Old"
    assert kept["total_revenue"] == 5
    assert export_one(braze, external_id="old-user1") is None


@pytest.mark.parametrize("body, message", [
    ({"merge_updates": "x"}, "'merge_updates' must be an array of objects"),
    ({"merge_updates": [{"identifier_to_merge": {"external_id": "a"}, "identifier_to_keep": {"external_id": "b"}}] * 51},
     "a single request may not contain more than 50 merge updates"),
    ({"merge_updates": [{"identifier_to_merge": {"external_id": 5}, "identifier_to_keep": {"external_id": "b"}}]},
     "identifiers must be objects with an 'external_id' property that is a string, 'user_alias' property that is an "
     "object, 'email' property that is a string, or 'phone' property that is a string"),
    ({"merge_updates": [{"identifier_to_merge": {"external_id": "a"}}]},
     "'merge_updates' must only have 'identifier_to_merge' and 'identifier_to_keep'"),
])
def test_merge_400_messages_are_braze_documented(braze, body, message):
    response = braze.post("/users/merge", json=body)
    assert (response.status_code, response.json()) == (400, {"message": message})


@pytest.mark.parametrize("path, body", [
    ("/users/alias/new", {"user_aliases": [{"alias_name": f"a{i}", "alias_label": "l"} for i in range(51)]}),
    ("/users/identify", {"aliases_to_identify": [{"external_id": f"e{i}", "user_alias": {"alias_name": f"a{i}",
                                                                                          "alias_label": "l"}}
                                                 for i in range(51)]}),
    ("/users/delete", {"external_ids": [f"e{i}" for i in range(51)]}),
])
def test_51_ids_are_refused_by_the_identity_endpoints(braze, path, body):
    response = braze.post(path, json=body)
    assert (response.status_code, response.json()) == (
        400, {"message": "The max number of external_ids and aliases per request was exceeded"})

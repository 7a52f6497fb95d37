"""`/users/export/ids` and the profile view `sandbox.braze.user`."""
from .helpers import export_one


def test_export_reproduces_the_doc_sample_shape(braze, docs_examples):
    sample = docs_examples["export_sample_user"]["user"]
    braze.post("/users/alias/new", json={"user_aliases": []})  # noise: refused, changes nothing
    braze.post("/users/track", json={"attributes": [{
        "external_id": "A8i3mkd99", "first_name": "Jane", "email": "example@braze.com", "country": "US",
        "language": "en", "push_subscribe": "opted_in", "email_subscribe": "subscribed",
        "loyaltyId": "37c98b9d-9a7f-4b2f-a125-d873c5152856", "loyaltyPointsNumber": 107}],
        "events": [{"external_id": "A8i3mkd99", "name": "Loyalty Acknowledgement", "time": "2021-06-28T17:02:43.032Z"}],
        "purchases": [{"external_id": "A8i3mkd99", "product_id": "item_40834", "currency": "USD", "price": 6.5,
                       "quantity": 10, "time": "2021-09-05T03:45:50.540Z"}]})
    braze.post("/users/alias/new", json={"user_aliases": [
        {"external_id": "A8i3mkd99", "alias_name": "user_123", "alias_label": "amplitude_id"}]})
    user = export_one(braze, external_id="A8i3mkd99")
    assert list(user) == list(sample)
    for key in ("external_id", "user_aliases", "first_name", "email", "country", "language", "push_subscribe",
                "email_subscribe", "custom_attributes", "custom_events", "total_revenue"):
        assert user[key] == sample[key], key
    assert user["purchases"][0]["count"] == 10


def test_invalid_user_ids_lists_the_misses(braze):
    braze.post("/users/track", json={"attributes": [{"external_id": "u1"}]})
    body = braze.post("/users/export/ids", json={"external_ids": ["u1", "u2", "u3"]}).json()
    assert [u["external_id"] for u in body["users"]] == ["u1"]
    assert body["invalid_user_ids"] == ["u2", "u3"]
    assert body["message"] == "success"


def test_fields_to_export_restricts_the_fields(braze):
    braze.post("/users/track", json={"attributes": [{"external_id": "u1", "first_name": "A", "plan": "p"}]})
    body = braze.post("/users/export/ids", json={"external_ids": ["u1"], "fields_to_export": ["first_name", "braze_id"]})
    assert list(body.json()["users"][0]) == ["braze_id", "first_name"]


def test_unknown_field_to_export_is_a_400(braze):
    response = braze.post("/users/export/ids", json={"external_ids": ["u1"], "fields_to_export": ["shoe_size"]})
    assert response.status_code == 400 and "shoe_size" in response.json()["message"]


def test_51_ids_are_refused(braze):
    response = braze.post("/users/export/ids", json={"external_ids": [f"u{i}" for i in range(26)],
                                                     "user_aliases": [{"alias_name": f"a{i}", "alias_label": "l"}
                                                                      for i in range(25)]})
    assert (response.status_code, response.json()) == (
        400, {"message": "The max number of external_ids and aliases per request was exceeded"})


def test_export_by_email_returns_every_profile_with_it(braze):
    braze.post("/users/track", json={"attributes": [{"external_id": "u1", "email": "a@x.io"},
                                                    {"external_id": "u2", "email": "A@x.io"}]})
    users = braze.post("/users/export/ids", json={"email_address": "a@x.io"}).json()["users"]
    assert sorted(u["external_id"] for u in users) == ["u1", "u2"]


def test_python_profile_view_equals_the_export(sandbox, braze):
    braze.post("/users/track", json={"attributes": [{"external_id": "u1", "plan": "p", "email": "e@x.io"}]})
    exported = export_one(braze, external_id="u1")
    assert sandbox.braze.user("u1") == exported
    assert sandbox.braze.user(braze_id=exported["braze_id"]) == exported
    assert sandbox.braze.user(email="e@x.io") == exported
    assert braze.get("/_emulator/braze/users", params={"external_id": "u1"}).json() == exported


def test_control_api_lists_profiles_most_recent_first(braze):
    braze.post("/users/track", json={"attributes": [{"external_id": "u1"}, {"external_id": "u2", "email": "z@x.io"}]})
    body = braze.get("/_emulator/braze/users").json()
    assert [u["external_id"] for u in body["users"]] == ["u2", "u1"] and body["total"] == 2
    assert [u["external_id"] for u in braze.get("/_emulator/braze/users", params={"q": "z@x"}).json()["users"]] == ["u2"]
    assert braze.get("/_emulator/braze/users", params={"limit": "x"}).status_code == 400


def test_the_profile_page_counts_what_it_matches_and_takes_like_wildcards_literally(braze, sandbox):
    sandbox.braze.track(attributes=[{"external_id": "user_1"}, {"external_id": "userX1"}, {"external_id": "other"}])
    body = braze.get("/_emulator/braze/users", params={"q": "user_"}).json()
    assert [u["external_id"] for u in body["users"]] == ["user_1"] and body["total"] == 1
    assert braze.get("/_emulator/braze/users").json()["total"] == 3

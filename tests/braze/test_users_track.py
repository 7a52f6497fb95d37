"""`POST /users/track`: every rule of reference/braze-api.md §2, checked afterwards through export."""
import pytest

from .helpers import export_one


def track(braze, **arrays):
    return braze.post("/users/track", json=arrays)


def attrs(braze, external_id="u1", **fields):
    response = track(braze, attributes=[{"external_id": external_id, **fields}])
    assert response.status_code == 201, response.text
    return export_one(braze, external_id=external_id)


def test_docs_attributes_example_is_accepted_and_visible_in_export(braze, docs_examples):
    example = docs_examples["users_track_attributes"]
    response = braze.post("/users/track", json=example["request"])
    assert response.status_code == 201
    # the alias object omits _update_existing_only, which means "update only" for aliases: processed, not created
    assert response.json() == example["response"]
    user1 = export_one(braze, external_id="user1")
    assert user1["first_name"] == "Jon" and user1["dob"] == "1988-02-14"
    assert user1["custom_attributes"] == {"has_profile_picture": True, "music_videos_favorited": ["calvinharris-summer"]}
    assert export_one(braze, alias=("device123", "my_device_identifier")) is None
    assert export_one(braze, external_id="user3") is not None


def test_docs_event_and_purchase_examples_aggregate_on_the_profile(braze, docs_examples):
    for name in ("users_track_event", "users_track_purchase"):
        example = docs_examples[name]
        response = braze.post("/users/track", json=example["request"])
        assert (response.status_code, response.json()) == (201, example["response"])
    user = export_one(braze, external_id="user1")
    assert user["custom_events"] == [{"name": "rented_movie", "first": "2013-07-16T18:20:45.000Z",
                                      "last": "2013-07-16T18:20:45.000Z", "count": 1}]
    assert user["purchases"] == [{"name": "backpack", "first": "2013-07-16T18:20:30.000Z",
                                  "last": "2013-07-16T18:20:30.000Z", "count": 1}]
    assert user["total_revenue"] == 40


def test_docs_partial_failure_reports_each_bad_object_with_success_message(braze, docs_examples):
    example = docs_examples["users_track_partial"]
    response = braze.post("/users/track", json=example["request"])
    assert (response.status_code, response.json()) == (201, example["response"])
    assert export_one(braze, external_id="user1")["custom_events"][0]["name"] == "ok"


def test_docs_nothing_valid_answers_400_with_the_errors(braze, docs_examples):
    example = docs_examples["users_track_nothing_valid"]
    response = braze.post("/users/track", json=example["request"])
    assert (response.status_code, response.json()) == (400, example["response"])
    assert export_one(braze, external_id="user1") is None


def test_processed_counts_appear_only_for_arrays_sent(braze):
    response = track(braze, events=[{"external_id": "u", "name": "e", "time": "2026-01-01T00:00:00Z"}])
    assert response.json() == {"message": "success", "events_processed": 1}


def test_new_profile_gets_24_hex_braze_id_and_random_bucket(braze):
    user = attrs(braze, plan="pro")
    assert len(user["braze_id"]) == 24 and int(user["braze_id"], 16) >= 0
    assert 0 <= user["random_bucket"] <= 9999
    assert user["created_at"] == "2026-01-01 00:00:00.000 UTC"


def test_same_seed_gives_the_same_braze_ids():
    from emulator import Sandbox

    ids = []
    for _ in range(2):
        with Sandbox(seed=7) as sb:
            sb.braze.track(attributes=[{"external_id": "u1"}])
            ids.append(sb.braze.user("u1")["braze_id"])
    assert ids[0] == ids[1]


def test_more_than_one_primary_identifier_rejects_the_object(braze):
    response = track(braze, attributes=[{"external_id": "u1", "braze_id": "abc", "plan": "x"},
                                        {"external_id": "u2", "plan": "y"}])
    body = response.json()
    assert response.status_code == 201
    assert body["errors"] == [{"type": "only one of 'external_id', 'braze_id' or 'user_alias' may be provided",
                               "input_array": "attributes", "index": 0}]
    assert export_one(braze, external_id="u1") is None


def test_email_identifies_only_without_a_primary(braze):
    attrs(braze, "u1", email="shared@example.com")
    # with a primary, email is just an attribute: a new u2 is created, u1 is not touched
    attrs(braze, "u2", email="shared@example.com", plan="b")
    assert "custom_attributes" not in export_one(braze, external_id="u1")
    # without a primary, email resolves to the most recently updated profile with an external_id
    track(braze, attributes=[{"email": "shared@example.com", "plan": "via-email"}])
    assert export_one(braze, external_id="u2")["custom_attributes"]["plan"] == "via-email"


def test_unknown_email_creates_an_email_only_profile(braze):
    response = track(braze, attributes=[{"email": "anon@example.com", "_update_existing_only": False, "x": 1}])
    assert response.status_code == 201
    user = export_one(braze, email="anon@example.com")
    assert "external_id" not in user and user["email"] == "anon@example.com"
    assert user["custom_attributes"] == {"x": 1}


def test_phone_identifies_when_no_primary_and_no_email(braze):
    attrs(braze, "u1", phone="+351911111111")
    track(braze, events=[{"phone": "+351911111111", "name": "Called", "time": "2026-01-01T00:00:00Z"}])
    assert export_one(braze, external_id="u1")["custom_events"][0]["name"] == "Called"


def test_update_existing_only_true_never_creates(braze):
    response = track(braze, attributes=[{"external_id": "ghost", "_update_existing_only": True, "plan": "x"}])
    assert response.status_code == 201
    assert export_one(braze, external_id="ghost") is None


def test_alias_only_profile_needs_update_existing_only_false(braze):
    alias = {"alias_name": "device9", "alias_label": "device"}
    track(braze, attributes=[{"user_alias": alias, "plan": "x"}])
    assert export_one(braze, alias=("device9", "device")) is None
    track(braze, attributes=[{"user_alias": alias, "plan": "x", "_update_existing_only": False}])
    user = export_one(braze, alias=("device9", "device"))
    assert user["user_aliases"] == [alias] and user["custom_attributes"] == {"plan": "x"}
    # once it exists, the default (update only) updates it
    track(braze, attributes=[{"user_alias": alias, "plan": "y"}])
    assert export_one(braze, alias=("device9", "device"))["custom_attributes"] == {"plan": "y"}


def test_unknown_braze_id_creates_nothing(braze):
    track(braze, events=[{"braze_id": "5fbd99bac125ca40511f2cb1", "name": "Opened", "time": "2026-01-01T00:00:00Z"}])
    assert braze.post("/users/export/ids", json={"braze_id": "5fbd99bac125ca40511f2cb1"}).json()["users"] == []


def test_invalid_email_rejects_the_object(braze):
    response = track(braze, attributes=[{"external_id": "u1", "email": "nope"}, {"external_id": "u2"}])
    assert response.json()["errors"][0] == {"type": "The value provided for the 'email' field is not a valid email.",
                                            "input_array": "attributes", "index": 0}


def test_gender_codes_are_kept_and_unknown_values_left_unset(braze):
    assert attrs(braze, "g1", gender="F")["gender"] == "F"
    assert attrs(braze, "g2", gender="m")["gender"] == "M"
    assert "gender" not in attrs(braze, "g3", gender="nonbinary")


def test_country_names_map_to_iso_codes_best_effort(braze):
    assert attrs(braze, "c1", country="United States")["country"] == "US"
    assert attrs(braze, "c2", country="Portugal")["country"] == "PT"
    assert attrs(braze, "c3", country="pt")["country"] == "PT"
    assert "country" not in attrs(braze, "c4", country="Atlantis")


def test_time_zone_only_valid_values_are_set(braze):
    assert attrs(braze, "t1", time_zone="Europe/Lisbon")["time_zone"] == "Europe/Lisbon"
    assert "time_zone" not in attrs(braze, "t2", time_zone="Mars/Olympus")


def test_subscription_states_are_validated(braze):
    assert attrs(braze, "s1", email_subscribe="opted_in", push_subscribe="unsubscribed")["email_subscribe"] == "opted_in"
    response = track(braze, attributes=[{"external_id": "s2", "email_subscribe": "yes"}])
    assert response.status_code == 400
    assert response.json()["errors"][0]["type"] == "BAD_EMAIL_SUBSCRIPTION_STATE"
    response = track(braze, attributes=[{"external_id": "s2", "subscription_groups": [
        {"subscription_group_id": "g", "subscription_state": "opted_in"}]}])
    assert response.json()["errors"][0]["type"] == "BAD_SUBSCRIPTION_GROUP_STATE"


def test_current_location_is_exported_as_last_coordinates(braze):
    user = attrs(braze, current_location={"latitude": 41.1, "longitude": -8.6})
    assert user["last_coordinates"] == [-8.6, 41.1]


def test_increment_adds_to_a_number_and_starts_from_zero(braze):
    attrs(braze, points={"inc": 5})
    assert attrs(braze, points={"inc": -2})["custom_attributes"]["points"] == 3


def test_array_add_and_remove_behave_as_a_set(braze):
    assert attrs(braze, foods=["hotdog", "hotdog", "pizza"])["custom_attributes"]["foods"] == ["hotdog", "pizza"]
    user = attrs(braze, foods={"add": ["hotdog", "taco"], "remove": ["pizza"]})
    assert user["custom_attributes"]["foods"] == ["hotdog", "taco"]


def test_an_array_keeps_true_apart_from_1_and_false_apart_from_0(braze, sandbox):
    assert attrs(braze, flags=[1, True, "1", False, 0])["custom_attributes"]["flags"] == [1, True, "1", False, 0]
    user = attrs(braze, flags={"remove": [True, 0]})
    assert user["custom_attributes"]["flags"] == [1, "1", False]
    attrs(braze, external_id="u2", flags=[True])
    members = sandbox.braze.segment_members(definition={
        "name": "ones", "filters": [{"custom_attribute": "flags", "op": "includes_value", "value": 1}]})
    assert [m["external_id"] for m in members] == ["u1"]


def test_array_is_capped_at_25_dropping_the_oldest(braze):
    attrs(braze, items=[f"i{n}" for n in range(20)])
    user = attrs(braze, items={"add": [f"j{n}" for n in range(10)]})
    items = user["custom_attributes"]["items"]
    assert len(items) == 25 and items[0] == "i5" and items[-1] == "j9"


def test_nested_object_replaces_unless_merge_objects(braze):
    attrs(braze, address={"city": "Porto", "zip": "4000"})
    assert attrs(braze, address={"city": "Lisbon"})["custom_attributes"]["address"] == {"city": "Lisbon"}
    user = attrs(braze, address={"zip": "1000", "geo": {"lat": 1}}, _merge_objects=True)
    assert user["custom_attributes"]["address"] == {"city": "Lisbon", "zip": "1000", "geo": {"lat": 1}}


def test_nested_time_values_are_stored_as_times(braze):
    user = attrs(braze, trip={"departs": {"$time": "2020-05-28"}})
    assert user["custom_attributes"]["trip"] == {"departs": "2020-05-28T00:00:00.000Z"}


@pytest.mark.parametrize("bad", [{"departs": {"$time": "soon"}}, {"city": "Porto", "state": None}],
                         ids=["bad $time", "null inside"])
def test_an_invalid_nested_value_drops_every_nested_update_of_the_request_and_keeps_the_rest(braze, bad):
    # braze-api.md §2.2: "one invalid value (bad $time, null) drops all nested updates of the request (FAQ)"
    attrs(braze, external_id="u2", pets={"dog": "Rex"})
    response = track(braze, attributes=[{"external_id": "u1", "first_name": "Ana", "trip": bad},
                                        {"external_id": "u2", "plan": "pro", "pets": {"cat": "Tom"}}])
    assert response.status_code == 201 and "errors" not in response.json()
    ana = export_one(braze, external_id="u1")
    assert ana["first_name"] == "Ana" and "trip" not in ana.get("custom_attributes", {})
    other = export_one(braze, external_id="u2")["custom_attributes"]
    assert other == {"pets": {"dog": "Rex"}, "plan": "pro"}


def test_array_of_objects_add_remove_update(braze):
    attrs(braze, pets=[{"id": 1, "name": "Rex"}, {"id": 2, "name": "Tom"}])
    attrs(braze, pets={"$add": [{"id": 3, "name": "Kit"}], "$remove": [{"$identifier_key": "id", "$identifier_value": 1}]})
    user = attrs(braze, pets={"$update": [{"$identifier_key": "id", "$identifier_value": 2,
                                          "$new_object": {"age": 4}}]}, _merge_objects=True)
    assert user["custom_attributes"]["pets"] == [{"id": 2, "name": "Tom", "age": 4}, {"id": 3, "name": "Kit"}]


def test_update_in_array_of_objects_needs_merge_objects(braze):
    response = track(braze, attributes=[{"external_id": "u1", "pets": {
        "$update": [{"$identifier_key": "id", "$identifier_value": 2, "$new_object": {"age": 4}}]}}])
    assert response.status_code == 400
    assert "_merge_objects" in response.json()["errors"][0]["type"]


def test_null_removes_an_attribute(braze):
    attrs(braze, plan="pro", first_name="Ana")
    user = attrs(braze, plan=None, first_name=None)
    assert "custom_attributes" not in user and "first_name" not in user


def test_date_strings_are_stored_as_times(braze):
    user = attrs(braze, signup="2021-12-01", renewal="12/01/2021", other="2021-12-01T10:00:00+01:00")
    assert user["custom_attributes"] == {"signup": "2021-12-01T00:00:00.000Z", "renewal": "2021-12-01T00:00:00.000Z",
                                         "other": "2021-12-01T09:00:00.000Z"}


def test_events_aggregate_count_first_and_last(braze, sandbox):
    times = ["2025-12-20T00:00:00Z", "2025-12-10T00:00:00Z", "2025-12-25T00:00:00Z"]
    track(braze, events=[{"external_id": "u1", "name": "Viewed", "time": t} for t in times])
    assert export_one(braze, external_id="u1")["custom_events"] == [
        {"name": "Viewed", "first": "2025-12-10T00:00:00.000Z", "last": "2025-12-25T00:00:00.000Z", "count": 3}]


def test_future_event_time_is_the_current_time(braze):
    track(braze, events=[{"external_id": "u1", "name": "Later", "time": "2030-01-01T00:00:00Z"}])
    assert export_one(braze, external_id="u1")["custom_events"][0]["last"] == "2026-01-01T00:00:00.000Z"


def test_purchase_quantity_counts_as_that_many_purchases_and_revenue(braze):
    track(braze, purchases=[{"external_id": "u1", "product_id": "p1", "currency": "USD", "price": 10, "quantity": 2,
                             "time": "2025-12-01T00:00:00Z"},
                            {"external_id": "u1", "product_id": "p2", "currency": "EUR", "price": 2.5,
                             "time": "2025-12-02T00:00:00Z"}])
    user = export_one(braze, external_id="u1")
    assert [(p["name"], p["count"]) for p in user["purchases"]] == [("p1", 2), ("p2", 1)]
    assert user["total_revenue"] == 22.5


def test_reserved_event_property_names_reject_the_event(braze):
    response = track(braze, events=[{"external_id": "u1", "name": "E", "time": "2026-01-01T00:00:00Z",
                                     "properties": {"time": 1}}])
    assert response.status_code == 400


def test_76_objects_in_one_array_is_refused(braze):
    response = track(braze, events=[{"external_id": f"u{i}", "name": "E", "time": "2026-01-01T00:00:00Z"}
                                    for i in range(76)])
    assert response.status_code == 400
    assert response.json()["message"] == "Max Input Length Exceeded"
    assert braze.post("/users/export/ids", json={"external_ids": ["u0"]}).json()["users"] == []


def test_75_objects_per_array_are_accepted(braze):
    response = track(braze, attributes=[{"external_id": f"u{i}"} for i in range(75)],
                     events=[{"external_id": f"u{i}", "name": "E", "time": "2026-01-01T00:00:00Z"} for i in range(75)])
    assert response.json() == {"message": "success", "attributes_processed": 75, "events_processed": 75}


def test_attributes_then_events_then_purchases_in_one_request(braze):
    # the event names an alias that only the attributes array of the same request creates
    alias = {"alias_name": "a1", "alias_label": "l"}
    track(braze, events=[{"user_alias": alias, "name": "E", "time": "2026-01-01T00:00:00Z", "_update_existing_only": True}],
          attributes=[{"user_alias": alias, "_update_existing_only": False}])
    assert export_one(braze, alias=("a1", "l"))["custom_events"][0]["count"] == 1


def test_python_api_applies_the_same_rules(sandbox):
    answer = sandbox.braze.track(attributes=[{"external_id": "u1", "plan": "pro"}])
    assert answer == {"message": "success", "attributes_processed": 1}
    assert sandbox.braze.user("u1")["custom_attributes"] == {"plan": "pro"}
    assert sandbox.braze.user("nobody") is None


def test_redelivered_request_with_delivery_id_is_applied_once(braze):
    body = {"events": [{"external_id": "u1", "name": "E", "time": "2026-01-01T00:00:00Z"}]}
    headers = {"X-Emulator-Delivery-Id": "d-1"}
    first = braze.post("/users/track", json=body, headers=headers)
    second = braze.post("/users/track", json=body, headers=headers)
    assert (first.status_code, first.json()) == (second.status_code, second.json())
    assert export_one(braze, external_id="u1")["custom_events"][0]["count"] == 1
    braze.post("/users/track", json=body, headers={"X-Emulator-Delivery-Id": "d-2"})
    assert export_one(braze, external_id="u1")["custom_events"][0]["count"] == 2


def test_concurrent_increments_over_sockets_lose_nothing(sandbox_server):
    import threading

    import httpx

    url, headers = sandbox_server.braze_url, {"Authorization": "Bearer sandbox-rest-key"}

    def worker():
        with httpx.Client(base_url=url, headers=headers) as client:
            for _ in range(10):
                body = {"attributes": [{"external_id": "hot", "hits": {"inc": 1}}],
                        "events": [{"external_id": "hot", "name": "Hit", "time": "2025-12-31T00:00:00Z"}]}
                assert client.post("/users/track", json=body).status_code == 201

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    user = sandbox_server.braze.user("hot")
    assert user["custom_attributes"]["hits"] == 60 and user["custom_events"][0]["count"] == 60


def test_a_lone_surrogate_escape_is_stored_as_a_replacement_character(braze, sandbox):
    raw = b'{"attributes": [{"external_id": "u1", "nickname": "\\udc00x"}]}'
    response = braze.post("/users/track", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 201
    assert sandbox.braze.user(external_id="u1")["custom_attributes"]["nickname"] == "\ufffdx"


def test_the_is_all_of_filter_keeps_true_apart_from_1(braze, sandbox):
    attrs(braze, external_id="has_1", flags=[1])
    attrs(braze, external_id="has_true", flags=[True])
    for value, expected in ((True, ["has_true"]), (1, ["has_1"])):
        members = sandbox.braze.segment_members(definition={
            "name": "all", "filters": [{"custom_attribute": "flags", "op": "is_all_of", "value": [value]}]})
        assert [m["external_id"] for m in members] == expected


def test_an_array_of_objects_matches_identifier_values_keeping_true_apart_from_1(braze):
    attrs(braze, pets=[{"id": 1, "name": "Rex"}, {"id": True, "name": "Tom"}])
    user = attrs(braze, pets={"$remove": [{"$identifier_key": "id", "$identifier_value": True}]})
    assert user["custom_attributes"]["pets"] == [{"id": 1, "name": "Rex"}]

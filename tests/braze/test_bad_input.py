"""Bad input on every Braze endpoint answers a documented status and a `{"message": ...}` body, never a 500."""
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import Sandbox

scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=12) | st.sampled_from(["2026-01-01", "a@b.io", "USD", "u1", "", "$time", "x" * 300])
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8) | st.sampled_from(["inc", "add", "remove", "$add",
                                                                                    "$remove", "$update", "$time"]),
                                             inner, max_size=4), max_leaves=12)


def objects(fields: list[str]):
    keys = st.sampled_from(fields) | st.text(max_size=8)
    return st.dictionaries(keys, json_values, max_size=7)


IDS = ["external_id", "user_alias", "braze_id", "email", "phone", "_update_existing_only"]
TRACK = st.fixed_dictionaries({}, optional={
    "attributes": st.lists(objects(IDS + ["first_name", "gender", "country", "dob", "time_zone", "email_subscribe",
                                          "current_location", "subscription_groups", "tags", "_merge_objects"]),
                           max_size=4) | json_values,
    "events": st.lists(objects(IDS + ["name", "time", "properties", "app_id"]), max_size=4) | json_values,
    "purchases": st.lists(objects(IDS + ["product_id", "currency", "price", "quantity", "time", "properties"]),
                          max_size=4) | json_values,
})
ENDPOINTS = {
    "/users/track": ({201, 400}, TRACK),
    "/users/export/ids": ({201, 400}, objects(["external_ids", "user_aliases", "braze_id", "email_address", "phone",
                                                "device_id", "fields_to_export"])),
    "/users/alias/new": ({201, 400}, st.fixed_dictionaries({"user_aliases": st.lists(
        objects(["external_id", "alias_name", "alias_label"]), max_size=3) | json_values})),
    "/users/identify": ({201, 400}, objects(["aliases_to_identify", "emails_to_identify", "phone_numbers_to_identify",
                                             "merge_behavior"])
                        | st.fixed_dictionaries({"aliases_to_identify": st.lists(
                            objects(["external_id", "user_alias"]), max_size=3)})),
    "/users/delete": ({201, 400}, objects(["external_ids", "user_aliases", "braze_ids", "email_addresses",
                                           "phone_numbers"])),
    "/users/merge": ({202, 400}, objects(["merge_updates"]) | st.fixed_dictionaries({"merge_updates": st.lists(
        objects(["identifier_to_merge", "identifier_to_keep"]), max_size=3)})),
    "/partners/segment/cohorts": ({201, 400, 401}, st.fixed_dictionaries(
        {"client_secret": st.just("sandbox-data-import-key") | json_values},
        optional={"name": json_values, "cohort_id": json_values, "created_at": json_values,
                  "partner_api_key": json_values})),
    "/partners/segment/cohorts/users": ({201, 400, 401}, st.fixed_dictionaries(
        {"client_secret": st.just("sandbox-data-import-key") | json_values},
        optional={"cohort_id": json_values, "partner_api_key": json_values, "cohort_changes": st.lists(
            objects(["user_ids", "device_ids", "aliases", "should_remove"]), max_size=3) | json_values})),
}


@pytest.fixture(scope="module")
def shared():
    with Sandbox() as sb:
        sb.braze.track(attributes=[{"external_id": "u1", "email": "a@b.io"}])
        sb.braze.cohorts.upsert({"client_secret": "sandbox-data-import-key", "name": "c", "cohort_id": "u1",
                                 "created_at": "2026-01-01T00:00:00Z"})
        with sb.braze_client() as client:
            yield sb, client


def check(sb, client, path, body, allowed):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    errors, sb.internal_errors[:] = list(sb.internal_errors), []
    assert not errors, errors[0]
    assert response.status_code in allowed | {400}, (path, body, response.status_code, response.text)
    answer = response.json()
    assert isinstance(answer, dict)
    if response.status_code >= 400:
        assert isinstance(answer.get("message"), str) and answer["message"]
    if path == "/users/track" and response.status_code == 201:
        for error in answer.get("errors", []):
            assert set(error) == {"type", "input_array", "index"}
            assert 0 <= error["index"] < len(body[error["input_array"]])
    return response


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          deadline=None)
@given(data=st.data())
def test_random_bodies_get_documented_answers_never_500(shared, path, data):
    sb, client = shared
    allowed, strategy = ENDPOINTS[path]
    check(sb, client, path, data.draw(strategy), allowed)


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(raw=st.binary(max_size=40) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_bytes_get_a_json_answer(shared, path, raw):
    sb, client = shared
    check(sb, client, path, raw, ENDPOINTS[path][0])


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_wrong_key_and_no_key_are_401_on_every_endpoint(shared, path):
    sb, _ = shared
    with httpx.Client(transport=httpx.WSGITransport(app=sb.braze_app), base_url="http://b") as client:
        body = {"client_secret": "wrong"} if path.startswith("/partners") else {}
        response = client.post(path, json=body, headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401 and response.json()["message"] in (
            "Invalid API Key", "Invalid client secret")


ATTRIBUTE_FIELDS = ["first_name", "last_name", "home_city", "email", "phone", "gender", "dob", "country", "language",
                    "time_zone", "email_subscribe", "push_subscribe", "current_location", "subscription_groups",
                    "push_tokens", "date_of_first_session", "marked_email_as_spam_at", "email_open_tracking_disabled",
                    "facebook", "_update_existing_only", "_merge_objects"]


@pytest.mark.parametrize("field", ATTRIBUTE_FIELDS)
def test_wrong_type_in_an_attribute_field_rejects_that_object(braze, field):
    wrong = {"email_open_tracking_disabled": "yes", "_update_existing_only": "no", "_merge_objects": 1}.get(field, 5)
    response = braze.post("/users/track", json={"attributes": [{"external_id": "u1", field: wrong}]})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"type": response.json()["errors"][0]["type"], "input_array": "attributes",
                                          "index": 0}]
    assert braze.post("/users/export/ids", json={"external_ids": ["u1"]}).json()["users"] == []


@pytest.mark.parametrize("array, field, wrong", [
    ("events", "name", 5), ("events", "time", 1767225600), ("events", "properties", "x"), ("events", "app_id", 5),
    ("events", "external_id", 5), ("events", "user_alias", "x"), ("events", "braze_id", 5),
    ("purchases", "product_id", 5), ("purchases", "currency", "usd"), ("purchases", "price", "1"),
    ("purchases", "quantity", 1.5), ("purchases", "quantity", 0), ("purchases", "time", None),
    ("purchases", "properties", []),
])
def test_wrong_type_in_an_event_or_purchase_field_rejects_that_object(braze, array, field, wrong):
    good = {"events": {"external_id": "u1", "name": "E", "time": "2026-01-01T00:00:00Z"},
            "purchases": {"external_id": "u1", "product_id": "p", "currency": "USD", "price": 1,
                          "time": "2026-01-01T00:00:00Z"}}[array]
    response = braze.post("/users/track", json={array: [{**good, field: wrong}, good]})
    assert response.status_code == 201
    assert [(e["input_array"], e["index"]) for e in response.json()["errors"]] == [(array, 0)]
    assert response.json()[f"{array}_processed"] == 1


@pytest.mark.parametrize("path, body", [
    ("/users/track", {"attributes": {"external_id": "u1"}}),
    ("/users/track", {"attributes": [], "events": []}),
    ("/users/track", {"attributez": []}),
    ("/users/export/ids", {"external_ids": "u1"}),
    ("/users/export/ids", {"user_aliases": [{"alias_name": "a"}]}),
    ("/users/export/ids", {"fields_to_export": "email", "external_ids": ["u1"]}),
    ("/users/export/ids", {"braze_id": 5}),
    ("/users/export/ids", {"email_address": "a@b.io", "phone": "+1"}),
    ("/users/alias/new", {"user_aliases": "x"}),
    ("/users/alias/new", {"user_aliases": [{"alias_name": "a", "alias_label": 5}]}),
    ("/users/identify", {"aliases_to_identify": [{"external_id": 5, "user_alias": {"alias_name": "a", "alias_label": "l"}}]}),
    ("/users/identify", {"aliases_to_identify": [], "merge_behavior": "always"}),
    ("/users/delete", {"external_ids": [5]}),
    ("/users/delete", {}),
    ("/users/merge", {"merge_updates": [{"identifier_to_merge": {"email": "a@b.io", "prioritization": "x"},
                                         "identifier_to_keep": {"external_id": "b"}}]}),
])
def test_wrong_types_in_request_fields_are_400_with_a_message(braze, path, body):
    response = braze.post(path, json=body)
    assert response.status_code == 400 and response.json()["message"]

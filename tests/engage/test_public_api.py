"""The Segment Public API subset for audiences and computed traits, with httpx."""
import pytest

TOKEN = {"Authorization": "Bearer sandbox-public-api-token"}
BASE = "/spaces/spa_sandbox"


@pytest.fixture
def api(sandbox):
    client = sandbox.segment_client()
    client.headers.update(TOKEN)
    return client


def test_create_get_list_update_delete_an_audience_with_the_documented_bodies(api, sandbox):
    sandbox.segment.ingest([{"type": "track", "userId": "u1", "event": "Purchased"}])
    created = api.post(f"{BASE}/audiences", json={
        "name": "Profiles Audience V1", "description": "Test profiles audience v1 example", "enabled": True,
        "audienceType": "USERS", "definition": {"query": "event('Purchased').count() >= 1"},
        "options": {"includeHistoricalData": True}})
    assert created.status_code == 200
    audience = created.json()["data"]["audience"]
    assert audience["id"].startswith("aud_") and audience["key"] == "profiles_audience_v1"
    assert audience["spaceId"] == "spa_sandbox" and audience["size"] == {"count": 1, "type": "USERS"}
    assert audience["computeCadence"] == {"type": "REALTIME"}

    got = api.get(f"{BASE}/audiences/{audience['id']}").json()["data"]["audience"]
    assert got["definition"] == {"query": "event('Purchased').count() >= 1"}

    listed = api.get(f"{BASE}/audiences", params={"pagination.count": 10}).json()["data"]
    assert [a["id"] for a in listed["audiences"]] == [audience["id"]]
    assert listed["pagination"]["totalEntries"] == 1

    updated = api.patch(f"{BASE}/audiences/{audience['id']}", json={
        "name": "Profiles Audience V1 Updated", "description": "Updated V1 description", "enabled": True,
        "definition": {"query": "event('Purchased').count() >= 3"},
        "options": {"includeHistoricalData": False, "filterByExternalIds": ["user_id", "email"]}})
    assert updated.status_code == 200
    body = updated.json()["data"]["audience"]
    assert body["name"] == "Profiles Audience V1 Updated" and body["size"]["count"] == 0
    assert body["options"]["filterByExternalIds"] == ["user_id", "email"]

    deleted = api.delete(f"{BASE}/audiences/{audience['id']}")
    assert deleted.json() == {"data": {"status": "SUCCESS"}}
    assert api.get(f"{BASE}/audiences/{audience['id']}").status_code == 404


def test_the_legacy_audience_body_is_accepted(api):
    response = api.post(f"{BASE}/audiences", json={
        "name": "name", "description": "description", "enabled": False,
        "definition": {"query": "event('Shoes Bought').count() >= 1", "type": "USERS"},
        "options": {"includeAnonymousUsers": True, "includeHistoricalData": True}})
    assert response.status_code == 200
    audience = response.json()["data"]["audience"]
    assert audience["enabled"] is False and "anonymous_id" in audience["options"]["filterByExternalIds"]


def test_computed_traits_use_their_own_envelope(api):
    response = api.post(f"{BASE}/computed-traits", json={
        "name": "name", "description": "description", "enabled": False,
        "definition": {"query": "event('Shoes Bought').count()", "type": "USERS"},
        "options": {"includeAnonymousUsers": True, "includeHistoricalData": True, "backfillDurationDays": 7}})
    assert response.status_code == 200
    trait = response.json()["data"]["computedTrait"]
    assert trait["id"].startswith("tra_") and trait["definition"] == {"query": "event('Shoes Bought').count()",
                                                                       "type": "USERS"}
    assert [t["id"] for t in api.get(f"{BASE}/computed-traits").json()["data"]["computedTraits"]] == [trait["id"]]


@pytest.mark.parametrize("body, field", [
    ({"definition": {"query": "event('A').count() >= 1"}, "audienceType": "USERS"}, "name"),
    ({"name": "x", "audienceType": "USERS"}, "definition"),
    ({"name": "x", "audienceType": "USERS", "definition": {"query": "event('A').count() >="}}, "definition.query"),
    ({"name": "x", "audienceType": "USERS", "definition": {"query": "event('A').count()"}}, "definition.query"),
    ({"name": "x", "audienceType": "LINKED", "definition": {"query": "event('A').count() >= 1"}}, "audienceType"),
    ({"name": "x", "audienceType": "USERS", "enabled": "yes", "definition": {"query": "event('A').count() >= 1"}},
     "enabled"),
])
def test_invalid_audiences_are_refused_with_the_field_and_a_clear_message(api, body, field):
    response = api.post(f"{BASE}/audiences", json=body)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == field and error["message"]


def test_a_syntax_error_gives_line_and_column(api):
    response = api.post(f"{BASE}/audiences", json={"name": "x", "audienceType": "USERS",
                                                   "definition": {"query": "event('A').count() >= "}})
    assert "line 1, column" in response.json()["errors"][0]["message"]


def test_the_same_key_twice_is_refused(api):
    body = {"name": "Big Spenders", "audienceType": "USERS", "definition": {"query": "event('A').count() >= 1"}}
    assert api.post(f"{BASE}/audiences", json=body).status_code == 200
    again = api.post(f"{BASE}/audiences", json=body)
    assert again.status_code == 400 and again.json()["errors"][0]["field"] == "key"


def test_the_same_key_sent_by_several_requests_at_once_is_created_once(sandbox):
    import threading

    body = {"name": "Big Spenders", "audienceType": "USERS", "definition": {"query": "event('A').count() >= 1"}}
    for attempt in range(10):
        body["name"] = f"Big Spenders {attempt}"
        statuses: list[int] = []
        start = threading.Barrier(4)

        def create() -> None:
            with sandbox.segment_client() as client:
                client.headers.update(TOKEN)
                start.wait()
                statuses.append(client.post(f"{BASE}/audiences", json=body).status_code)

        threads = [threading.Thread(target=create) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(statuses) == [200, 400, 400, 400]
    assert len(sandbox.engage.computations.definitions.all()) == 10


def test_editing_cannot_turn_a_realtime_audience_into_a_batch_one(api):
    made = api.post(f"{BASE}/audiences", json={"name": "x", "audienceType": "USERS",
                                               "definition": {"query": "event('A').count() >= 1"}}).json()
    response = api.patch(f"{BASE}/audiences/{made['data']['audience']['id']}", json={"definition": {
        "query": "event('A').where(event('B').within(parent: 1 days).count() >= 1).count() >= 1"}})
    assert response.status_code == 400 and "realtime" in response.json()["errors"][0]["message"]


def test_a_wrong_token_is_401_and_an_unknown_space_or_id_404(sandbox):
    client = sandbox.segment_client()
    assert client.get(f"{BASE}/audiences").status_code == 401
    assert client.get(f"{BASE}/audiences", headers={"Authorization": "Bearer nope"}).json()["errors"][0]["type"] == \
        "unauthorized"
    assert client.get("/spaces/spa_other/audiences", headers=TOKEN).status_code == 404
    missing = client.get(f"{BASE}/audiences/aud_missing", headers=TOKEN)
    assert missing.status_code == 404 and missing.json()["errors"][0]["type"] == "not-found"


@pytest.mark.parametrize("options, field", [
    ({"filterByExternalIds": "email"}, "options.filterByExternalIds"),
    ({"filterByExternalIds": []}, "options.filterByExternalIds"),
    ({"includeHistoricalData": "no"}, "options.includeHistoricalData"),
])
def test_an_update_is_checked_as_a_creation_is(api, sandbox, options, field):
    made = api.post(f"{BASE}/audiences", json={"name": "x", "audienceType": "USERS",
                                               "definition": {"query": "event('A').count() >= 1"}}).json()
    audience_id = made["data"]["audience"]["id"]
    response = api.patch(f"{BASE}/audiences/{audience_id}", json={"options": options})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    stored = sandbox.engage.computations.definitions.get(audience_id)
    assert stored.backfill is True and stored.external_id_types == ("user_id", "email", "android.idfa", "ios.idfa")


def test_an_update_of_the_identifiers_keeps_anonymous_users_when_they_were_included(sandbox):
    computations = sandbox.engage.computations
    made = computations.create("audience", key="x", query="event('A').count() >= 1", include_anonymous=True)
    updated = computations.update(made.id, external_id_types=["email"])
    assert updated.external_id_types == ("email", "anonymous_id")


def test_the_lookback_options_limit_the_history_that_counts_and_are_echoed(api, sandbox):
    sandbox.segment.ingest([{"type": "track", "userId": "old", "event": "Order Completed"}])
    sandbox.clock.advance("60d")
    sandbox.segment.ingest([{"type": "track", "userId": "recent", "event": "Order Completed"}])
    sandbox.clock.advance("1d")
    audience = api.post(f"{BASE}/audiences", json={
        "name": "Buyers 7d", "audienceType": "USERS", "definition": {"query": "event('Order Completed').count() >= 1"},
        "options": {"includeHistoricalData": True, "backfillEventDataDays": 7}})
    assert audience.status_code == 200, audience.text
    assert audience.json()["data"]["audience"]["options"]["backfillEventDataDays"] == 7
    trait = api.post(f"{BASE}/computed-traits", json={
        "name": "Purchases 30d", "definition": {"query": "event('Order Completed').count()", "type": "USERS"},
        "options": {"includeHistoricalData": True, "backfillDurationDays": 30}})
    assert trait.status_code == 200, trait.text
    assert trait.json()["data"]["computedTrait"]["options"]["backfillDurationDays"] == 30
    engage = sandbox.engage
    assert engage.computations.members("buyers_7d") == [engage.profile_id_for("user_id", "recent")]
    assert engage.traits(engage.profile_id_for("user_id", "recent"), "computed_trait")["purchases_30d"] == 1
    assert engage.traits(engage.profile_id_for("user_id", "old"), "computed_trait").get("purchases_30d") in (None, 0)


@pytest.mark.parametrize("collection, options, field", [
    ("audiences", {"bogusOption": 1}, "options.bogusOption"),
    ("audiences", {"backfillDurationDays": 7}, "options.backfillDurationDays"),  # the computed traits' name
    ("audiences", {"backfillEventDataDays": 0}, "options.backfillEventDataDays"),
    ("audiences", {"includeHistoricalData": False, "backfillEventDataDays": 7}, "options.backfillEventDataDays"),
    ("computed-traits", {"backfillEventDataDays": 7}, "options.backfillEventDataDays"),
])
def test_an_option_the_emulator_would_not_apply_is_refused_naming_it(api, collection, options, field):
    query = "event('A').count() >= 1" if collection == "audiences" else "event('A').count()"
    body = {"name": "Probe", "audienceType": "USERS", "definition": {"query": query, "type": "USERS"},
            "options": options}
    response = api.post(f"{BASE}/{collection}", json=body)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == field


def test_errors_flask_answers_on_these_paths_keep_each_api_s_shape(api):
    assert api.put(f"{BASE}/audiences/aud_x").json()["errors"][0]["type"] == "method-not-allowed"
    assert api.get(f"{BASE}/audiences/").json()["errors"][0]["type"] == "not-found"
    profile = api.post("/v1/spaces/spa_sandbox/collections/users/profiles/user_id:u1/traits")
    assert profile.status_code == 405 and profile.json()["error"]["code"] == "method_not_allowed"


def test_toggling_anonymous_users_by_editing_is_refused(api):
    created = api.post(f"{BASE}/computed-traits", json={
        "name": "Views", "definition": {"query": "event('Viewed').count()", "type": "USERS"},
        "options": {"includeAnonymousUsers": True}}).json()["data"]["computedTrait"]
    response = api.patch(f"{BASE}/computed-traits/{created['id']}", json={"options": {"includeAnonymousUsers": False}})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "options.includeAnonymousUsers"
    same = api.patch(f"{BASE}/computed-traits/{created['id']}", json={"options": {"includeAnonymousUsers": True}})
    assert same.status_code == 200


def test_an_audience_and_a_computed_trait_cannot_share_a_key(api):
    assert api.post(f"{BASE}/audiences", json={"name": "T", "audienceType": "USERS",
                                               "definition": {"query": "event('A').count() >= 1"}}).status_code == 200
    response = api.post(f"{BASE}/computed-traits", json={"name": "T", "definition": {"query": "event('A').count()",
                                                                                     "type": "USERS"}})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "key"


def test_a_negative_pagination_cursor_is_refused(api):
    response = api.get(f"{BASE}/audiences", params={"pagination.cursor": "-1"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "pagination.cursor"

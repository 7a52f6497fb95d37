"""Partner cohorts as Segment's braze-cohorts destination calls them (reference/braze-api.md §5.2)."""
import httpx
import pytest

from emulator import Sandbox


@pytest.fixture
def partner(sandbox):
    """A client with no REST key: the cohort endpoints authenticate in the body."""
    with httpx.Client(transport=httpx.WSGITransport(app=sandbox.braze_app), base_url="http://braze") as client:
        yield client


def make_users(sandbox, *external_ids):
    sandbox.braze.track(attributes=[{"external_id": e} for e in external_ids])


def members(sandbox, cohort):
    return sorted(m["external_id"] for m in sandbox.braze.cohort_members(cohort))


def test_docs_cohort_bodies_create_add_and_remove(sandbox, partner, docs_examples):
    make_users(sandbox, "w8KWCsdTxe1Ydaf3s62UMc", "user1234")
    create = partner.post("/partners/segment/cohorts", json=docs_examples["cohort_create"]["request"])
    assert (create.status_code, create.json()) == (201, {})
    sandbox.braze.track(attributes=[{"external_id": "user1234"}])
    partner.post("/partners/segment/cohorts/users", json={
        "client_secret": "sandbox-data-import-key", "cohort_id": "aud_23WNzkzsTS3ydnKz5H71SEhMxls",
        "cohort_changes": [{"user_ids": ["user1234"], "device_ids": [], "aliases": []}]})
    assert members(sandbox, "j_o_jons__step_1_ns3i7") == ["user1234"]
    change = partner.post("/partners/segment/cohorts/users", json=docs_examples["cohort_users"]["request"])
    assert (change.status_code, change.json()) == (201, {})
    assert members(sandbox, "aud_23WNzkzsTS3ydnKz5H71SEhMxls") == ["w8KWCsdTxe1Ydaf3s62UMc"]


def test_authentication_probe_with_empty_changes_is_201_for_an_unknown_cohort(partner, docs_examples):
    response = partner.post("/partners/segment/cohorts/users", json=docs_examples["cohort_auth_test"]["request"])
    assert (response.status_code, response.json()) == (201, {})


def test_wrong_client_secret_is_401(partner):
    body = {"client_secret": "nope", "cohort_id": "will_add_in_constant", "cohort_changes": []}
    response = partner.post("/partners/segment/cohorts/users", json=body)
    assert (response.status_code, response.json()) == (401, {"message": "Invalid client secret"})


def test_partner_api_key_may_be_absent_but_must_match_when_sent(partner):
    body = {"client_secret": "sandbox-data-import-key", "name": "n", "cohort_id": "c1",
            "created_at": "2026-01-01T00:00:00Z"}
    assert partner.post("/partners/segment/cohorts", json=body).status_code == 201
    assert partner.post("/partners/segment/cohorts", json={**body, "partner_api_key": "sandbox-partner-key"}).status_code == 201
    response = partner.post("/partners/segment/cohorts", json={**body, "partner_api_key": "other"})
    assert (response.status_code, response.json()) == (401, {"message": "Invalid Partner API key"})


def test_create_is_an_idempotent_upsert_that_renames(sandbox, partner):
    body = {"client_secret": "sandbox-data-import-key", "name": "old", "cohort_id": "c1",
            "created_at": "2026-01-01T00:00:00Z"}
    partner.post("/partners/segment/cohorts", json=body)
    partner.post("/partners/segment/cohorts", json={**body, "name": "new"})
    assert [(c["cohort_id"], c["name"]) for c in sandbox.braze.cohorts.list()] == [("c1", "new")]


def test_only_existing_users_are_added_and_unknown_ids_are_reported(sandbox, partner):
    make_users(sandbox, "known")
    partner.post("/partners/segment/cohorts", json={"client_secret": "sandbox-data-import-key", "name": "n",
                                                    "cohort_id": "c1", "created_at": "2026-01-01T00:00:00Z"})
    response = partner.post("/partners/segment/cohorts/users", json={
        "client_secret": "sandbox-data-import-key", "cohort_id": "c1",
        "cohort_changes": [{"user_ids": ["known", "stranger"], "device_ids": ["dev-1"], "aliases": []}]})
    assert response.status_code == 201
    assert response.json() == {"unknown": {"user_ids": ["stranger"], "device_ids": ["dev-1"]}}
    assert members(sandbox, "c1") == ["known"]
    assert sandbox.braze.user("stranger") is None
    journal = sandbox.journal.search(app="braze", path="/partners/segment/cohorts/users")
    assert journal[0]["response_body"]["unknown"]["user_ids"] == ["stranger"]


def test_aliases_are_matched(sandbox, partner):
    sandbox.braze.track(attributes=[{"user_alias": {"alias_name": "email", "alias_label": "test@twilio.com"},
                                     "_update_existing_only": False}])
    partner.post("/partners/segment/cohorts", json={"client_secret": "sandbox-data-import-key", "name": "n",
                                                    "cohort_id": "c1", "created_at": "2026-01-01T00:00:00Z"})
    partner.post("/partners/segment/cohorts/users", json={
        "client_secret": "sandbox-data-import-key", "cohort_id": "c1",
        "cohort_changes": [{"user_ids": [], "device_ids": [], "aliases": [{"alias_name": "email",
                                                                            "alias_label": "test@twilio.com"}]}]})
    assert len(sandbox.braze.cohort_members("c1")) == 1


@pytest.mark.parametrize("body, message", [
    ({"cohort_id": 5, "cohort_changes": []}, "cohort_id must be a valid string"),
    ({"cohort_id": "c", "cohort_changes": [{"user_ids": "u1"}]}, "cohort_changes must be an array"),
    ({"cohort_id": "c", "cohort_changes": [{"user_ids": [f"u{i}" for i in range(1001)]}]},
     "Only 1,000 user_ids, device_ids, and aliases are allowed per request"),
])
def test_bad_cohort_changes_are_400_with_the_documented_message(partner, body, message):
    response = partner.post("/partners/segment/cohorts/users", json={"client_secret": "sandbox-data-import-key", **body})
    assert response.status_code == 400 and response.json()["message"].startswith(message)


@pytest.mark.parametrize("field, value, message", [
    ("name", "", "name must be a non-empty string"),
    ("created_at", "yesterday", "created_at must be a valid time as an ISO-8601 string"),
    ("cohort_id", None, "cohort_id must be a valid string"),
])
def test_bad_cohort_create_is_400(partner, field, value, message):
    body = {"client_secret": "sandbox-data-import-key", "name": "n", "cohort_id": "c1",
            "created_at": "2026-01-01T00:00:00Z", field: value}
    response = partner.post("/partners/segment/cohorts", json=body)
    assert (response.status_code, response.json()) == (400, {"message": message})


def test_segment_destination_bodies_create_cohort_add_and_remove_and_segment_follows(sandbox, partner,
                                                                                     destination_requests):
    make_users(sandbox, "u6", "u8", "c1", "c2")
    sandbox.braze.define_segment({"name": "Dormant", "filters": [{"segment_cohort": "dormant_shopper"}]})
    seen = []
    for request in destination_requests:
        if not request["path"].startswith("/partners/"):
            continue
        response = partner.post(request["path"], json=request["body"])
        assert response.status_code == 201, (request["case"], response.text)
        if request["path"].endswith("/users"):
            seen.append(members(sandbox, "aud_2f1"))
            assert [m["external_id"] for m in sandbox.braze.segment_members("Dormant")] == seen[-1]
    assert seen == [["u6"], [], ["u8"], ["c2", "u8"]]


def test_every_segment_destination_track_body_is_accepted(sandbox, destination_requests):
    with sandbox.braze_client() as client:
        for request in destination_requests:
            if request["path"] == "/users/track":
                response = client.post("/users/track", json=request["body"])
                assert response.status_code == 201, (request["case"], response.text)
                assert "errors" not in response.json(), request["case"]
    user = sandbox.braze.user("u1")
    assert user["email"] == "ana@example.com" and user["custom_attributes"]["plan"] == "pro"
    assert {p["name"] for p in user["purchases"]} == {"p1", "p2"}
    assert sandbox.braze.user("u3")["country"] == "PT"
    assert sandbox.braze.user(email="anon@example.com") is not None


def test_cohort_membership_is_not_in_a_fresh_sandbox():
    with Sandbox() as sb:
        assert sb.braze.cohorts.list() == []


def test_changes_for_a_cohort_never_created_are_a_400_naming_it_and_change_nothing(sandbox, partner):
    make_users(sandbox, "u1")
    body = {"client_secret": "sandbox-data-import-key", "cohort_id": "never_created",
            "cohort_changes": [{"user_ids": ["u1"], "device_ids": [], "aliases": []}]}
    for _ in range(3):  # the same catalogue error, raised again and again
        response = partner.post("/partners/segment/cohorts/users", json=body)
        assert response.status_code == 400
        assert "no cohort 'never_created' was created" in response.json()["message"]
    assert members(sandbox, "never_created") == []


def test_a_shared_catalogue_error_does_not_keep_its_tracebacks(partner):
    from emulator.braze import errors

    for _ in range(3):
        partner.post("/users/track", json={"attributes": []}, headers={"Authorization": "Bearer wrong"})
    assert errors.INVALID_API_KEY.__traceback__ is None


def test_a_catalogue_error_raised_through_the_python_api_starts_a_new_traceback_each_time(sandbox):
    from emulator.braze.errors import BrazeError

    depths = []
    for _ in range(3):
        try:
            sandbox.braze.cohorts.change_users({"client_secret": "nope", "cohort_id": "c", "cohort_changes": []})
        except BrazeError as error:
            depth, tb = 0, error.__traceback__
            while tb:
                depth, tb = depth + 1, tb.tb_next
            depths.append(depth)
    assert len(set(depths)) == 1 and depths[0] > 0

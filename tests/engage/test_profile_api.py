"""The Profile API over HTTP: auth, shapes, parameters, pagination and errors as Segment documents them."""
from __future__ import annotations

import base64

import httpx
import pytest

from emulator import Sandbox

BASE = "/v1/spaces/spa_sandbox/collections/users/profiles"
AUTH = ("sandbox-profile-token", "")


def _get(client: httpx.Client, path: str, auth: tuple[str, str] | None = AUTH, **params: object) -> httpx.Response:
    return client.get(path, params=params or None, auth=auth)


@pytest.fixture
def jane(sandbox: Sandbox) -> str:
    sandbox.segment.ingest([
        {"type": "track", "event": "Viewed", "anonymousId": "a1", "properties": {"sku": "s1"}},
        {"type": "identify", "userId": "u1", "anonymousId": "a1",
         "traits": {"email": "jane@example.com", "first_name": "Jane", "city": "Oslo"}},
    ])
    return sandbox.engage.resolve("user_id:u1")


def test_unknown_profile_answers_the_documented_404_body(segment: httpx.Client, jane: str) -> None:
    for resource in ("traits", "external_ids", "events", "metadata", "links"):
        response = _get(segment, f"{BASE}/user_id:nobody/{resource}")
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not_found", "message": "Profile was not found."}}


def test_a_wrong_or_missing_token_is_401(segment: httpx.Client, jane: str) -> None:
    for auth in (("wrong-token", ""), None, ("", "sandbox-profile-token")):
        response = _get(segment, f"{BASE}/user_id:u1/traits", auth=auth)
        assert response.status_code == 401
        assert response.json() == {"error": {"code": "authentication_error",
                                             "message": "No valid Access Token provided."}}
    token = base64.b64encode(b"sandbox-profile-token:").decode()
    assert segment.get(f"{BASE}/user_id:u1/traits", headers={"Authorization": f"Basic {token}"}).status_code == 200


def test_an_unknown_space_is_404(segment: httpx.Client, jane: str) -> None:
    response = _get(segment, "/v1/spaces/spa_other/collections/users/profiles/user_id:u1/traits")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_traits_by_any_external_id(segment: httpx.Client, jane: str) -> None:
    for identifier in ("user_id:u1", "anonymous_id:a1", "email:jane@example.com", "USER_ID:u1", jane):
        body = _get(segment, f"{BASE}/{identifier}/traits").json()
        assert body["traits"] == {"city": "Oslo", "email": "jane@example.com", "first_name": "Jane"}
        assert body["cursor"] == {"url": f"{BASE}/{jane}/traits", "has_more": False, "next": "", "limit": 10}


def test_verbose_include_and_class(sandbox: Sandbox, segment: httpx.Client, jane: str) -> None:
    sandbox.engage.set_trait(jane, "big_spender", True, "audience")
    sandbox.engage.set_trait(jane, "orders_90d", 3, "computed_trait")
    body = _get(segment, f"{BASE}/user_id:u1/traits", verbose="true", include="city,first_name").json()
    assert body["traits"] == {
        "city": {"value": "Oslo", "source_id": "sandbox", "updated_at": "2026-01-01T00:00:00.000Z"},
        "first_name": {"value": "Jane", "source_id": "sandbox", "updated_at": "2026-01-01T00:00:00.000Z"}}
    assert _get(segment, f"{BASE}/user_id:u1/traits", **{"class": "audience"}).json()["traits"] == {
        "big_spender": True}
    assert _get(segment, f"{BASE}/user_id:u1/traits", **{"class": "computed_trait"}).json()["traits"] == {
        "orders_90d": 3}


def test_trait_pages_follow_the_next_cursor_to_the_end(sandbox: Sandbox, segment: httpx.Client) -> None:
    sandbox.segment.ingest({"type": "identify", "userId": "u1", "traits": {f"t{i:02}": i for i in range(25)}})
    seen, params = {}, {"limit": 10}
    for _ in range(5):
        body = _get(segment, f"{BASE}/user_id:u1/traits", **params).json()
        seen.update(body["traits"])
        assert len(body["traits"]) <= 10 and body["cursor"]["limit"] == 10
        if not body["cursor"]["has_more"]:
            assert body["cursor"]["next"] == ""
            break
        params = {"limit": 10, "next": body["cursor"]["next"]}
    assert seen == {f"t{i:02}": i for i in range(25)}
    assert len(_get(segment, f"{BASE}/user_id:u1/traits", limit=200).json()["traits"]) == 25


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"verbose": "yes"},
                                    {"class": "everything"}])
def test_invalid_trait_parameters_are_400(segment: httpx.Client, jane: str, params: dict) -> None:
    response = _get(segment, f"{BASE}/user_id:u1/traits", **params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request_error"


@pytest.mark.parametrize("path, params", [("events", {"sort": "up"}), ("events", {"start": "yesterday"}),
                                          ("events", {"limit": 101}), ("events", {"next": "!!"}),
                                          ("external_ids", {"limit": 101}), ("external_ids", {"next": "bogus"})])
def test_invalid_list_parameters_are_400(segment: httpx.Client, jane: str, path: str, params: dict) -> None:
    response = _get(segment, f"{BASE}/user_id:u1/{path}", **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request_error"


def test_malformed_identifier_and_collection_are_validation_errors(segment: httpx.Client, jane: str) -> None:
    assert _get(segment, f"{BASE}/u1/traits").json()["error"]["code"] == "validation_error"
    response = _get(segment, "/v1/spaces/spa_sandbox/collections/us!rs/profiles/user_id:u1/traits")
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "validation_error",
                                         "message": "The parameter `collection` has invalid character(s) `!`"}}


def test_external_ids_shape_include_and_pages(sandbox: Sandbox, segment: httpx.Client, jane: str) -> None:
    body = _get(segment, f"{BASE}/user_id:u1/external_ids").json()
    first = body["data"][0]
    assert first == {"source_id": "sandbox", "collection": "users", "id": "a1", "type": "anonymous_id",
                     "created_at": "2026-01-01T00:00:00.000Z", "encoding": "none",
                     "first_message_id": first["first_message_id"]}
    assert [d["type"] for d in body["data"]] == ["anonymous_id", "user_id", "email"]
    assert [d["id"] for d in _get(segment, f"{BASE}/user_id:u1/external_ids", include="email").json()["data"]] == [
        "jane@example.com"]
    page1 = _get(segment, f"{BASE}/user_id:u1/external_ids", limit=2).json()
    assert page1["cursor"]["has_more"] is True
    page2 = _get(segment, f"{BASE}/user_id:u1/external_ids", limit=2, next=page1["cursor"]["next"]).json()
    assert [d["id"] for d in page1["data"] + page2["data"]] == ["a1", "u1", "jane@example.com"]
    assert page2["cursor"]["has_more"] is False


def test_events_shape_newest_first(segment: httpx.Client, jane: str) -> None:
    body = _get(segment, f"{BASE}/user_id:u1/events").json()
    assert [e["type"] for e in body["data"]] == ["identify", "track"]
    track = body["data"][1]
    assert track["event"] == "Viewed" and track["properties"] == {"sku": "s1"}
    assert track["related"] == {"users": jane} and track["source_id"] == "sandbox"
    assert track["external_ids"] == [{"collection": "users", "type": "anonymous_id", "id": "a1", "encoding": "none"}]
    assert set(track) >= {"external_ids", "context", "type", "message_id", "source_id", "timestamp", "properties",
                          "event", "related"}


def test_events_only_reach_back_14_days(sandbox: Sandbox, segment: httpx.Client, jane: str) -> None:
    sandbox.advance("10d")
    sandbox.segment.ingest({"type": "track", "event": "Later", "userId": "u1"})
    assert len(_get(segment, f"{BASE}/user_id:u1/events").json()["data"]) == 3
    sandbox.advance("5d")
    assert [e["event"] for e in _get(segment, f"{BASE}/user_id:u1/events").json()["data"]] == ["Later"]
    # an earlier `start` does not widen the window
    assert len(_get(segment, f"{BASE}/user_id:u1/events", start="2025-01-01").json()["data"]) == 1


def test_events_filters_sort_and_pages(sandbox: Sandbox, segment: httpx.Client, jane: str) -> None:
    for hour in range(1, 8):
        sandbox.set_time(f"2026-01-01T{hour:02}:00:00Z")
        sandbox.segment.ingest({"type": "track", "event": "Odd" if hour % 2 else "Even", "userId": "u1"})
    path = f"{BASE}/user_id:u1/events"
    assert len(_get(segment, path, include="Odd").json()["data"]) == 4
    assert {e["event"] for e in _get(segment, path, exclude="Odd,Viewed").json()["data"]} == {"Even", None}
    window = _get(segment, path, start="2026-01-01T02:30:00Z", end="2026-01-01T05:30:00Z", sort="asc").json()
    assert [e["timestamp"][11:13] for e in window["data"]] == ["03", "04", "05"]
    collected, params = [], {"limit": 3, "sort": "asc"}
    while True:
        body = _get(segment, path, **params).json()
        collected += [e["message_id"] for e in body["data"]]
        if not body["cursor"]["has_more"]:
            break
        params = {"limit": 3, "sort": "asc", "next": body["cursor"]["next"]}
    everything = _get(segment, path, limit=100, sort="desc").json()["data"]
    assert collected == [e["message_id"] for e in reversed(everything)] and len(collected) == 9


def test_metadata_names_first_and_last_messages(sandbox: Sandbox, segment: httpx.Client, jane: str) -> None:
    sandbox.advance("1h")
    sandbox.segment.ingest({"type": "track", "event": "Last", "userId": "u1", "messageId": "last-one"})
    meta = _get(segment, f"{BASE}/user_id:u1/metadata").json()["metadata"]
    events = sandbox.engage.events(jane)
    assert meta == {"created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T01:00:00.000Z",
                    "expires_at": None, "first_message_id": events[0]["messageId"], "first_source_id": "sandbox",
                    "last_message_id": "last-one", "last_source_id": "sandbox"}


def test_links_and_account_profiles(sandbox: Sandbox, segment: httpx.Client, jane: str) -> None:
    sandbox.segment.ingest({"type": "group", "userId": "u1", "groupId": "g-42", "traits": {"plan": "pro"}})
    links = _get(segment, f"{BASE}/user_id:u1/links").json()["data"]
    assert [(link["to_collection"], [(x["type"], x["id"]) for x in link["external_ids"]]) for link in links] == [
        ("accounts", [("group_id", "g-42")])]
    accounts = "/v1/spaces/spa_sandbox/collections/accounts/profiles/group_id:g-42"
    assert _get(segment, f"{accounts}/traits").json()["traits"] == {"plan": "pro"}
    users = _get(segment, f"{accounts}/links").json()["data"]
    assert users[0]["to_collection"] == "users"
    assert ("user_id", "u1") in {(x["type"], x["id"]) for x in users[0]["external_ids"]}
    assert _get(segment, f"{BASE}/group_id:g-42/traits").status_code == 404  # a group id is no user id


def test_a_merged_profile_id_still_answers(sandbox: Sandbox, segment: httpx.Client) -> None:
    sandbox.segment.ingest({"type": "track", "event": "E", "anonymousId": "x1"})
    sandbox.segment.ingest({"type": "track", "event": "E", "anonymousId": "x2"})
    gone = sandbox.engage.resolve("anonymous_id:x2")
    sandbox.segment.ingest({"type": "identify", "anonymousId": "x2", "userId": "u9"})
    sandbox.segment.ingest({"type": "identify", "anonymousId": "x1", "userId": "u9"})
    body = _get(segment, f"{BASE}/{gone}/events").json()
    assert len(body["data"]) == 4 and body["data"][0]["related"]["users"] == sandbox.engage.resolve("user_id:u9")


def test_every_answer_carries_a_request_id(segment: httpx.Client, jane: str) -> None:
    assert _get(segment, f"{BASE}/user_id:u1/metadata").headers["Request-Id"]
    assert _get(segment, f"{BASE}/user_id:zz/metadata").headers["Request-Id"]


def test_identifiers_with_encoded_characters(sandbox: Sandbox, segment: httpx.Client) -> None:
    sandbox.segment.ingest({"type": "identify", "userId": "a/b+c d", "traits": {"ok": True}})
    response = _get(segment, f"{BASE}/user_id:a%2Fb%2Bc%20d/traits")
    assert response.status_code == 200 and response.json()["traits"] == {"ok": True}

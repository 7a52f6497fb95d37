"""Keys, permissions, error bodies and rate limits of the Braze app (SPEC.md §2)."""
import pytest

from emulator import Sandbox
from emulator.braze import errors


def test_unknown_key_is_401_invalid_api_key(braze):
    response = braze.post("/users/track", json={"attributes": []}, headers={"Authorization": "Bearer wrong"})
    assert (response.status_code, response.json()) == (401, errors.INVALID_API_KEY.body())


def test_missing_key_is_401(sandbox):
    import httpx

    with httpx.Client(transport=httpx.WSGITransport(app=sandbox.braze_app), base_url="http://b") as client:
        assert client.post("/users/track", json={}).status_code == 401


def test_body_api_key_is_accepted(sandbox):
    import httpx

    with httpx.Client(transport=httpx.WSGITransport(app=sandbox.braze_app), base_url="http://b") as client:
        response = client.post("/users/track", json={"api_key": "sandbox-rest-key",
                                                      "attributes": [{"external_id": "u1"}]})
    assert response.status_code == 201


def test_key_without_the_permission_is_403_access_denied():
    config = {"braze": {"rest_api_keys": ["sandbox-rest-key", {"key": "track-only", "permissions": ["users.track"]}]}}
    with Sandbox(config=config) as sb, sb.braze_client("track-only") as client:
        assert client.post("/users/track", json={"attributes": [{"external_id": "u1"}]}).status_code == 201
        response = client.post("/users/export/ids", json={"external_ids": ["u1"]})
        assert (response.status_code, response.json()) == (403, {"message": "Access Denied"})


def test_unknown_path_is_404_not_found(braze):
    response = braze.post("/users/nothing", json={})
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})


def test_a_body_past_what_the_app_reads_is_413_payload_too_large_not_an_emulator_error(braze, sandbox):
    response = braze.post("/users/track", content=b" " * (17 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (413, {"message": "Payload Too Large"})
    assert sandbox.internal_errors == []


def test_non_json_body_is_400(braze):
    response = braze.post("/users/track", content=b"{'single': 'quotes'}")
    assert response.status_code == 400 and response.json()["message"].startswith("Invalid JSON")


def test_rate_limit_headers_are_on_every_answer(braze):
    for response in (braze.post("/users/track", json={"attributes": [{"external_id": "u1"}]}),
                     braze.post("/users/nope", json={}),
                     braze.post("/users/track", json={}, headers={"Authorization": "Bearer bad"})):
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(response.headers)


def test_past_the_limit_answers_429_with_retry_after_until_the_clock_moves():
    config = {"braze": {"rate_limits": {"users.track": {"limit": 2, "window_seconds": 3}}}}
    with Sandbox(config=config) as sb, sb.braze_client() as client:
        body = {"attributes": [{"external_id": "u1"}]}
        first = client.post("/users/track", json=body)
        assert first.headers["X-RateLimit-Limit"] == "2" and first.headers["X-RateLimit-Remaining"] == "1"
        assert client.post("/users/track", json=body).status_code == 201
        limited = client.post("/users/track", json=body)
        assert (limited.status_code, limited.json()) == (429, {"message": "Rate Limited"})
        assert limited.headers["Retry-After"] == "3"
        assert int(limited.headers["X-RateLimit-Reset"]) == int(sb.clock.now().timestamp()) + 3
        # other buckets are unaffected
        assert client.post("/users/export/ids", json={"external_ids": ["u1"]}).status_code == 201
        sb.advance("3s")
        assert client.post("/users/track", json=body).status_code == 201


def test_reset_starts_new_rate_limit_windows():
    config = {"braze": {"rate_limits": {"users.track": {"limit": 1, "window_seconds": 60}}}}
    with Sandbox(config=config) as sb, sb.braze_client() as client:
        body = {"attributes": [{"external_id": "u1"}]}
        assert client.post("/users/track", json=body).status_code == 201
        assert client.post("/users/track", json=body).status_code == 429
        sb.reset()
        assert client.post("/users/track", json=body).status_code == 201


def test_default_limits_are_documented_values(sandbox):
    assert sandbox.braze.auth.limit_for("users.track") == (50_000, 60)
    assert sandbox.braze.auth.limit_for("users.identity") == (20_000, 60)


@pytest.mark.parametrize("bad", [
    {"rest_api_keys": [{"permissions": ["users.track"]}]},
    {"rest_api_keys": [3]},
    {"rate_limits": {"users.trak": {"limit": 1}}},
    {"rate_limits": {"users.track": {"limit": -1}}},
    {"segments": [{"name": "x", "filters": [{"custom_attribute": "a", "op": "sparkles"}]}]},
])
def test_bad_braze_configuration_is_refused_at_load(bad):
    from emulator.config import ConfigError

    with pytest.raises(ConfigError):
        Sandbox(config={"braze": bad})


def test_json_nested_thousands_deep_is_a_400_not_a_crash(braze):
    deep = "[" * 5000 + "]" * 5000
    response = braze.post("/users/track", content=('{"attributes": [{"external_id": "u1", "x": %s}]}' % deep).encode())
    assert response.status_code == 400


def test_control_routes_need_the_control_token_when_one_is_set():
    with Sandbox(config={"control_token": "secret"}) as sb, sb.braze_client() as client:
        assert client.get("/_emulator/braze/segments").status_code == 401
        assert client.get("/_emulator/braze/segments", headers={"X-Emulator-Token": "secret"}).status_code == 200


def test_braze_app_is_served_on_a_real_socket(sandbox_server):
    import httpx

    url = sandbox_server.braze_url
    headers = {"Authorization": "Bearer sandbox-rest-key"}
    response = httpx.post(f"{url}/users/track", json={"attributes": [{"external_id": "s1"}]}, headers=headers)
    assert response.status_code == 201 and response.headers["X-RateLimit-Limit"]
    exported = httpx.post(f"{url}/users/export/ids", json={"external_ids": ["s1"]}, headers=headers).json()
    assert exported["users"][0]["external_id"] == "s1"

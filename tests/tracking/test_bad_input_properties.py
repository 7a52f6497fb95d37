"""Property-based: whatever is thrown at the Tracking API, the answer is a documented one, never a 500,
and every message of a 200 is accounted for in the debugger (accepted, dropped or rejected)."""
import base64
import gzip
import json

from hypothesis import given
from hypothesis import strategies as st

from emulator.segment.tracking import ENDPOINTS

FIELDS = ["type", "userId", "anonymousId", "event", "writeKey", "properties", "traits", "context", "integrations",
          "timestamp", "sentAt", "originalTimestamp", "messageId", "groupId", "previousId", "name", "category", "batch"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
                    st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "sandbox-write-key",
                                     "2026-01-01T00:00:00Z", "2026-13-45T99:99:99", "9999-12-31T23:59:59Z",
                                     "0001-01-01T00:00:00+14:00"]))
values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=5)),
    max_leaves=20)
messages = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)
bodies = st.one_of(
    messages.map(lambda m: json.dumps(m).encode()),
    st.builds(lambda items, extra: json.dumps({**extra, "batch": items}).encode(),
              st.lists(st.one_of(messages, values), max_size=6), messages),
    values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
content_types = st.sampled_from([None, "application/json", "text/plain", "application/x-www-form-urlencoded",
                                 "multipart/form-data; boundary=x", "application/json; charset=latin-1"])
auths = st.sampled_from([None, "Basic " + base64.b64encode(b"sandbox-write-key:").decode(), "Basic !!!notbase64",
                         "Basic " + base64.b64encode(b"\xff\xfe").decode(), "Bearer token", "Digest x", ""])
paths = st.one_of(st.sampled_from([f"/v1/{e}" for e in ENDPOINTS]), st.sampled_from(["/v1/", "/v1/tracks", "/v2/track"]))


def _items_in(body: bytes, path: str) -> int | None:
    """How many messages a 200 must account for, or None when it cannot be told from outside."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if path.rsplit("/", 1)[-1] in ("batch", "import", "b"):
        return len(parsed["batch"])
    return 1


def test_no_input_gets_a_500_or_an_undocumented_answer(sandbox):
    client = sandbox.segment_client()

    @given(path=paths, body=bodies, content_type=content_types, auth=auths, gzipped=st.booleans(),
           method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]))
    def check(path, body, content_type, auth, gzipped, method):
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if auth is not None:
            headers["Authorization"] = auth
        sent = body
        if gzipped:
            headers["Content-Encoding"] = "gzip"
            sent = gzip.compress(body)
        before = len(sandbox.segment.debugger(limit=1000))
        response = client.request(method, path, content=sent, headers=headers)
        known = path.rsplit("/", 1)[-1] in ENDPOINTS and path.startswith("/v1/")
        if not known:
            assert response.status_code in (404, 405), response.text
        elif method != "POST":
            assert response.status_code == 405
        else:
            assert response.status_code in (200, 400), response.text
        payload = response.json()
        if response.status_code == 200:
            assert payload == {"success": True}
            expected = _items_in(body, path)
            if expected is not None:
                assert len(sandbox.segment.debugger(limit=1000)) == min(before + expected, 1000)
        else:
            assert set(payload) == {"code", "message"} and payload["message"]
        assert sandbox.internal_errors == []

    check()

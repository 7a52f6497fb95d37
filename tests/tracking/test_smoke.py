def test_track_is_acknowledged_and_lands_in_the_debugger(segment, sandbox):
    response = segment.post("/v1/track", json={"userId": "u1", "event": "Signed Up", "writeKey": "sandbox-write-key"})
    assert response.status_code == 200
    assert response.json() == {"success": True}
    [entry] = sandbox.segment.debugger()
    assert (entry["status"], entry["event"], entry["userId"]) == ("accepted", "Signed Up", "u1")

"""Helpers shared by the Braze tests."""


def export_one(braze, **ids) -> dict | None:
    """The one user an export by these ids returns (None when it returns none)."""
    body = {}
    if "external_id" in ids:
        body["external_ids"] = [ids["external_id"]]
    if "alias" in ids:
        body["user_aliases"] = [{"alias_name": ids["alias"][0], "alias_label": ids["alias"][1]}]
    if "email" in ids:
        body["email_address"] = ids["email"]
    response = braze.post("/users/export/ids", json=body)
    assert response.status_code == 201, response.text
    users = response.json()["users"]
    assert len(users) <= 1
    return users[0] if users else None

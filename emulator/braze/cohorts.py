"""Partner cohort import, as Segment's Braze Cohorts destination uses it (reference/braze-api.md §5).

- `POST /partners/segment/cohorts` creates or renames a cohort: an idempotent upsert answering `201 {}`, because
  the destination re-posts the cohort before every batch when it has no state context.
- `POST /partners/segment/cohorts/users` applies `cohort_changes` (`user_ids` = external ids, `device_ids`,
  `aliases`, `should_remove`), at most 1,000 ids per request. Only users that already exist in Braze are added
  ("A user can only be added to a cohort if the user already exists in Braze", segment-docs); the ids that
  matched nobody are listed in the answer under `unknown` (an emulator addition; the destination ignores
  the body) and so in the request journal. The emulator records no devices, so a device id matches nobody.
- An empty change list is answered 201 whatever the cohort id: it is the destination's authentication test
  (`cohort_id: "will_add_in_constant"`).
- `client_secret` must be one of `braze.data_import_keys` (401 "Invalid client secret"); `partner_api_key` may be
  absent (the destination omits it when its env var is unset) but, when sent, must be `braze.partner_api_key`.
"""
from __future__ import annotations

from itertools import repeat
from typing import TYPE_CHECKING, Any

from . import errors
from .users import Profiles, parse_alias
from .values import parse_time, time_text

if TYPE_CHECKING:
    from ..sandbox import Sandbox
    from .auth import Auth

MAX_IDS = 1000
CREATE_KEYS = {"partner_api_key", "client_secret", "name", "cohort_id", "created_at"}
CHANGE_KEYS = {"partner_api_key", "client_secret", "cohort_id", "cohort_changes"}


class Cohorts:
    def __init__(self, sandbox: "Sandbox", profiles: Profiles, auth: "Auth") -> None:
        self.sandbox = sandbox
        self.profiles = profiles
        self.auth = auth

    def _authenticate(self, body: Any, allowed: set) -> dict:
        if not isinstance(body, dict):
            raise errors.INVALID_JSON()
        if not self.auth.is_data_import_key(body.get("client_secret")):
            raise errors.INVALID_CLIENT_SECRET()
        partner_key = body.get("partner_api_key")
        expected = self.sandbox.config["braze"].get("partner_api_key")
        if partner_key is not None and expected is not None and partner_key != expected:
            raise errors.INVALID_PARTNER_API_KEY()
        for key in body:
            if key not in allowed:
                raise errors.bad_request(f"'{str(key)[:64]}' is not a valid field")
        return body

    def upsert(self, body: Any) -> dict:
        body = self._authenticate(body, CREATE_KEYS)
        cohort_id, name = body.get("cohort_id"), body.get("name")
        if not isinstance(cohort_id, str) or not cohort_id.strip():
            raise errors.COHORT_ID_INVALID()
        if not isinstance(name, str) or not name.strip():
            raise errors.COHORT_NAME_INVALID()
        created = parse_time(body.get("created_at")) if isinstance(body.get("created_at"), str) else None
        if created is None:
            raise errors.COHORT_CREATED_AT_INVALID()
        now = time_text(self.sandbox.clock.now())
        with self.sandbox.store.transaction() as conn:
            conn.execute(
                "INSERT INTO braze_cohorts (cohort_id, name, created_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (cohort_id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
                (cohort_id, name, time_text(created), now))
        return {}

    def change_users(self, body: Any) -> dict:
        body = self._authenticate(body, CHANGE_KEYS)
        cohort_id, changes = body.get("cohort_id"), body.get("cohort_changes")
        if not isinstance(cohort_id, str) or not cohort_id.strip():
            raise errors.COHORT_ID_INVALID()
        if not isinstance(changes, list):
            raise errors.COHORT_CHANGES_INVALID()
        parsed = []
        total = 0
        for change in changes:
            if not isinstance(change, dict) or set(change) - {"user_ids", "device_ids", "aliases", "should_remove"}:
                raise errors.COHORT_CHANGES_INVALID()
            user_ids, device_ids = change.get("user_ids", []), change.get("device_ids", [])
            aliases = change.get("aliases", [])
            for ids in (user_ids, device_ids):
                if not isinstance(ids, list) or not all(map(isinstance, ids, repeat(str))):
                    raise errors.COHORT_CHANGES_INVALID()
            if isinstance(aliases, dict):
                aliases = [aliases]
            if not isinstance(aliases, list) or any(parse_alias(a) is None for a in aliases):
                raise errors.COHORT_CHANGES_INVALID()
            remove = change.get("should_remove", False)
            if not isinstance(remove, bool):
                raise errors.COHORT_CHANGES_INVALID()
            total += len(user_ids) + len(device_ids) + len(aliases)
            parsed.append((user_ids, device_ids, [parse_alias(a) for a in aliases], remove))
        if total > MAX_IDS:
            raise errors.COHORT_TOO_MANY_IDS()
        unknown: dict[str, list] = {"user_ids": [], "device_ids": [], "aliases": []}
        with self.sandbox.store.transaction() as conn:
            known = conn.execute("SELECT 1 FROM braze_cohorts WHERE cohort_id = ?", (cohort_id,)).fetchone()
            if not known:
                if total == 0:
                    return {}  # the destination's authentication test
                raise errors.unknown_cohort(cohort_id)
            now = time_text(self.sandbox.clock.now())
            # one SELECT for every user id of the request (membership changes do not move external ids)
            found = self.profiles.by_external_ids([i for user_ids, *_ in parsed for i in user_ids])
            for user_ids, device_ids, aliases, remove in parsed:
                members = []
                for external_id in user_ids:
                    braze_id = found.get(external_id)
                    (members.append(braze_id) if braze_id else unknown["user_ids"].append(external_id))
                unknown["device_ids"] += device_ids
                for alias in aliases:
                    braze_id = self.profiles.by_alias(*alias)
                    if braze_id:
                        members.append(braze_id)
                    else:
                        unknown["aliases"].append({"alias_name": alias[0], "alias_label": alias[1]})
                if remove:
                    conn.executemany("DELETE FROM braze_cohort_members WHERE cohort_id = ? AND braze_id = ?",
                                     [(cohort_id, m) for m in members])
                else:
                    conn.executemany("INSERT OR IGNORE INTO braze_cohort_members (cohort_id, braze_id, added_at) "
                                     "VALUES (?, ?, ?)", [(cohort_id, m, now) for m in members])
        unknown = {key: value for key, value in unknown.items() if value}
        return {"unknown": unknown} if unknown else {}

    # --- Python views ---------------------------------------------------------------------------------
    def list(self) -> list[dict]:
        return self.sandbox.store.query(
            "SELECT c.cohort_id, c.name, c.created_at, c.updated_at, "
            "(SELECT count(*) FROM braze_cohort_members m WHERE m.cohort_id = c.cohort_id) AS size "
            "FROM braze_cohorts c ORDER BY c.created_at, c.cohort_id")

    def members(self, cohort: str) -> list[dict]:
        """Members of a cohort given by id or name."""
        return self.sandbox.store.query(
            "SELECT u.braze_id, u.external_id FROM braze_cohort_members m JOIN braze_users u USING (braze_id) "
            "WHERE m.cohort_id IN (SELECT cohort_id FROM braze_cohorts WHERE cohort_id = ? OR name = ?) "
            "ORDER BY u.external_id, u.braze_id", (cohort, cohort))

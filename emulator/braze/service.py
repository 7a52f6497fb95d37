"""`sandbox.braze`: the Braze workspace as a plain Python object (no HTTP needed).

Every rule lives in the modules below; this facade only wires them to one sandbox:
`users` (profiles and `/users/track`), `export`, `identity` (alias, identify, merge, delete), `cohorts` (partner
cohorts), `segments` (named segments and their membership), `auth` (keys, permissions, rate limits). It keeps no
state of its own: profiles, cohorts and counters are in the store, segment definitions in the configuration.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .auth import Auth
from .cohorts import Cohorts
from .export import Exporter
from .identity import Identity
from .segments import Segments
from .users import Profiles, UserTrack

if TYPE_CHECKING:
    from ..sandbox import Sandbox


class BrazeWorkspace:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self.auth = Auth(sandbox)
        self.profiles = Profiles(sandbox)
        self.users = UserTrack(sandbox, self.profiles)
        self.exporter = Exporter(sandbox, self.profiles)
        self.identity = Identity(sandbox, self.profiles)
        self.cohorts = Cohorts(sandbox, self.profiles, self.auth)
        self.segments = Segments(sandbox)

    # --- the REST API without HTTP (same rules, same bodies; errors raise BrazeError) --------------------
    def track(self, body: dict | None = None, *, attributes: list | None = None, events: list | None = None,
              purchases: list | None = None) -> dict:
        """`/users/track`: `track({"attributes": [...]})` or `track(attributes=[...], events=[...])`."""
        if body is None:
            body = {k: v for k, v in (("attributes", attributes), ("events", events), ("purchases", purchases))
                    if v is not None}
        return self.users.track(body)

    def export_ids(self, body: dict) -> dict:
        return self.exporter.export_ids(body)

    def alias_new(self, body: dict) -> dict:
        return self.identity.alias_new(body)

    def identify(self, body: dict) -> dict:
        return self.identity.identify(body)

    def delete(self, body: dict) -> dict:
        return self.identity.delete(body)

    def merge(self, body: dict) -> dict:
        return self.identity.merge(body)

    # --- profile view -------------------------------------------------------------------------------
    def user(self, external_id: str | None = None, *, braze_id: str | None = None,
             alias: tuple[str, str] | dict | None = None, email: str | None = None) -> dict | None:
        """A profile exactly as `/users/export/ids` returns it, or None. Give one identifier."""
        braze_id = self.find(external_id=external_id, braze_id=braze_id, alias=alias, email=email)
        return self.exporter.user(braze_id) if braze_id else None

    def find(self, external_id: str | None = None, *, braze_id: str | None = None,
             alias: tuple[str, str] | dict | None = None, email: str | None = None) -> str | None:
        """The braze_id a single identifier names, or None."""
        given = [v for v in (external_id, braze_id, alias, email) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of external_id, braze_id, alias or email")
        with self.sandbox.store.lock:
            if external_id is not None:
                return self.profiles.by_external_id(external_id)
            if braze_id is not None:
                return self.profiles.by_braze_id(braze_id)
            if alias is not None:
                name, label = (alias["alias_name"], alias["alias_label"]) if isinstance(alias, dict) else alias
                return self.profiles.by_alias(name, label)
            return self.profiles.by_email(email or "")

    def users_count(self, text: str | None = None) -> int:
        return self.profiles.count(text)

    # --- cohorts and segments -----------------------------------------------------------------------
    def cohort_members(self, cohort: str) -> list[dict]:
        """Members (`braze_id`, `external_id`) of a partner cohort, by cohort id or name."""
        return self.cohorts.members(cohort)

    def define_segment(self, definition: dict) -> dict:
        """Add or replace (by name) a segment; validated like the configuration."""
        return self.segments.define(definition)

    def remove_segment(self, name: str) -> bool:
        return self.segments.remove(name)

    def segment_members(self, name: str | None = None, *, definition: dict | None = None) -> list[dict]:
        """Members of a named segment (or of an ad-hoc `definition`) at the sandbox clock's time."""
        return self.segments.members(name, definition=definition)


"""`sandbox.engage`: the Engage space (identity, profiles, audiences, computed traits) as a plain object."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...clock import iso
from . import profiles as _profiles
from .computations import Computations
from .identity import IdentityResolver, extract_ids

if TYPE_CHECKING:
    from ...sandbox import Sandbox


class EngageSpace:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        # Identity resolution runs inside the ingest transaction: a message acknowledged is on a profile.
        self.identity = IdentityResolver(sandbox)
        sandbox.segment.tracking.listeners.append(self.identity)
        sandbox.on_configure(self.identity.configure)
        # Audiences and computed traits run after identity resolution, in the same transaction.
        self.computations = Computations(sandbox)

    @property
    def space_id(self) -> str:
        return self.sandbox.config["segment"]["space"]["id"]

    # --- identity ----------------------------------------------------------------------------------
    def profile_id_for(self, id_type: str, value: str, collection: str = "users") -> str | None:
        """The live profile holding external id `id_type:value` (e.g. `user_id`, `u1`), or None."""
        return _profiles.profile_id_for(self.sandbox.store, id_type, value, collection)

    def resolve(self, identifier: str, collection: str = "users") -> str | None:
        """`type:value` or a profile id (merged ids are followed) to the live profile id, or None."""
        return _profiles.resolve(self.sandbox.store, identifier, collection)

    def profile_ids(self, collection: str = "users") -> list[str]:
        """Every live (not merged) profile id of the collection, oldest first."""
        return _profiles.profile_ids(self.sandbox.store, collection)

    def profile(self, identifier: str, collection: str = "users") -> dict | None:
        """A profile with its metadata, external ids and traits: `profile("user_id:u1")`, or None."""
        profile_id = self.resolve(identifier, collection)
        if profile_id is None:
            return None
        meta = _profiles.metadata(self.sandbox.store, profile_id) or {}
        return {**meta, "external_ids": self.external_ids(profile_id), "traits": self.traits(profile_id)}

    # --- profile data ------------------------------------------------------------------------------
    def traits(self, profile_id: str, cls: str | None = None) -> dict[str, Any]:
        """`{key: value}` of a profile's traits (optionally one class: trait, computed_trait, audience)."""
        live = _profiles.live_profile(self.sandbox.store, profile_id) or profile_id
        return {row["key"]: row["value"] for row in _profiles.traits(self.sandbox.store, live, cls=cls)}

    def trait_rows(self, profile_id: str, cls: str | None = None) -> list[dict]:
        """Trait rows with `class`, `source_id` and `updated_at`, ordered by key."""
        live = _profiles.live_profile(self.sandbox.store, profile_id) or profile_id
        return _profiles.traits(self.sandbox.store, live, cls=cls)

    def external_ids(self, profile_id: str) -> list[dict]:
        """`[{type, id, source_id, collection, created_at, first_message_id}]` in the order first seen."""
        live = _profiles.live_profile(self.sandbox.store, profile_id) or profile_id
        rows = _profiles.external_ids(self.sandbox.store, live)
        for row in rows:
            row.pop("cursor", None)
        return rows

    def events(self, profile_id: str, **filters: Any) -> list[dict]:
        """The profile's messages (all time), oldest first; filters as `profiles.events`."""
        live = _profiles.live_profile(self.sandbox.store, profile_id) or profile_id
        return _profiles.events(self.sandbox.store, live, **filters)

    def links(self, profile_id: str, collection: str = "users") -> list[dict]:
        live = _profiles.live_profile(self.sandbox.store, profile_id) or profile_id
        return _profiles.links(self.sandbox.store, live, collection)

    def set_trait(self, profile_id: str, key: str, value: Any, cls: str = "trait", *,
                  source_id: str | None = None) -> None:
        """Write one trait (audiences and computed traits use `audience` / `computed_trait`)."""
        live = _profiles.live_profile(self.sandbox.store, profile_id)
        if live is None:
            raise KeyError(f"no such profile: {profile_id}")
        _profiles.set_trait(self.sandbox.store, live, key, value, cls, source_id=source_id,
                            updated_at=iso(self.sandbox.clock.now()))

    def set_traits(self, values: dict[str, dict[str, Any]], cls: str, *, source_id: str | None = None) -> None:
        """Many traits at once: `{profile_id: {key: value}}` (live profile ids, e.g. from `profile_ids()`)."""
        _profiles.set_traits(self.sandbox.store, values, cls, source_id=source_id,
                             updated_at=iso(self.sandbox.clock.now()))

    def delete_trait(self, profile_id: str, key: str) -> bool:
        live = _profiles.live_profile(self.sandbox.store, profile_id) or profile_id
        return _profiles.delete_trait(self.sandbox.store, live, key)

    @staticmethod
    def message_ids(message: dict) -> list[tuple[str, str]]:
        """The user external ids Unify promotes from a message (default rules, no blocked values)."""
        return extract_ids(message)

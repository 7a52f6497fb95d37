"""Unify identity resolution: which external ids a message carries, and which profile it lands on.

Facts (reference/segment-query-language.md §4, segment-docs `src/unify/identity-resolution/
identity-resolution-settings.md`):
- Flat matching: no profile matches the message's ids → a new profile; one → the message joins it; several →
  they merge, unless the merged profile would exceed an identifier's limit.
- Limits: `user_id` 1, every other identifier 5 (a limit may count only values first seen in a sliding window,
  "5 weekly"). Priority: `user_id` 1, `email` 2, the rest alphabetical from 3.
- When the resulting profile would exceed a limit, the lowest-priority identifier on the incoming message is
  demoted (dropped from it) and matching is retried with the rest (the settings page's worked example: a new
  `user_id` arriving with a known `email` gets a new profile of its own). Demoted ids are not attached anywhere.
- Blocked values are never promoted to external ids (the message itself is kept).

The work for one ingest batch is done in memory against the identity rows the batch touches, then written
with a handful of set-based statements inside the ingest transaction.
"""
from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable

from ...clock import iso
from .profiles import carried_ids, value_text

if TYPE_CHECKING:
    from ...sandbox import Sandbox

FREQUENCIES = {"ever": None, "daily": timedelta(days=1), "weekly": timedelta(days=7),
               "monthly": timedelta(days=30), "annually": timedelta(days=365)}
# Unify's hard limits (segment-docs profile-api-limits.md): Identify calls with 300 or more traits are
# rejected; a profile takes at most 100 merges and 1000 identity mappings ("no additional merges/mappings
# will be added once the profile reaches this limit. Event resolution for the profile, however, will continue").
MAX_IDENTIFY_TRAITS = 300
MAX_MERGES = 100
MAX_MAPPINGS = 1000
_NEW_RANK = 1 << 62
_CHUNK = 900


def check_identifier_settings(value: Any) -> str | None:
    """Config check for `segment.space.identity.identifiers` (an error text, or None)."""
    if not isinstance(value, dict):
        return "a mapping of identifier type to {limit, frequency, priority, blocked_values}"
    for name, spec in value.items():
        if not isinstance(name, str) or not name:
            return "identifier types as non-empty strings"
        if not isinstance(spec, dict):
            return f"{name}: a mapping with limit, frequency, priority, blocked_values"
        unknown = set(spec) - {"limit", "frequency", "priority", "blocked_values"}
        if unknown:
            return (f"{name}: no such key {sorted(unknown)[0]!r}"
                    " (known keys: blocked_values, frequency, limit, priority)")
        limit = spec.get("limit", 1)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            return f"{name}.limit: an integer of at least 1"
        if spec.get("frequency", "ever") not in FREQUENCIES:
            return f"{name}.frequency: one of {', '.join(FREQUENCIES)}"
        priority = spec.get("priority", 1)
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 1:
            return f"{name}.priority: an integer of at least 1"
        blocked = spec.get("blocked_values", [])
        if not isinstance(blocked, list) or not all(isinstance(b, str) for b in blocked):
            return f"{name}.blocked_values: a list of strings"
    return None


def _blocker(values: Iterable[str]) -> tuple[frozenset[str], list[re.Pattern]]:
    """Exact values, and `/regex/` patterns (Segment's suggested `^[0-]*$` is one)."""
    exact, patterns = set(), []
    for value in values:
        if len(value) >= 2 and value.startswith("/") and value.endswith("/"):
            patterns.append(re.compile(value[1:-1]))
        else:
            exact.add(value)
    return frozenset(exact), patterns


@dataclass
class Rules:
    """The space's identity settings, compiled."""

    limits: dict[str, int]
    windows: dict[str, timedelta | None]
    priorities: dict[str, int]
    default_limit: int
    default_window: timedelta | None
    blocked: frozenset[str]
    blocked_patterns: list[re.Pattern]
    blocked_by_type: dict[str, tuple[frozenset[str], list[re.Pattern]]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict) -> "Rules":
        settings = config["segment"]["space"].get("identity") or {}
        identifiers = settings.get("identifiers") or {}
        blocked, patterns = _blocker(settings.get("blocked_values") or [])
        default_window = FREQUENCIES[settings.get("default_frequency", "ever")]
        return cls(
            limits={name: spec.get("limit", settings.get("default_limit", 5)) for name, spec in identifiers.items()},
            windows={name: FREQUENCIES[spec["frequency"]] for name, spec in identifiers.items() if "frequency" in spec},
            priorities={name: spec["priority"] for name, spec in identifiers.items() if "priority" in spec},
            default_limit=settings.get("default_limit", 5),
            default_window=default_window,
            blocked=blocked, blocked_patterns=patterns,
            blocked_by_type={name: _blocker(spec["blocked_values"]) for name, spec in identifiers.items()
                             if spec.get("blocked_values")},
        )

    def limit(self, id_type: str) -> int:
        return self.limits.get(id_type, self.default_limit)

    def window(self, id_type: str) -> timedelta | None:
        return self.windows.get(id_type, self.default_window)

    @property
    def any_blocked(self) -> bool:
        return bool(self.blocked or self.blocked_patterns or self.blocked_by_type)

    def rank(self, id_type: str) -> tuple[int, str]:
        # Explicit priorities first; every other identifier after them, alphabetically (settings page).
        return (self.priorities.get(id_type, 1 << 30), id_type)

    def is_blocked(self, id_type: str, value: str) -> bool:
        if value in self.blocked or any(p.search(value) for p in self.blocked_patterns):
            return True
        per_type = self.blocked_by_type.get(id_type)
        return bool(per_type) and (value in per_type[0] or any(p.search(value) for p in per_type[1]))


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


_NO_CONTEXT: dict = {}


def extract_ids(message: dict, rules: Rules | None = None) -> list[tuple[str, str]]:
    """The user external ids Unify promotes from a message, in message order, without blocked values."""
    ids: list[tuple[str, str]] = []
    get = message.get
    value = get("userId")
    if value is not None:
        ids.append(("user_id", value))
    value = get("anonymousId")
    if value is not None:
        ids.append(("anonymous_id", value))
    context = get("context")
    if not isinstance(context, dict):
        context = _NO_CONTEXT
    email = None
    if get("type") == "identify":
        traits = get("traits")
        if traits and isinstance(traits, dict):
            email = _text(traits.get("email"))
    if context:
        if email is None:
            ctraits = context.get("traits")
            if ctraits and isinstance(ctraits, dict):
                email = _text(ctraits.get("email"))
        if email is not None:
            ids.append(("email", email))
        device = context.get("device")
        if device and isinstance(device, dict):
            _device_ids(device, ids)
        integrations = context.get("integrations")
        if integrations and isinstance(integrations, dict) and "Google Analytics" in integrations:
            _ga_id(integrations, ids)
        custom = context.get("externalIds")
        if custom and isinstance(custom, list):
            _custom_ids(custom, ids)
            ids = list(dict.fromkeys(ids))
    elif email is not None:
        ids.append(("email", email))
    integrations = get("integrations")
    if integrations and isinstance(integrations, dict) and "Google Analytics" in integrations:
        _ga_id(integrations, ids)
        ids = list(dict.fromkeys(ids))
    if rules is not None and rules.any_blocked:
        ids = [i for i in ids if not rules.is_blocked(*i)]
    return ids


def _device_ids(device: dict, ids: list[tuple[str, str]]) -> None:
    kind = device.get("type")
    kind = kind.lower() if isinstance(kind, str) else None
    if kind not in ("android", "ios"):
        return
    value = _text(device.get("id"))
    if value is not None:
        ids.append((kind + ".id", value))
    if device.get("adTrackingEnabled") is True:
        value = _text(device.get("advertisingId"))
        if value is not None:
            ids.append((kind + ".idfa", value))
    value = _text(device.get("token"))
    if value is not None:
        ids.append((kind + ".push_token", value))


def _ga_id(integrations: dict, ids: list[tuple[str, str]]) -> None:
    ga = integrations.get("Google Analytics")
    if isinstance(ga, dict):
        value = _text(ga.get("clientId"))
        if value is not None and not any(t == "ga_client_id" for t, _ in ids):
            ids.append(("ga_client_id", value))


def _custom_ids(custom: list, ids: list[tuple[str, str]]) -> None:
    for item in custom:
        # "All four fields are required"; only user-level ids identify a user profile.
        if isinstance(item, dict) and item.get("collection") == "users":
            id_type, value = item.get("type"), _text(item.get("id"))
            if isinstance(id_type, str) and id_type and value is not None:
                ids.append((id_type.lower(), value))


def message_traits(message: dict) -> dict | None:
    """User traits a message carries: identify `traits`, else `context.traits`."""
    if message.get("type") == "identify":
        traits = message.get("traits")
        if isinstance(traits, dict) and traits:
            return traits
    context = message.get("context")
    if isinstance(context, dict):
        traits = context.get("traits")
        if isinstance(traits, dict) and traits:
            return traits
    return None


_EVENT_NAMES = {"page": "Page Viewed", "screen": "Screen Viewed"}


def event_name(message: dict) -> str | None:
    """The query language's name of a message as an event (compute.EVENT_NAME_SQL): a track's event, `Page Viewed`
    and `Screen Viewed`; None for identify, group and alias."""
    kind = message["type"]
    name = message.get("event") if kind == "track" else _EVENT_NAMES.get(kind)
    return name if isinstance(name, str) else None


class _Batch:
    """The identity state one ingest batch works on, and the rows it will write."""

    def __init__(self, resolver: "IdentityResolver", conn: sqlite3.Connection, now: datetime) -> None:
        self.resolver = resolver
        self.rules = resolver.rules
        self.conn = conn
        self.now = now
        self.now_iso = iso(now)
        self.owners: dict[tuple[str, str], str] = {}        # user external id -> profile (may be merged since)
        self.rank: dict[str, int] = {}                       # profile -> creation order (oldest survives)
        self.parent: dict[str, str] = {}                     # merged profile -> the one it went into
        self.idsets: dict[str, dict[str, list[str]]] = {}    # profile -> type -> created_at of each value
        self.new_profiles: dict[str, list] = {}              # profile -> row
        self.new_ids: list[list] = []                        # [profile, type, value, source, message_id]
        self.merges: list[tuple[str, str, str]] = []         # (from, into, message_id)
        self.merge_counts: dict[str, int] = {}               # profile -> merges it has taken in
        self.counter = 0

    def find(self, profile: str) -> str:
        parent = self.parent
        while profile in parent:
            profile = parent[profile]
        return profile

    def load_owners(self, wanted: dict[str, set[str]]) -> None:
        for id_type, values in wanted.items():
            values_list = list(values)
            for start in range(0, len(values_list), _CHUNK):
                chunk = values_list[start:start + _CHUNK]
                rows = self.conn.execute(
                    "SELECT value, profile_id FROM engage_external_ids WHERE collection = 'users' AND type = ?"
                    f" AND value IN ({','.join('?' * len(chunk))})", [id_type, *chunk]).fetchall()
                for value, profile in rows:
                    self.owners[(id_type, value)] = profile

    def ranks(self, profiles: list[str]) -> None:
        """Creation order of stored profiles about to merge (the oldest survives)."""
        missing = [p for p in profiles if p not in self.rank]
        if missing:
            self.rank.update(self.conn.execute(
                f"SELECT profile_id, rowid FROM engage_profiles WHERE profile_id IN ({','.join('?' * len(missing))})",
                missing).fetchall())

    def preload(self, plans: list[tuple[dict, list[tuple[str, str]]]]) -> None:
        """Load in one query the id sets of stored profiles that messages may add ids to or merge."""
        owners, wanted = self.owners, set()
        for _message, ids in plans:
            found = {owners.get(key) for key in ids}
            if len(found) > 1:
                wanted.update(p for p in found if p is not None)
        wanted -= self.idsets.keys()
        if not wanted:
            return
        profiles = list(wanted)
        for profile in profiles:
            self.idsets[profile] = {}
        for start in range(0, len(profiles), _CHUNK):
            chunk = profiles[start:start + _CHUNK]
            for profile, id_type, created_at in self.conn.execute(
                    "SELECT profile_id, type, created_at FROM engage_external_ids"
                    f" WHERE profile_id IN ({','.join('?' * len(chunk))})", chunk):
                self.idsets[profile].setdefault(id_type, []).append(created_at)

    def idset(self, profile: str) -> dict[str, list[str]]:
        found = self.idsets.get(profile)
        if found is None:
            found = {}
            for id_type, created_at in self.conn.execute(
                    "SELECT type, created_at FROM engage_external_ids WHERE profile_id = ?", (profile,)):
                found.setdefault(id_type, []).append(created_at)
            self.idsets[profile] = found
        return found

    def _count(self, values: list[str], window: timedelta | None) -> int:
        if window is None:
            return len(values)
        cutoff = iso(self.now - window)
        return sum(1 for created in values if created > cutoff)

    def within_limits(self, profiles: list[str], new: list[tuple[str, str]]) -> bool:
        rules = self.rules
        adding: dict[str, int] = {}
        for id_type, _ in new:
            adding[id_type] = adding.get(id_type, 0) + 1
        types = set(adding)
        if len(profiles) > 1:
            if sum(self.merge_count(p) for p in profiles) + len(profiles) - 1 > MAX_MERGES:
                return False
            for profile in profiles:
                types.update(self.idset(profile))
        if len(profiles) > 1 and self.mapping_count(profiles) > MAX_MAPPINGS:
            return False  # a merge would leave a profile past the limit
        for id_type in types:
            window = rules.window(id_type)
            total = adding.get(id_type, 0)
            for profile in profiles:
                total += self._count(self.idset(profile).get(id_type, []), window)
            if total > rules.limit(id_type):
                return False
        return True

    def mapping_count(self, profiles: list[str]) -> int:
        return sum(len(values) for profile in profiles for values in self.idset(profile).values())

    def new_profile(self, message: dict, collection: str = "users") -> str:
        profile = self.resolver.sandbox.ids.token("use_" if collection == "users" else "acc_")
        self.counter += 1
        self.rank[profile] = _NEW_RANK + self.counter
        self.idsets[profile] = {}
        self.merge_counts[profile] = 0
        self.new_profiles[profile] = [profile, collection, self.now_iso, self.now_iso, None,
                                      message["messageId"], message["_source"], message["messageId"],
                                      message["_source"]]
        return profile

    def resolve(self, message: dict, ids: list[tuple[str, str]]) -> str:
        """The profile `message` lands on (creating or merging profiles as the rules allow)."""
        owners, find, parent = self.owners, self.find, self.parent
        first = None
        for key in ids:
            owner = owners.get(key)
            if owner is None:
                break
            if owner in parent:
                owner = find(owner)
            if first is None:
                first = owner
            elif owner != first:
                break
        else:
            return first  # type: ignore[return-value]  # every id already on one profile: nothing to decide
        rules = self.rules
        candidates = sorted(ids, key=lambda key: rules.rank(key[0]))
        while True:
            profiles, new = [], []
            for key in candidates:
                owner = owners.get(key)
                if owner is None:
                    new.append(key)
                else:
                    owner = find(owner)
                    if owner not in profiles:
                        profiles.append(owner)
            if len(candidates) == 1 or self.within_limits(profiles, new):
                break
            candidates = candidates[:-1]  # demote the lowest-priority identifier and retry
        if new:
            # Past 1,000 mappings none is added, but the message still resolves to its profile (the docs' words
            # above MAX_MAPPINGS); `new` is in priority order, so the highest-priority ids fill what room is left.
            new = new[:max(MAX_MAPPINGS - self.mapping_count(profiles), 0)]
        if not profiles:
            target = self.new_profile(message)
        else:
            if len(profiles) > 1:
                self.ranks(profiles)
                profiles.sort(key=lambda p: self.rank[p])
            target = profiles[0]
            for other in profiles[1:]:
                self.merge(other, target, message["messageId"])
        if new:
            idset = self.idset(target)
            for key in new:
                owners[key] = target
                idset.setdefault(key[0], []).append(self.now_iso)
                self.new_ids.append([target, key[0], key[1], message["_source"], message["messageId"]])
        return target

    def merge_count(self, profile: str) -> int:
        count = self.merge_counts.get(profile)
        if count is None:
            count = self.merge_counts[profile] = self.conn.execute(
                "SELECT count(*) FROM engage_merges WHERE into_profile = ?", (profile,)).fetchone()[0]
        return count

    def merge(self, other: str, target: str, message_id: str) -> None:
        self.merge_counts[target] = self.merge_count(target) + self.merge_count(other) + 1
        self.parent[other] = target
        into = self.idset(target)
        for id_type, values in self.idset(other).items():
            into.setdefault(id_type, []).extend(values)
        self.merges.append((other, target, message_id))


class IdentityResolver:
    """Attaches every accepted message to a profile (registered as a tracking accept listener)."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self.rules = Rules.from_config(sandbox.config)

    def configure(self, config: dict) -> None:
        self.rules = Rules.from_config(config)

    def __call__(self, messages: list[dict], conn: sqlite3.Connection) -> None:
        self.process(messages, conn)

    def process(self, messages: list[dict], conn: sqlite3.Connection) -> None:
        rules = self.rules
        batch = _Batch(self, conn, self.sandbox.clock.now())
        plans: list[tuple[dict, list[tuple[str, str]]]] = []
        wanted: dict[str, set[str]] = defaultdict(set)
        groups: set[str] = set()
        for message in messages:
            kind = message["type"]
            if kind == "identify":
                traits = message.get("traits")
                if isinstance(traits, dict) and len(traits) >= MAX_IDENTIFY_TRAITS:
                    continue
            ids = extract_ids(message, rules)
            for id_type, value in ids:
                wanted[id_type].add(value)
            plans.append((message, ids))
            if kind == "track" or kind == "identify" or kind == "page" or kind == "screen":
                continue
            if kind == "alias":
                previous = _text(message.get("previousId"))
                if previous is not None:
                    for id_type in ("user_id", "anonymous_id"):
                        if not rules.is_blocked(id_type, previous):
                            wanted[id_type].add(previous)
            elif kind == "group":
                group_id = _text(message.get("groupId"))
                if group_id is not None and not rules.is_blocked("group_id", group_id):
                    groups.add(group_id)
        if not plans:
            return
        batch.load_owners(wanted)
        batch.preload(plans)

        attached: list[tuple[dict, str]] = []
        for message, ids in plans:
            if message["type"] == "alias":
                ids = self._alias_ids(batch, message, ids)
            if not ids:
                continue
            attached.append((message, batch.resolve(message, ids)))
        self._write(batch, attached, groups)

    def _alias_ids(self, batch: _Batch, message: dict, ids: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """`previousId` is the user's earlier id: a known user_id, else an anonymous_id (Segment's alias spec)."""
        previous = _text(message.get("previousId"))
        if previous is None:
            return ids
        key = ("user_id", previous)
        if key not in batch.owners:
            key = ("anonymous_id", previous)
        if batch.rules.is_blocked(*key) or key in ids:
            return ids
        return ids + [key]

    def _write(self, batch: _Batch, attached: list[tuple[dict, str]], groups: set[str]) -> None:
        conn, find, now = batch.conn, batch.find, batch.now_iso
        new_profiles = batch.new_profiles
        # Merges of profiles that were already stored: re-point their rows to the survivor.
        stored_merges = [(other, find(other)) for other, _into, _mid in batch.merges if other not in new_profiles]
        touched: dict[str, tuple[str, str]] = {}
        # Profiles whose identity changed (new, gained an id, or merged): every definition may now read differently.
        reidentified = {find(p) for p in batch.new_profiles} | {find(p) for p, *_ in batch.new_ids}
        reidentified.update(find(into) for _other, into, _mid in batch.merges)
        # Stored profiles that gained ids (their own, or a merged profile's): what the payloads carry of their ids
        # before this batch, for Engage to re-sync what they are in when that changes (computations._resync)
        brand_new = {p for p in new_profiles if find(p) == p}
        gained = ({find(p) for p, *_ in batch.new_ids} | {find(into) for _other, into, _mid in batch.merges}) - brand_new
        carried_before = carried_ids(conn, sorted(gained)) if gained else {}
        event_rows = []
        trait_rows: dict[tuple[str, str], tuple] = {}
        for message, profile in attached:
            profile = find(profile)
            # later accept listeners (realtime audiences, destinations) read the profile from the message
            message["_profile"] = profile
            if profile in reidentified:
                message["_reidentified"] = True
                if profile in gained:
                    message["_carried_before"] = carried_before.get(profile, (None, None, ()))
            seq, source = message["_seq"], message["_source"]
            event_rows.append((seq, profile, event_name(message), message["timestamp"]))
            touched[profile] = (message["messageId"], source)
            traits = message_traits(message)
            if traits:
                for key, value in traits.items():
                    trait_rows[(profile, key)] = (profile, key, value_text(value), source, now, seq)
        if new_profiles:
            rows = []
            for profile, row in new_profiles.items():
                final = find(profile)
                if final != profile:
                    row[4] = final
                elif profile in touched:
                    row[7], row[8] = touched.pop(profile)
                rows.append(row)
            conn.executemany("INSERT INTO engage_profiles (profile_id, collection, created_at, updated_at, merged_into,"
                             " first_message_id, first_source_id, last_message_id, last_source_id)"
                             " VALUES (?,?,?,?,?,?,?,?,?)", rows)
        for other, into in stored_merges:
            self._merge_stored(conn, other, into)
        if batch.merges:
            conn.executemany("INSERT INTO engage_merges (from_profile, into_profile, at, message_id) VALUES (?,?,?,?)",
                             [(other, find(into), now, mid) for other, into, mid in batch.merges])
        if batch.new_ids:
            conn.executemany("INSERT INTO engage_external_ids (profile_id, collection, type, value, source_id,"
                             " first_message_id, created_at) VALUES (?, 'users', ?, ?, ?, ?, ?)",
                             [(find(p), t, v, s, m, now) for p, t, v, s, m in batch.new_ids])
        conn.executemany("INSERT INTO engage_event_profiles (seq, profile_id, name, timestamp) VALUES (?, ?, ?, ?)",
                         event_rows)
        if trait_rows:
            # Later messages win per key; computed traits and audiences belong to Engage, not to messages.
            conn.executemany(
                "INSERT INTO engage_traits (profile_id, key, value, class, source_id, updated_at, message_seq)"
                " VALUES (?, ?, ?, 'trait', ?, ?, ?) ON CONFLICT (profile_id, key) DO UPDATE SET"
                " value = excluded.value, source_id = excluded.source_id, updated_at = excluded.updated_at,"
                " message_seq = excluded.message_seq WHERE engage_traits.class = 'trait'",
                list(trait_rows.values()))
        if touched:
            conn.executemany("UPDATE engage_profiles SET updated_at = ?, last_message_id = ?, last_source_id = ?"
                             " WHERE profile_id = ?",
                             [(now, mid, src, profile) for profile, (mid, src) in touched.items()])
        if groups:
            self._write_groups(batch, attached)

    @staticmethod
    def _merge_stored(conn: sqlite3.Connection, other: str, into: str) -> None:
        conn.execute("UPDATE engage_external_ids SET profile_id = ? WHERE profile_id = ?", (into, other))
        conn.execute("UPDATE engage_event_profiles SET profile_id = ? WHERE profile_id = ?", (into, other))
        # Per trait key the most recently set value wins; computed values are recomputed for the survivor.
        conn.execute(
            "INSERT INTO engage_traits (profile_id, key, value, class, source_id, updated_at, message_seq)"
            " SELECT ?, key, value, class, source_id, updated_at, message_seq FROM engage_traits"
            " WHERE profile_id = ? AND true ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value,"
            " class = excluded.class, source_id = excluded.source_id, updated_at = excluded.updated_at,"
            " message_seq = excluded.message_seq"
            " WHERE (excluded.updated_at, coalesce(excluded.message_seq, 0))"
            " > (engage_traits.updated_at, coalesce(engage_traits.message_seq, 0))", (into, other))
        conn.execute("DELETE FROM engage_traits WHERE profile_id = ?", (other,))
        conn.execute("INSERT OR IGNORE INTO engage_links (profile_id, account_id, source_id, created_at)"
                     " SELECT ?, account_id, source_id, created_at FROM engage_links WHERE profile_id = ?",
                     (into, other))
        conn.execute("DELETE FROM engage_links WHERE profile_id = ?", (other,))
        conn.execute("UPDATE engage_profiles SET merged_into = ? WHERE profile_id = ? OR merged_into = ?",
                     (into, other, other))
        conn.execute("UPDATE engage_merges SET into_profile = ? WHERE into_profile = ?", (into, other))
        # The survivor is the older profile; it keeps the earliest first message of the two.
        conn.execute(
            "UPDATE engage_profiles SET (created_at, first_message_id, first_source_id) = (SELECT o.created_at,"
            " o.first_message_id, o.first_source_id FROM engage_profiles o WHERE o.profile_id = ?)"
            " WHERE profile_id = ? AND created_at > (SELECT created_at FROM engage_profiles WHERE profile_id = ?)",
            (other, into, other))

    def _write_groups(self, batch: _Batch, attached: list[tuple[dict, str]]) -> None:
        """Group calls: the account profile (keyed by group_id), its traits, and the user <-> account link."""
        conn, now, find = batch.conn, batch.now_iso, batch.find
        group_messages = [(m, find(p)) for m, p in attached if m["type"] == "group"]
        if not group_messages:
            return
        ids = sorted({_text(m.get("groupId")) for m, _ in group_messages} - {None})  # type: ignore[type-var]
        accounts: dict[str, str] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            accounts.update(conn.execute(
                "SELECT value, profile_id FROM engage_external_ids WHERE collection = 'accounts' AND type = 'group_id'"
                f" AND value IN ({','.join('?' * len(chunk))})", chunk).fetchall())
        new_accounts, new_ids, links, traits, touched = [], [], [], {}, {}
        for message, user in group_messages:
            group_id = _text(message.get("groupId"))
            if group_id is None or batch.rules.is_blocked("group_id", group_id):
                continue
            source, mid = message["_source"], message["messageId"]
            account = accounts.get(group_id)
            if account is None:
                account = batch.resolver.sandbox.ids.token("acc_")
                accounts[group_id] = account
                new_accounts.append((account, now, now, mid, source, mid, source))
                new_ids.append((account, group_id, source, mid, now))
            touched[account] = (mid, source)
            links.append((user, account, source, now))
            group_traits = message.get("traits")
            if isinstance(group_traits, dict):
                for key, value in group_traits.items():
                    traits[(account, key)] = (account, key, value_text(value), source, now, message["_seq"])
        conn.executemany("INSERT INTO engage_profiles (profile_id, collection, created_at, updated_at,"
                         " first_message_id, first_source_id, last_message_id, last_source_id)"
                         " VALUES (?, 'accounts', ?, ?, ?, ?, ?, ?)", new_accounts)
        conn.executemany("INSERT INTO engage_external_ids (profile_id, collection, type, value, source_id,"
                         " first_message_id, created_at) VALUES (?, 'accounts', 'group_id', ?, ?, ?, ?)", new_ids)
        conn.executemany("INSERT OR IGNORE INTO engage_links (profile_id, account_id, source_id, created_at)"
                         " VALUES (?,?,?,?)", links)
        conn.executemany(
            "INSERT INTO engage_traits (profile_id, key, value, class, source_id, updated_at, message_seq)"
            " VALUES (?, ?, ?, 'trait', ?, ?, ?) ON CONFLICT (profile_id, key) DO UPDATE SET"
            " value = excluded.value, source_id = excluded.source_id, updated_at = excluded.updated_at,"
            " message_seq = excluded.message_seq WHERE engage_traits.class = 'trait'", list(traits.values()))
        conn.executemany("UPDATE engage_profiles SET updated_at = ?, last_message_id = ?, last_source_id = ?"
                         " WHERE profile_id = ?", [(now, m, s, a) for a, (m, s) in touched.items()])

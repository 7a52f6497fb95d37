"""Running audiences and computed traits: when, over whom, and what changes it sends.

- Realtime definitions are re-evaluated for the profiles a batch of messages touched, inside the transaction that
  acknowledged them (a track moves a profile into an audience before the next request is answered), and for every
  profile when the sandbox clock moves past their `within` windows, so time-caused exits happen when time moves.
- Batch definitions (funnels, `between`, dynamic references, ANY/ALL, or `batch: true`) are computed on creation,
  then every 8 hours of sandbox time (`segment.space.batch_interval_hours`).
- A change is written on the profile (engage_traits, class `audience` / `computed_trait`) and sent, per destination
  connection, as Segment's Engage messages (emission.py) through the outbox. On a first sync every member is sent,
  one call per identifier; afterwards only changes (computed traits only when the value changed).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable

from ...clock import iso, parse_instant
from ...config import ConfigError
from .definitions import (AUDIENCE, CYCLE_MESSAGE, TRAIT, Connection, Definition, DefinitionError, DefinitionStore,
                          cohorts_only_for_audiences, external_ids_option, from_config, lookback_option, parse_connections, parse_query)
from .emission import Identity, build_messages
from .identity import event_name, message_traits
from .profiles import carried_ids, value_text

if TYPE_CHECKING:
    import sqlite3

    from .query import Query

    from ...sandbox import Sandbox

_MISSING = object()
_CHUNK = 500


@dataclass(frozen=True)
class Triggers:
    """What in an ingested message can change a realtime definition's value for the message's profile, besides a
    change of the profile's identity (new, new id, merged), which can change every definition."""

    events: frozenset[str]  # event names its streams read (including funnel steps in where())
    traits: bool  # reads profile traits: messages carrying traits (identify, context.traits, group) matter
    references: tuple[str, ...]  # other definitions it may read through trait(): their changes matter
    # more events can never make it false (And/Or of `count() >=` / `>` over unwindowed streams, and trait
    # comparisons): a member whose only news is events stays a member without being evaluated
    members_stay: bool = False

    @classmethod
    def of(cls, query: "Query") -> "Triggers":
        from .query import EventStream, TraitRef, iter_nodes  # lark only once a definition exists

        # (ANY/ALL and entity() streams make a definition batch: realtime ones read events and traits only)
        events, traits = set(), False
        for node in iter_nodes(query.root):
            if isinstance(node, EventStream):
                events.add(node.name)
            elif isinstance(node, TraitRef):
                traits = True
        return cls(frozenset(events), traits, query.references,
                   query.result_type == "boolean" and not query.windows and _grows_with_events(query.root))


def _grows_with_events(node: object) -> bool:
    from .query import Aggregation, And, Comparison, EventStream, Literal, Or, TraitRef, iter_nodes

    if isinstance(node, (And, Or)):
        return all(_grows_with_events(operand) for operand in node.operands)
    if not isinstance(node, Comparison):
        return False
    subject = node.subject
    if isinstance(subject, TraitRef):
        return not any(isinstance(n, (EventStream, Aggregation)) for n in iter_nodes(node))
    if not (isinstance(subject, Aggregation) and subject.function == "count" and subject.stream.source == "event"
            and subject.stream.window is None and node.operator in ("at_least", "greater_than")
            and isinstance(node.argument, Literal) and node.argument.type == "number"):
        return False
    # a per-event filter on the event's own fields; a filter reading traits or other events is not monotone
    where = subject.stream.where
    return where is None or not any(isinstance(n, (EventStream, Aggregation, TraitRef)) for n in iter_nodes(where))


class Computations:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self.definitions = DefinitionStore(sandbox.store)
        self._evaluator: Any = None
        self._triggers: dict[int, tuple["Query", Triggers]] = {}
        sandbox.segment.tracking.listeners.append(self._on_ingest)
        sandbox.clock.on_move(self._on_clock)
        sandbox.on_reset(self.sync_config)
        sandbox.on_configure(lambda _config: self.sync_config())  # Sandbox.configure checked the keys first
        self.check_config_keys(sandbox.config)  # a file store may hold API-made definitions already
        self.sync_config()

    @property
    def evaluator(self) -> Any:
        if self._evaluator is None:
            from .compute import Evaluator

            self._evaluator = Evaluator(self.sandbox.store)
        return self._evaluator

    @property
    def space_id(self) -> str:
        return self.sandbox.config["segment"]["space"]["id"]

    def _now(self) -> datetime:
        return self.sandbox.clock.now()

    def _batch_interval(self) -> timedelta:
        return timedelta(hours=self.sandbox.config["segment"]["space"].get("batch_interval_hours", 8))

    # --- definitions ------------------------------------------------------------------------------------------
    def check_config_keys(self, config: dict) -> None:
        """A configured definition may not take the key of one made through the API or in Python (either kind: both
        are the profile trait of that name); refused before the configuration is applied."""
        taken = {d.key: d for d in self.definitions.all() if d.origin != "config"}
        for kind, section in ((AUDIENCE, "audiences"), (TRAIT, "computed_traits")):
            for index, entry in enumerate(config["segment"].get(section) or []):
                other = taken.get(entry.get("key") if isinstance(entry, dict) else None)
                if other is not None:
                    raise ConfigError(f"segment.{section}[{index}].key", f"a key no audience or computed trait made "
                                      f"through the API uses ({other.kind} {other.id} has {other.key!r})", None)

    def sync_config(self) -> None:
        """Make the table match `segment.audiences` / `segment.computed_traits` (configured definitions only)."""
        wanted: dict[str, Definition] = {}
        for kind, section in ((AUDIENCE, "audiences"), (TRAIT, "computed_traits")):
            for entry in self.sandbox.config["segment"].get(section) or []:
                definition = from_config(entry, kind, self.space_id)
                wanted[definition.id] = definition
        existing = {d.id: d for d in self.definitions.all() if d.origin == "config"}
        for stale in set(existing) - set(wanted):
            with self.sandbox.store.transaction() as conn:
                self.definitions.delete(conn, stale)
        for definition_id, definition in wanted.items():
            current = existing.get(definition_id)
            if current is None:
                self._create(definition)
            elif _config_view(current) != _config_view(definition):
                self._replace(current, definition)

    def create(self, kind: str, *, key: str, query: str, name: str | None = None, description: str | None = None,
               enabled: bool = True, backfill: bool = True, lookback_days: int | None = None,
               include_anonymous: bool = False,
               external_id_types: Iterable[str] | None = None, batch: bool = False,
               destinations: dict | None = None, origin: str = "api") -> Definition:
        """Define an audience (`kind="audience"`) or computed trait (`kind="trait"`) and run its first sync."""
        with self.sandbox.store.transaction():  # the key check and the insert as one step (two requests at once)
            for existing_kind in (kind, TRAIT if kind == AUDIENCE else AUDIENCE):
                # one key per space: both write the profile trait of that name
                if self.definitions.by_key(existing_kind, key) is not None:
                    raise DefinitionError(f"{'a computed trait' if existing_kind == TRAIT else 'an audience'} with "
                                          f"key {key!r} exists already (Segment: avoid using the same key twice)", "key")
            entry = {"key": key, "query": query, "name": name or key, "enabled": enabled, "backfill": backfill,
                     "lookback_days": lookback_days, "include_anonymous": include_anonymous, "batch": batch,
                     "destinations": destinations}
            if description is not None:
                entry["description"] = description
            if external_id_types is not None:
                entry["external_id_types"] = list(external_id_types)
            definition = from_config(entry, kind, self.space_id)
            definition = replace(definition, id=self.sandbox.ids.token(definition.id[:4]), origin=origin)
            self._check_destinations(definition.connections, definition.kind)
            return self._create(definition)

    def update(self, definition_id: str, **changes: Any) -> Definition:
        """Change name, description, enabled, query, backfill (and its lookback_days), external id types or
        destinations."""
        current = self.definitions.get(definition_id)
        if current is None:
            raise KeyError(definition_id)
        updated = current
        if "query" in changes and changes["query"] is not None:
            query = parse_query(changes["query"], current.kind, current.force_batch, "definition.query")
            if query.is_batch != current.query.is_batch and not current.force_batch:
                # segment-docs engage/audiences: "You can't convert a real-time audience to batch (or back) by editing"
                raise DefinitionError("this change would turn a realtime definition into a batch one (or back); "
                                      "Segment cannot convert between them by editing: create a new one",
                                      "definition.query")
            updated = replace(updated, query_text=changes["query"], query=query)
        for flag in ("enabled", "backfill"):  # the checks create makes (definitions.from_config)
            if changes.get(flag) is not None and not isinstance(changes[flag], bool):
                raise DefinitionError(f"{flag} must be true or false", flag)
        for field_name in ("name", "description", "enabled", "backfill"):
            if changes.get(field_name) is not None:
                updated = replace(updated, **{field_name: changes[field_name]})
        lookback = changes.get("lookback_days")
        if lookback is None:  # kept, unless backfill is turned off: the lookback limits the backfill
            lookback = None if changes.get("backfill") is False else updated.lookback_days
        updated = replace(updated, lookback_days=lookback_option(lookback, updated.backfill, "lookback_days"))
        if changes.get("external_id_types") is not None:
            updated = replace(updated, external_id_types=external_ids_option(
                changes["external_id_types"], updated.include_anonymous, "external_id_types"))
        if changes.get("destinations") is not None:
            connections = parse_connections(changes["destinations"], current.kind)
            self._check_destinations(connections, current.kind)
            updated = replace(updated, connections=connections)
        return self._replace(current, updated)

    def delete(self, definition_id: str) -> bool:
        """Remove a definition. Its last values stay on the profiles as traits (segment-docs computed-traits.md)."""
        definition = self.definitions.get(definition_id)
        if definition is None:
            return False
        with self.sandbox.store.transaction() as conn:
            self.definitions.delete(conn, definition_id)
            conn.execute("UPDATE engage_traits SET class = 'trait' WHERE key = ? AND class = ?",
                         (definition.key, definition.trait_class))
        return True

    def _check_destinations(self, connections: Iterable[Connection], kind: str) -> None:
        configured = self.sandbox.config["segment"]["destinations"]
        for connection in connections:
            if connection.destination not in configured:
                raise DefinitionError(f"destination {connection.destination!r} is not configured under "
                                      f"segment.destinations (configured: {sorted(configured)})", "destinations")
            cohorts_only_for_audiences(connection.destination, configured, kind)

    def _check_cycles(self, candidate: Definition) -> None:
        queries = {d.key: d.query for d in self.definitions.all() if d.id != candidate.id}
        queries[candidate.key] = candidate.query
        from .query import detect_cycle

        cycle = detect_cycle(queries)
        if cycle:
            raise DefinitionError(f"{CYCLE_MESSAGE} ({' -> '.join(cycle)})", "definition.query")

    def _create(self, definition: Definition) -> Definition:
        self._check_cycles(definition)
        now = iso(self._now())
        with self.sandbox.store.transaction() as conn:
            seen = conn.execute("SELECT coalesce(max(seq), 0) FROM segment_events").fetchone()[0]
            definition = replace(definition, created_at=now, updated_at=now, created_seq=seen)
            self.definitions.save(conn, definition)
            if definition.enabled:
                changed: dict[str, set[str]] = {}
                definition = self._run(conn, definition, None, first_sync_for=_names(definition.connections),
                                       changed=changed)
                self._run_readers(conn, changed, definition.key)
        return definition

    def _replace(self, current: Definition, updated: Definition) -> Definition:
        self._check_cycles(updated)
        updated = replace(updated, id=current.id, created_at=current.created_at, created_seq=current.created_seq,
                          updated_at=iso(self._now()),
                          origin=current.origin, computed_at=current.computed_at, next_run_at=current.next_run_at,
                          synced=tuple(s for s in current.synced if s in _names(updated.connections)))
        new_destinations = tuple(n for n in _names(updated.connections) if n not in updated.synced)
        with self.sandbox.store.transaction() as conn:
            self.definitions.save(conn, updated)
            if updated.enabled:
                changed: dict[str, set[str]] = {}
                updated = self._run(conn, updated, None, first_sync_for=new_destinations, changed=changed)
                self._run_readers(conn, changed, updated.key)
        return updated

    # --- triggers --------------------------------------------------------------------------------------------
    def _ordered(self, definitions: list[Definition]) -> list[Definition]:
        """Referenced audiences and traits before the definitions that read them."""
        by_key = {d.key: d for d in definitions}
        ordered: list[Definition] = []
        seen: set[str] = set()

        def visit(d: Definition) -> None:
            if d.key in seen:
                return
            seen.add(d.key)
            for ref in d.query.references:
                if ref in by_key:
                    visit(by_key[ref])
            ordered.append(d)

        for d in definitions:
            visit(d)
        return ordered

    def _active(self) -> list[Definition]:
        return self._ordered([d for d in self.definitions.all() if d.enabled])

    def triggers(self, query: "Query") -> Triggers:
        hit = self._triggers.get(id(query))
        if hit is None or hit[0] is not query:
            if len(self._triggers) >= 4096:
                self._triggers.clear()
            hit = self._triggers[id(query)] = (query, Triggers.of(query))
        return hit[1]

    def _on_ingest(self, messages: list[dict], conn: "sqlite3.Connection") -> None:
        active = self._active()
        changed: dict[str, set[str]] = {}
        self._evaluate_touched(messages, conn, [d for d in active if not d.is_batch], changed)
        before = {m["_profile"]: m["_carried_before"] for m in messages if "_carried_before" in m}
        if before:
            now_carried = carried_ids(conn, list(before))
            gained = [pid for pid, ids in before.items() if now_carried.get(pid) not in (None, ids)]
            if gained:
                self._resync(conn, active, gained, changed)

    def _resync(self, conn: "sqlite3.Connection", active: list[Definition], profile_ids: list[str],
                changed: dict[str, set[str]]) -> None:
        """Profiles that gained an external id the payloads carry (a user_id, an email, a first anonymous_id; on its
        own or through a merge): "Re-sync also happens when a new external_id is added to a profile"
        (reference/segment-api.md §2.1). What each is in (an audience it belongs to, a trait value it has) is sent
        again to the destinations already synced, one call per identifier, so the new one is carried; a value
        that changed in this very batch was sent already."""
        at = iso(self._now())
        for definition in active:
            connections = [c for c in definition.connections if c.destination in definition.synced]
            wanted = [p for p in profile_ids if p not in changed.get(definition.key, ())]
            if not connections or not wanted:
                continue
            current = {pid: _decode(text) for pid, text in self._previous(conn, definition, wanted).items()}
            if definition.kind == AUDIENCE:
                items = [(pid, True, True) for pid, value in current.items() if value is True]
            else:
                items = [(pid, value, None) for pid, value in current.items() if value is not None]
            self._emit(conn, definition, items, connections, fan_out=True, at=at)

    def _evaluate_touched(self, messages: list[dict], conn: "sqlite3.Connection", realtime: list[Definition],
                          changed: dict[str, set[str]]) -> None:
        if not realtime:
            return
        # A definition is re-evaluated only for the profiles whose messages could change its value.
        touched: dict[str, None] = {}
        reidentified: set[str] = set()
        with_traits: set[str] = set()
        by_event: dict[str, set[str]] = {}
        for message in messages:
            profile = message.get("_profile")
            if profile is None:
                continue
            touched[profile] = None
            if message.get("_reidentified"):
                reidentified.add(profile)
                continue
            name = event_name(message)
            if name is not None:
                by_event.setdefault(name, set()).add(profile)
            if message["type"] == "group" or message_traits(message):
                with_traits.add(profile)
        if not touched:
            return
        for definition in realtime:
            triggers = self.triggers(definition.query)
            members_stay: set[str] = set()
            by_other = set(reidentified)
            if triggers.traits:
                by_other |= with_traits
            for key in triggers.references:
                by_other |= changed.get(key, set())
            by_events: set[str] = set()
            for name in triggers.events:
                by_events |= by_event.get(name, set())
            if len(by_events) > 3:
                # with per-event filters, only the events that pass them can change the value (one statement
                # over the batch; for a few profiles, evaluating them is as cheap)
                matching = self.evaluator.profiles_with_matching_events(
                    definition.query, [m["_seq"] for m in messages if m.get("_profile") in by_events],
                    at=self._now(), conn=conn)
                if matching is not None:
                    by_events &= matching
            if triggers.members_stay and definition.kind == AUDIENCE:
                members_stay = by_events - by_other
            wanted = by_other | by_events
            profile_ids = [p for p in touched if p in wanted]
            if profile_ids:
                self._run(conn, definition, profile_ids, changed=changed, members_stay=members_stay)

    def _on_clock(self, old: datetime, new: datetime) -> None:
        self.tick(previous=old)

    def tick(self, previous: datetime | None = None) -> None:
        """Re-evaluate what time changes: realtime definitions with windows, and batch runs that are due."""
        now = self._now()
        changed: dict[str, set[str]] = {}  # what the runs so far changed: realtime readers follow (trait())
        for definition in self._active():  # referenced definitions before their readers
            if definition.is_batch:
                due = definition.next_run_at is None or parse_instant(definition.next_run_at) <= now
            else:
                due = bool(definition.query.windows) and (previous is None or previous != now)
            if due:
                with self.sandbox.store.transaction() as conn:
                    self._run(conn, definition, None, changed=changed)
            elif not definition.is_batch and (profiles := self._read_changes(definition, changed)):
                with self.sandbox.store.transaction() as conn:
                    self._run(conn, definition, profiles, changed=changed)

    def run(self, definition_id: str) -> Definition:
        """Compute a definition now for every profile (what a batch run does), sending what changed."""
        definition = self.definitions.get(definition_id)
        if definition is None:
            raise KeyError(definition_id)
        with self.sandbox.store.transaction() as conn:
            changed: dict[str, set[str]] = {}
            definition = self._run(conn, definition, None, changed=changed)
            self._run_readers(conn, changed, definition.key)
            return definition

    def _run_readers(self, conn: "sqlite3.Connection", changed: dict[str, set[str]], source: str) -> None:
        """Realtime definitions that read `source` (or what its readers change) through trait(), re-evaluated for
        the profiles whose values changed: a batch run, a clock move or a new definition changes them too."""
        for definition in self._active():
            if definition.key != source and not definition.is_batch \
                    and (profiles := self._read_changes(definition, changed)):
                self._run(conn, definition, profiles, changed=changed)

    def _read_changes(self, definition: Definition, changed: dict[str, set[str]]) -> list[str]:
        """The profiles for which a definition this one reads (trait()) changed value."""
        profiles: set[str] = set()
        for key in definition.query.references:
            profiles |= changed.get(key, set())
        return sorted(profiles)

    # --- one computation -------------------------------------------------------------------------------------
    def _run(self, conn: "sqlite3.Connection", definition: Definition, profile_ids: list[str] | None,
             first_sync_for: tuple[str, ...] = (), changed: dict[str, set[str]] | None = None,
             members_stay: set[str] | None = None) -> Definition:
        now = self._now()
        at = iso(now)
        previous = self._previous(conn, definition, profile_ids)  # stored JSON text per profile
        if members_stay and profile_ids is not None:
            profile_ids = [p for p in profile_ids if not (p in members_stay and previous.get(p) == "true")]
        values = self.evaluator.evaluate(
            definition.query, at=now, profile_ids=profile_ids, conn=conn,
            since=_events_since(definition),
            since_seq=definition.created_seq if not definition.backfill and definition.created_seq is not None else -1,
            external_id_types=definition.external_id_types if definition.kind == AUDIENCE else None)
        changes: list[tuple[str, Any, bool | None]] = []  # (profile, value, entered)
        cleared: list[str] = []  # computed traits that no longer have a value
        for profile_id, value in values.items():
            old = previous.get(profile_id, _MISSING)
            if definition.kind == AUDIENCE:
                member, was = bool(value), old == "true"
                if member != was and (member or old is not _MISSING):
                    changes.append((profile_id, member, member))
                continue
            if old is not _MISSING:
                old = _decode(old)
            if value is not None and (old is _MISSING or old != value):
                changes.append((profile_id, value, None))
            elif value is None and old is not _MISSING:
                cleared.append(profile_id)
        if changed is not None and (changes or cleared):
            changed.setdefault(definition.key, set()).update([*(pid for pid, _, _ in changes), *cleared])
        if cleared:
            conn.executemany("DELETE FROM engage_traits WHERE profile_id = ? AND key = ? AND class = ?",
                             [(pid, definition.key, definition.trait_class) for pid in cleared])
        if changes:
            conn.executemany(
                "INSERT OR REPLACE INTO engage_traits (profile_id, key, value, class, source_id, updated_at,"
                " message_seq) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [(pid, definition.key, value_text(value), definition.trait_class, definition.id, at)
                 for pid, value, _ in changes])
        first_sync = set(first_sync_for)
        if first_sync:
            # A first sync sends every current member (or every value), not only what changed just now.
            current = {pid: _decode(v) for pid, v in self._previous(conn, definition, None).items()}
            members = [(pid, v, True if definition.kind == AUDIENCE else None) for pid, v in current.items()
                       if (v is True if definition.kind == AUDIENCE else v is not None)]
            self._emit(conn, definition, members, [c for c in definition.connections if c.destination in first_sync],
                       fan_out=True, at=at)
        self._emit(conn, definition, changes,
                   [c for c in definition.connections if c.destination not in first_sync], fan_out=False, at=at)
        next_run = iso(now + self._batch_interval()) if definition.is_batch and profile_ids is None \
            else definition.next_run_at
        synced = tuple(dict.fromkeys((*definition.synced, *first_sync)))
        return self.definitions.mark_run(conn, definition, at if profile_ids is None else definition.computed_at or at,
                                         next_run, synced)

    def _previous(self, conn: "sqlite3.Connection", definition: Definition,
                  profile_ids: list[str] | None) -> dict[str, str]:
        """The stored value of each profile as JSON text (decoded only where needed: audiences are 'true'/'false')."""
        sql = "SELECT profile_id, value FROM engage_traits WHERE key = ? AND class = ?"
        params: list[Any] = [definition.key, definition.trait_class]
        if profile_ids is None:
            return dict(conn.execute(sql, params).fetchall())
        result: dict[str, str] = {}
        for start in range(0, len(profile_ids), _CHUNK):
            chunk = profile_ids[start:start + _CHUNK]
            # `+class`: the primary key (profile_id, key) for the few profiles, not the (key, class) index of all
            result.update(conn.execute(
                f"SELECT profile_id, value FROM engage_traits WHERE profile_id IN ({','.join('?' * len(chunk))})"
                " AND key = ? AND +class = ?", [*chunk, *params]).fetchall())
        return result

    def _emit(self, conn: "sqlite3.Connection", definition: Definition, changes: list[tuple[str, Any, bool | None]],
              connections: list[Connection], *, fan_out: bool, at: str) -> None:
        if not changes or not connections:
            return
        identities = self._identities(conn, [pid for pid, _, _ in changes])
        by_destination: dict[str, list[tuple[dict, str]]] = {}
        records = []
        for profile_id, value, entered in changes:
            identity = identities.get(profile_id) or Identity(None, None, ())
            # "Segment sends all ID combinations for Audience Exit events" (using-engage-data.md).
            spread = fan_out or (definition.kind == AUDIENCE and entered is False)
            for connection in connections:
                for message in build_messages(definition, connection, identity, value, entered=entered,
                                              fan_out=spread, space_id=self.space_id, now=at,
                                              new_message_id=lambda: self.sandbox.ids.token("personas_")):
                    text = json.dumps(message)  # once: the Engage debugger and the outbox keep the same text
                    by_destination.setdefault(connection.destination, []).append((message, text))
                    records.append((message["messageId"], definition.id, profile_id, connection.destination,
                                    message["type"], message.get("event"), at, text))
        conn.executemany("INSERT INTO engage_messages (message_id, definition_id, profile_id, destination, type,"
                         " event, at, message) VALUES (?,?,?,?,?,?,?,?)", records)
        for destination, messages in by_destination.items():
            self.sandbox.outbox.enqueue(conn, destination, [m for m, _ in messages], texts=[t for _, t in messages])

    def _identities(self, conn: "sqlite3.Connection", profile_ids: list[str]) -> dict[str, Identity]:
        return {pid: Identity(*ids) for pid, ids in carried_ids(conn, profile_ids).items()}

    # --- reads -------------------------------------------------------------------------------------------------
    def size(self, key: str) -> int:
        """How many profiles are in the audience `key` (the engage_traits (key, class) index counts them)."""
        return self.sandbox.store.execute(
            "SELECT count(*) FROM engage_traits WHERE key = ? AND class = 'audience' AND value = 'true'",
            (key,)).fetchone()[0]

    def members(self, key: str) -> list[str]:
        """Profile ids currently in the audience `key`."""
        return [r["profile_id"] for r in self.sandbox.store.query(
            "SELECT profile_id FROM engage_traits WHERE key = ? AND class = 'audience' AND value = 'true'"
            " ORDER BY profile_id", (key,))]

    def messages(self, *, destination: str | None = None, definition_key: str | None = None,
                 limit: int = 100) -> list[dict]:
        """What Engage sent (the Engage source debugger), newest first."""
        sql = ("SELECT m.message FROM engage_messages m LEFT JOIN engage_definitions d ON d.id = m.definition_id")
        where, params = [], []
        if destination:
            where.append("m.destination = ?")
            params.append(destination)
        if definition_key:
            where.append("d.key = ?")
            params.append(definition_key)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY m.id DESC LIMIT ?"
        params.append(max(1, min(int(limit), 1000)))
        return [json.loads(r["message"]) for r in self.sandbox.store.query(sql, params)]


_KNOWN_VALUES = {"true": True, "false": False}


def _decode(value: str) -> Any:
    """A stored JSON value; audiences are all 'true'/'false', which need no parser."""
    known = _KNOWN_VALUES.get(value, _MISSING)
    return json.loads(value) if known is _MISSING else known


def _names(connections: Iterable[Connection]) -> tuple[str, ...]:
    return tuple(c.destination for c in connections)


def _config_view(definition: Definition) -> tuple:
    return (definition.kind, definition.key, definition.name, definition.query_text, definition.enabled,
            definition.backfill, definition.lookback_days, definition.include_anonymous, definition.external_id_types,
            definition.force_batch, definition.connections, definition.description)


def _events_since(definition: Definition) -> str | None:
    """The first event time that counts: all history with backfill (or its lookback), else from creation on."""
    if not definition.backfill:
        return definition.created_at
    if definition.lookback_days is None or not definition.created_at:
        return None
    return iso(parse_instant(definition.created_at) - timedelta(days=definition.lookback_days))

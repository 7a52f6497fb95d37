"""Audience and computed-trait definitions: what they are, where they come from, where they are kept.

A definition comes from the YAML configuration (`segment.audiences`, `segment.computed_traits`; kept across
`reset()` and stable ids derived from the key) or from the Public API (data: a reset removes it). Either way it
is validated the same way: the query parses, an audience yields a boolean and a trait a value, keys are unique,
and audiences do not reference each other in a cycle.
"""
from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ...config import ConfigError

if TYPE_CHECKING:  # the query language (lark) is imported when a definition is first parsed: faster start-up
    import sqlite3

    from .query import Query

    from ...store import Store

AUDIENCE, TRAIT = "audience", "trait"
PREFIX = {AUDIENCE: "aud_", TRAIT: "tra_"}
CLASS = {AUDIENCE: "audience", TRAIT: "computed_trait"}  # engage_traits.class of the value on the profile
DESTINATION_KINDS = ("braze", "braze_cohorts")
# Audiences consider a profile only when it has one of these (Public API `filterByExternalIds` default);
# "Include Anonymous Users" adds anonymous_id (segment-query-language.md §1.4).
DEFAULT_EXTERNAL_IDS = ("user_id", "email", "android.idfa", "ios.idfa")
CYCLE_MESSAGE = "The audience would create a cycle by referencing another audience"
_KEY = re.compile(r"^[a-z0-9_]+$")
_BASE62 = string.digits + string.ascii_letters


class DefinitionError(ValueError):
    """A definition refused: `field` names what is wrong (e.g. `definition.query`), `line`/`column` for queries."""

    def __init__(self, message: str, field: str | None = None, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message, self.field, self.line, self.column = message, field, line, column


@dataclass(frozen=True)
class Connection:
    """An audience's or trait's connection to a destination, with Segment's per-connection settings."""

    destination: str
    identify: bool = False
    track: bool = False
    enter_event: str = "Audience Entered"
    exit_event: str = "Audience Exited"
    compute_event: str = "Trait Computed"

    def as_dict(self) -> dict:
        return {"destination": self.destination, "identify": self.identify, "track": self.track,
                "enter_event": self.enter_event, "exit_event": self.exit_event, "compute_event": self.compute_event}


@dataclass(frozen=True)
class Definition:
    id: str
    kind: str
    key: str
    name: str
    query_text: str
    query: Query
    enabled: bool = True
    description: str | None = None
    backfill: bool = True
    lookback_days: int | None = None  # with backfill: event data from this many days before creation (Public API)
    created_seq: int | None = None  # the last event seq when it was created: backfill off counts only later ones
    include_anonymous: bool = False
    external_id_types: tuple[str, ...] = DEFAULT_EXTERNAL_IDS
    force_batch: bool = False
    connections: tuple[Connection, ...] = ()
    origin: str = "config"
    created_at: str = ""
    updated_at: str = ""
    computed_at: str | None = None
    next_run_at: str | None = None
    synced: tuple[str, ...] = field(default=())  # destinations whose first sync has been sent

    @property
    def computation_class(self) -> str:
        return "audience" if self.kind == AUDIENCE else "trait"

    @property
    def trait_class(self) -> str:
        return CLASS[self.kind]

    @property
    def is_batch(self) -> bool:
        return self.query.is_batch or self.force_batch

    def options_json(self) -> str:
        return json.dumps({"backfill": self.backfill, "lookback_days": self.lookback_days, "created_seq": self.created_seq,
                           "include_anonymous": self.include_anonymous,
                           "external_id_types": list(self.external_id_types), "batch": self.force_batch,
                           "description": self.description})


def stable_id(kind: str, space_id: str, key: str) -> str:
    """A KSUID-looking id that a configured definition keeps across restarts and resets."""
    digest = int.from_bytes(hashlib.sha256(f"{space_id}/{kind}/{key}".encode()).digest(), "big")
    chars = []
    for _ in range(27):
        digest, rest = divmod(digest, 62)
        chars.append(_BASE62[rest])
    return PREFIX[kind] + "".join(chars)


def snake_key(name: str) -> str:
    """Segment's audience key: "the snake_cased version of the audience name" (using-engage-data.md)."""
    key = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip()).strip("_").lower()
    return key or "audience"


def parse_query(text: Any, kind: str, force_batch: bool = False, field_name: str = "query") -> Query:
    from .query import QueryError, check_definition

    if not isinstance(text, str) or not text.strip():
        raise DefinitionError(f"{field_name} must be a non-empty query string", field_name)
    try:
        return check_definition(text, kind, force_batch=force_batch)
    except QueryError as exc:
        raise DefinitionError(str(exc), field_name, getattr(exc, "line", None), getattr(exc, "column", None)) from None


def parse_connections(raw: Any, kind: str, where: str = "destinations") -> tuple[Connection, ...]:
    """`{braze: {identify: true, track: false}, braze_cohorts: true}` (cohorts read Audience Entered/Exited tracks)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where} must be a mapping of destination names to settings", where)
    connections = []
    for name, settings in raw.items():
        path = f"{where}.{name}"
        if settings is False or settings is None:
            continue
        if settings is True:
            settings = {"track": True} if name == "braze_cohorts" else {"identify": True}
        if not isinstance(settings, dict):
            raise DefinitionError(f"{path} must be true or a mapping of connection settings", path)
        known = {"identify", "track", "enter_event", "exit_event", "compute_event"}
        unknown = set(settings) - known
        if unknown:
            raise DefinitionError(f"{path}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}", path)
        for flag in ("identify", "track"):
            if flag in settings and not isinstance(settings[flag], bool):
                raise DefinitionError(f"{path}.{flag} must be true or false", f"{path}.{flag}")
        for text in ("enter_event", "exit_event", "compute_event"):
            if text in settings and (not isinstance(settings[text], str) or not settings[text]):
                raise DefinitionError(f"{path}.{text} must be an event name", f"{path}.{text}")
        connection = Connection(name, **settings)
        if not (connection.identify or connection.track):
            raise DefinitionError(f"{path}: turn on identify, track or both (Send Identify / Send Track)", path)
        connections.append(connection)
    return tuple(connections)


_CONFIG_KEYS = {"key", "name", "description", "query", "enabled", "backfill", "lookback_days", "include_anonymous",
                "external_id_types", "batch", "destinations"}


def from_config(entry: Any, kind: str, space_id: str) -> Definition:
    """One entry of `segment.audiences` / `segment.computed_traits`; DefinitionError names the field."""
    if not isinstance(entry, dict):
        raise DefinitionError("must be a mapping with at least key and query")
    unknown = set(entry) - _CONFIG_KEYS
    if unknown:
        raise DefinitionError(f"unknown key(s) {sorted(unknown)}; known: {sorted(_CONFIG_KEYS)}", sorted(unknown)[0])
    key = entry.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise DefinitionError("key must be a snake_case key such as dormant_shopper", "key")
    for flag in ("enabled", "backfill", "include_anonymous", "batch"):
        if flag in entry and not isinstance(entry[flag], bool):
            raise DefinitionError(f"{flag} must be true or false", flag)
    lookback_days = lookback_option(entry.get("lookback_days"), entry.get("backfill", True), "lookback_days")
    force_batch = bool(entry.get("batch", False))
    query = parse_query(entry.get("query"), kind, force_batch)
    include_anonymous = bool(entry.get("include_anonymous", False))
    return Definition(
        id=stable_id(kind, space_id, key), kind=kind, key=key, name=entry.get("name") or key,
        description=entry.get("description"), query_text=entry["query"], query=query,
        enabled=entry.get("enabled", True), backfill=entry.get("backfill", True), lookback_days=lookback_days,
        include_anonymous=include_anonymous,
        external_id_types=external_ids_option(entry.get("external_id_types"), include_anonymous, "external_id_types"),
        force_batch=force_batch, connections=parse_connections(entry.get("destinations"), kind), origin="config")


def lookback_option(raw: Any, backfill: Any, where: str) -> int | None:
    """Days of event data before creation that count (backfillEventDataDays / backfillDurationDays): "the number of
    days (specified from the date the audience was created) that event data will be included ... includeHistoricalData
    must be set to true" (reference/segment-query-language.md §1.4)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise DefinitionError(f"{where} must be a whole number of days, at least 1", where)
    if backfill is False:
        raise DefinitionError(f"{where} needs historical data included (it limits how far back it goes)", where)
    return raw


def external_ids_option(raw: Any, include_anonymous: bool, where: str) -> tuple[str, ...]:
    if raw is None:
        types = list(DEFAULT_EXTERNAL_IDS)
    elif isinstance(raw, list) and raw and all(isinstance(t, str) and t for t in raw):
        types = list(raw)
    else:
        raise DefinitionError(f"{where} must be a non-empty list of external id types", where)
    if include_anonymous and "anonymous_id" not in types:
        types.append("anonymous_id")
    return tuple(types)


def cohorts_only_for_audiences(destination: str, configured: dict, kind: str) -> None:
    """Braze Cohorts syncs audiences (its one action is Sync Audience): a computed trait connected to it would have
    every message filtered."""
    settings = configured.get(destination)
    kind_of_destination = settings.get("type", destination) if isinstance(settings, dict) else destination
    if kind == TRAIT and kind_of_destination == "braze_cohorts":
        raise DefinitionError(f"{destination} (Braze Cohorts) syncs audiences only: connect computed traits to a "
                              "Braze Cloud Mode destination", "destinations")


def check_config(config: dict, source: str | None = None) -> None:
    """Refuse bad definitions at load, naming the file and the path (EMULATOR.md §3)."""
    from .query import detect_cycle

    space_id = config["segment"]["space"]["id"]
    queries: dict[str, Query] = {}
    seen: dict[str, str] = {}
    for kind, section in ((AUDIENCE, "audiences"), (TRAIT, "computed_traits")):
        for index, entry in enumerate(config["segment"].get(section) or []):
            path = f"segment.{section}[{index}]"
            try:
                definition = from_config(entry, kind, space_id)
            except DefinitionError as exc:
                where = f"{path}.{exc.field}" if exc.field else path
                raise ConfigError(where, exc.message, source) from None
            # one key per space: an audience and a computed trait are both traits of the profile under their key
            if definition.key in seen:
                raise ConfigError(f"{path}.key", f"a key no other audience or computed trait uses "
                                  f"({seen[definition.key]} has {definition.key!r})", source)
            seen[definition.key] = path
            unknown = {c.destination for c in definition.connections} - set(config["segment"]["destinations"])
            if unknown:
                raise ConfigError(f"{path}.destinations", f"destinations configured under segment.destinations "
                                  f"(unknown: {sorted(unknown)})", source)
            for connection in definition.connections:
                try:
                    cohorts_only_for_audiences(connection.destination, config["segment"]["destinations"], kind)
                except DefinitionError as exc:
                    raise ConfigError(f"{path}.destinations.{connection.destination}", exc.message, source) from None
            queries[definition.key] = definition.query
    cycle = detect_cycle(queries)
    if cycle:
        raise ConfigError("segment.audiences", f"no reference cycle: {CYCLE_MESSAGE} ({' -> '.join(cycle)})", source)


class DefinitionStore:
    """Definitions in the `engage_definitions` table (one place for reads and writes)."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self._parsed: dict[tuple[str, str], Query] = {}  # (kind, query text) -> Query: parsing is not free
        # row values -> Definition: realtime audiences read every definition on each ingest; rows rarely change
        self._built: dict[tuple, Definition] = {}

    def _query(self, kind: str, text: str, force_batch: bool) -> Query:
        cache_key = (kind, text, force_batch)
        if cache_key not in self._parsed:
            from .query import check_definition

            self._parsed[cache_key] = check_definition(text, "audience" if kind == AUDIENCE else "trait",
                                                       force_batch=force_batch)
        return self._parsed[cache_key]

    def _row_to_definition(self, row: dict) -> Definition:
        options = json.loads(row["options"])
        connections = tuple(Connection(**c) for c in json.loads(row["connections"]))
        return Definition(
            id=row["id"], kind=row["kind"], key=row["key"], name=row["name"], description=options.get("description"),
            query_text=row["query"], query=self._query(row["kind"], row["query"], options.get("batch", False)),
            enabled=bool(row["enabled"]), backfill=options["backfill"], lookback_days=options.get("lookback_days"),
            created_seq=options.get("created_seq"),
            include_anonymous=options["include_anonymous"],
            external_id_types=tuple(options["external_id_types"]), force_batch=options.get("batch", False),
            connections=connections, origin=row["origin"], created_at=row["created_at"], updated_at=row["updated_at"],
            computed_at=row["computed_at"], next_run_at=row["next_run_at"],
            synced=tuple(json.loads(row["synced"] or "[]")))

    def all(self, kind: str | None = None) -> list[Definition]:
        sql, params = "SELECT * FROM engage_definitions", []
        if kind:
            sql += " WHERE kind = ?"
            params.append(kind)
        built = self._built
        definitions = []
        for row in self.store.query(sql + " ORDER BY created_at, id", params):
            key = tuple(row.values())
            definition = built.get(key)
            if definition is None:
                if len(built) >= 4096:
                    built.clear()
                definition = built[key] = self._row_to_definition(row)
            definitions.append(definition)
        return definitions

    def get(self, definition_id: str) -> Definition | None:
        rows = self.store.query("SELECT * FROM engage_definitions WHERE id = ?", (definition_id,))
        return self._row_to_definition(rows[0]) if rows else None

    def by_key(self, kind: str, key: str) -> Definition | None:
        rows = self.store.query("SELECT * FROM engage_definitions WHERE kind = ? AND key = ?", (kind, key))
        return self._row_to_definition(rows[0]) if rows else None

    def save(self, conn: "sqlite3.Connection", definition: Definition) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO engage_definitions (id, kind, key, name, query, enabled, options, connections,"
            " origin, created_at, updated_at, computed_at, next_run_at, synced) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (definition.id, definition.kind, definition.key, definition.name, definition.query_text,
             int(definition.enabled), definition.options_json(),
             json.dumps([c.as_dict() for c in definition.connections]), definition.origin, definition.created_at,
             definition.updated_at, definition.computed_at, definition.next_run_at, json.dumps(list(definition.synced))))

    def delete(self, conn: "sqlite3.Connection", definition_id: str) -> None:
        conn.execute("DELETE FROM engage_definitions WHERE id = ?", (definition_id,))

    def mark_run(self, conn: "sqlite3.Connection", definition: Definition, computed_at: str,
                 next_run_at: str | None, synced: tuple[str, ...]) -> Definition:
        if (computed_at, next_run_at, synced) == (definition.computed_at, definition.next_run_at, definition.synced):
            return definition  # a realtime run over a few profiles: nothing to write
        conn.execute("UPDATE engage_definitions SET computed_at = ?, next_run_at = ?, synced = ? WHERE id = ?",
                     (computed_at, next_run_at, json.dumps(list(synced)), definition.id))
        return replace(definition, computed_at=computed_at, next_run_at=next_run_at, synced=synced)

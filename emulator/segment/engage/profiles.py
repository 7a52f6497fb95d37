"""Reads and writes of Engage profiles (what the Profile API, audiences and computed traits use).

Every function takes the sandbox `Store`; profile ids given in are followed through `merged_into`, so an id
handed out before a merge keeps working.

The tables (schema migration 3), for SQL over every profile at once:
- live user profiles: `SELECT profile_id FROM engage_profiles WHERE collection = 'users' AND merged_into IS NULL`
- their events: `engage_event_profiles p JOIN segment_events e ON e.seq = p.seq` (rows always name the live
  profile: a merge re-points them), e.g. `GROUP BY p.profile_id`
- their traits: `engage_traits` (value is JSON: `json_extract(value, '$')`; class trait | computed_trait |
  audience), their ids: `engage_external_ids` (collection 'users'); accounts and `engage_links` for group calls.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    import sqlite3

    from ...store import Store

TRAIT_CLASSES = ("trait", "computed_trait", "audience")
COLLECTIONS = ("users", "accounts")


#: The JSON text a trait value is stored as (user traits, computed traits and audiences alike).
value_text = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def carried_ids(conn: "sqlite3.Connection", profile_ids: list[str]) -> dict[str, tuple[Any, Any, tuple]]:
    """What Engage's payloads carry of each profile's external ids, in the order they were added: (its first
    user_id, its first anonymous_id, every email). Profiles without ids are absent."""
    rows: dict[str, list[tuple[str, str]]] = {}
    for start in range(0, len(profile_ids), _ID_CHUNK):
        chunk = profile_ids[start:start + _ID_CHUNK]
        for pid, id_type, value in conn.execute(
                "SELECT profile_id, type, value FROM engage_external_ids WHERE profile_id IN"
                f" ({','.join('?' * len(chunk))}) ORDER BY created_at, rowid", chunk):
            rows.setdefault(pid, []).append((id_type, value))
    carried = {}
    for pid, ids in rows.items():
        first: dict[str, str] = {}
        for id_type, value in ids:
            first.setdefault(id_type, value)
        carried[pid] = (first.get("user_id"), first.get("anonymous_id"),
                        tuple(value for id_type, value in ids if id_type == "email"))
    return carried


_ID_CHUNK = 900


def live_profile(store: "Store", profile_id: str) -> str | None:
    """The live profile for a (possibly merged) profile id, or None when unknown."""
    row = store.execute("SELECT merged_into FROM engage_profiles WHERE profile_id = ?", (profile_id,)).fetchone()
    if row is None:
        return None
    return row[0] or profile_id


def profile_id_for(store: "Store", id_type: str, value: str, collection: str = "users") -> str | None:
    row = store.execute("SELECT profile_id FROM engage_external_ids WHERE collection = ? AND type = ? AND value = ?",
                        (collection, id_type, value)).fetchone()
    return row[0] if row else None


def resolve(store: "Store", identifier: str, collection: str = "users") -> str | None:
    """`type:value` (e.g. `user_id:u1`), or a profile id (`use_…` / `acc_…`), to the live profile id."""
    if ":" in identifier:
        id_type, value = identifier.split(":", 1)
        # external id types are stored lower-case ("externalIDs must be lower-case", externalids.md)
        return profile_id_for(store, id_type.lower(), value, collection)
    row = store.execute("SELECT coalesce(merged_into, profile_id), collection FROM engage_profiles"
                        " WHERE profile_id = ?", (identifier,)).fetchone()
    return row[0] if row and row[1] == collection else None


def profile_ids(store: "Store", collection: str = "users") -> list[str]:
    """Every live profile id of a collection, oldest first."""
    return [r[0] for r in store.execute(
        "SELECT profile_id FROM engage_profiles WHERE collection = ? AND merged_into IS NULL ORDER BY rowid",
        (collection,))]


def metadata(store: "Store", profile_id: str) -> dict | None:
    rows = store.query("SELECT profile_id, collection, created_at, updated_at, merged_into, first_message_id,"
                       " first_source_id, last_message_id, last_source_id FROM engage_profiles WHERE profile_id = ?",
                       (profile_id,))
    return rows[0] if rows else None


def traits(store: "Store", profile_id: str, *, cls: str | None = None, include: Iterable[str] | None = None,
           from_key: str | None = None, limit: int | None = None) -> list[dict]:
    """Trait rows `{key, value, class, source_id, updated_at}` ordered by key (values decoded), from
    `from_key` on (the Profile API's cursor is the first key of the next page)."""
    sql = "SELECT key, value, class, source_id, updated_at FROM engage_traits WHERE profile_id = ?"
    params: list[Any] = [profile_id]
    if cls is not None:
        sql += " AND class = ?"
        params.append(cls)
    if include is not None:
        keys = list(include)
        sql += f" AND key IN ({','.join('?' * len(keys))})"
        params.extend(keys)
    if from_key is not None:
        sql += " AND key >= ?"
        params.append(from_key)
    sql += " ORDER BY key"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = store.query(sql, params)
    for row in rows:
        row["value"] = json.loads(row["value"]) if row["value"] is not None else None
    return rows


def set_trait(store: "Store", profile_id: str, key: str, value: Any, cls: str, *, source_id: str | None,
              updated_at: str) -> None:
    if cls not in TRAIT_CLASSES:
        raise ValueError(f"trait class must be one of {', '.join(TRAIT_CLASSES)}, not {cls!r}")
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO engage_traits (profile_id, key, value, class, source_id, updated_at, message_seq)"
            " VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value,"
            " class = excluded.class, source_id = excluded.source_id, updated_at = excluded.updated_at,"
            " message_seq = NULL", (profile_id, key, value_text(value), cls, source_id, updated_at))


def set_traits(store: "Store", values: dict[str, dict[str, Any]], cls: str, *, source_id: str | None,
               updated_at: str) -> None:
    """Bulk form of `set_trait`: `{profile_id: {key: value}}` in one statement (batch computations)."""
    if cls not in TRAIT_CLASSES:
        raise ValueError(f"trait class must be one of {', '.join(TRAIT_CLASSES)}, not {cls!r}")
    rows = [(profile_id, key, value_text(value), cls, source_id, updated_at)
            for profile_id, traits in values.items() for key, value in traits.items()]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO engage_traits (profile_id, key, value, class, source_id, updated_at, message_seq)"
            " VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value,"
            " class = excluded.class, source_id = excluded.source_id, updated_at = excluded.updated_at,"
            " message_seq = NULL", rows)


def delete_trait(store: "Store", profile_id: str, key: str) -> bool:
    with store.transaction() as conn:
        cursor = conn.execute("DELETE FROM engage_traits WHERE profile_id = ? AND key = ?", (profile_id, key))
        return cursor.rowcount > 0


def external_ids(store: "Store", profile_id: str, *, include: Iterable[str] | None = None,
                 from_cursor: int | None = None, limit: int | None = None) -> list[dict]:
    """External id rows in the order they were first seen; `cursor` is the row's position for paging."""
    sql = ("SELECT rowid AS cursor, source_id, collection, value AS id, type, created_at, first_message_id"
           " FROM engage_external_ids WHERE profile_id = ?")
    params: list[Any] = [profile_id]
    if include is not None:
        types = list(include)
        sql += f" AND type IN ({','.join('?' * len(types))})"
        params.extend(types)
    if from_cursor is not None:
        sql += " AND rowid >= ?"
        params.append(from_cursor)
    sql += " ORDER BY rowid"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return store.query(sql, params)


def events(store: "Store", profile_id: str, *, start: str | None = None, end: str | None = None,
           include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, descending: bool = False,
           from_position: tuple[str, int] | None = None, limit: int | None = None) -> list[dict]:
    """The profile's messages as Segment keeps them, with `_seq` and `_source`, ordered by (timestamp, seq).

    `start`/`end` bound the timestamp (ISO, exclusive); `include`/`exclude` filter on the event name (the
    message's `event`, or its type for calls without one); `from_position` is the (timestamp, seq) of the
    first message to return (a page cursor).
    """
    sql = ("SELECT e.seq, e.source, e.timestamp, e.message FROM engage_event_profiles p"
           " JOIN segment_events e ON e.seq = p.seq WHERE p.profile_id = ?")
    params: list[Any] = [profile_id]
    if start is not None:
        sql += " AND e.timestamp > ?"
        params.append(start)
    if end is not None:
        sql += " AND e.timestamp < ?"
        params.append(end)
    name = "coalesce(e.event, e.type)"
    if include is not None:
        names = list(include)
        sql += f" AND {name} IN ({','.join('?' * len(names))})"
        params.extend(names)
    if exclude is not None:
        names = list(exclude)
        sql += f" AND {name} NOT IN ({','.join('?' * len(names))})"
        params.extend(names)
    if from_position is not None:
        sql += f" AND (e.timestamp, e.seq) {'<=' if descending else '>='} (?, ?)"
        params.extend(from_position)
    order = "DESC" if descending else "ASC"
    sql += f" ORDER BY e.timestamp {order}, e.seq {order}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    out = []
    for row in store.query(sql, params):
        message = json.loads(row["message"])
        message["_seq"], message["_source"] = row["seq"], row["source"]
        out.append(message)
    return out


def links(store: "Store", profile_id: str, collection: str = "users", limit: int | None = None) -> list[dict]:
    """Linked profiles: accounts of a user, users of an account; each `{profile_id, external_ids: [...]}`."""
    if collection == "users":
        sql = "SELECT account_id AS other FROM engage_links WHERE profile_id = ? ORDER BY created_at, rowid"
    else:
        sql = "SELECT profile_id AS other FROM engage_links WHERE account_id = ? ORDER BY created_at, rowid"
    params: list[Any] = [profile_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [{"profile_id": row["other"], "external_ids": external_ids(store, row["other"])}
            for row in store.query(sql, params)]

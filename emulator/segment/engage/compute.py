"""Evaluate Engage audiences and computed traits: one parameterized SQL statement per definition.

Facts: reference/segment-query-language.md §2.3 (functions), §3 (semantics); decisions: SPEC.md §2 "Engage".
`Evaluator.evaluate(query, at=...)` compiles the query's AST (query.py) once (cached per Query object and
population kind) into a statement of the form

    WITH P(pid) AS (<the profiles asked about>),
         S1(pid, v, c) AS MATERIALIZED (<one reducer over one event stream, grouped by profile>), ...
    SELECT P.pid, <the definition as an expression over S1.., traits and correlated sub-queries>
    FROM P LEFT JOIN S1 ON S1.pid = P.pid ...

In batch (`profile_ids=None`) a stream at the top of the definition becomes a grouped CTE that reads the matching
events through the `segment_events_engage_name` index (event name, timestamp) for all profiles at once. For a handful
of profiles (realtime), and for streams nested in where() (funnels, `NOT event(..).count() >= 1` inside where) or
under ANY/ALL, a stream is a correlated sub-query that starts from the profile's events of that name
(engage_event_profiles(profile_id, name, timestamp): a count with no filter reads nothing else, see `_index_only`,
and a count compared with a number stops early, see `_count_cap`); AND/OR are CASE chains with the cheap operands first, so such a sub-query
only runs when it can still change the answer. Time bounds depend on `at` and are bound as parameters on every call.

Values: every property/trait value is carried as JSON text (`message -> '$.properties.x'`) so a trait's result keeps
its JSON type, and compared through `_cmp()`, which maps JSON true/false to the strings 'true'/'false' (the docs
compare `trait('VIP') = 'true'`, and audience membership is stored as JSON true) and everything else to its SQL value.
A comparison whose value is missing is false (`differs`: "only returns true if the value exists"), so NOT of it is
true. Numbers and strings never compare with <, >: `property('price') > 100` is false for the string '150'.

Decisions where the docs are silent (reference §2.3/§3.4 give the function, not the edge):
- `none_of` and `differs` need the value to exist; `omits` is `NOT contains` (docs), so it holds for a missing value.
- contains / starts_with / ends_with are case-sensitive substring tests on the value as text.
- before_date/after_date compare instants (julianday); a bare date is midnight UTC. within_last / within_next /
  before_last / after_next with days compare UTC calendar dates ("today"), with hours instants.
- sum/avg/min/max read numeric values only; with none the trait has no value (None). `as string` is
  lexicographic over every scalar. first/last: the earliest/latest event (timestamp, then arrival) that has the
  property. mode: most frequent value seen at least `d` times (the AST's default 1), tie -> first alphabetical.
  unique: distinct values, alphabetical (None when there are none); unique(...).count() is 0 then.
- Page/screen calls are `Page Viewed` / `Screen Viewed`; on those, property('name') (and page_name /
  screen_name) falls back to the call's `name`. sources({exclude}) matches the source name (the emulator's id).
- Windows use the event `timestamp`: within(d) = at-d <= timestamp (inclusive), between(s, e) = at-e .. at-s.
  Later events (a timestamp after `at`) are not excluded.
- expires_after(d): only the current session (events less than d apart, ending with the latest) and only while
  the latest is less than d old.
- Account-level definitions (ANY/ALL anywhere) are evaluated over the 'accounts' collection: trait() outside
  ANY/ALL reads the account, inside it the linked user; ALL over an account without users is true; the
  identifier-type rule applies to users only.
"""
from __future__ import annotations

import json
import math
import sqlite3
from itertools import compress
from operator import itemgetter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ...clock import iso, parse_instant
from .durations import Duration
from .query import (Aggregation, AllUsers, And, AnyUser, Between, Comparison, ContextRef, EventStream, ExpiresAfter,
                    Literal, Node, Not, Or, PropertyRef, Query, QueryError, TraitRef, Within, iter_nodes)

if TYPE_CHECKING:
    from ...store import Store

__all__ = ["Evaluator", "QueryError", "EVENT_NAME_SQL"]

#: The name an event has in the query language: a track's event; page and screen calls are `Page Viewed` /
#: `Screen Viewed` (docs src/engage/audiences/index.md). Identify, group and alias calls are not events.
#: Migration 5 indexes exactly this expression (with `timestamp`), so it must stay textually identical.
EVENT_NAME_SQL = ("CASE {e}.type WHEN 'track' THEN {e}.event WHEN 'page' THEN 'Page Viewed'"
                  " WHEN 'screen' THEN 'Screen Viewed' END")
_PAGE_NAMES = {"Page Viewed": ("name", "page_name"), "Screen Viewed": ("name", "screen_name")}

_NUMERIC = "('integer','real')"
_CACHE_LIMIT = 4096
_first, _second = itemgetter(0), itemgetter(1)


def _cmp(j: str) -> str:
    """JSON text -> comparable SQL value: JSON booleans as 'true'/'false', null as NULL, the rest as SQL values."""
    return f"(CASE WHEN {j} IN ('true','false') THEN {j} ELSE json_extract({j}, '$') END)"


def _json_path(node: Node, prefix: tuple[str, ...], path: tuple[str, ...]) -> str:
    parts = prefix + path
    for part in parts:
        if '"' in part or not part:
            raise _error(node, f"cannot read the name {'.'.join(path)!r}: an empty segment or a double quote in a "
                               f"name is not supported by this emulator")
    return "$" + "".join(f'."{part}"' for part in parts)


def _error(node: Node | None, message: str) -> QueryError:
    pos = getattr(node, "pos", None)
    return QueryError(pos.line if pos else 1, pos.column if pos else 1, message, [])


def _unsupported(node: Node | None, what: str) -> QueryError:
    return _error(node, f"{what} is not supported by this emulator's Engage evaluation")


@dataclass
class _Val:
    """A compiled scalar: `sql` and what it holds: 'num' (an SQL number or NULL), 'json' (JSON text or NULL),
    'cmp' (an already comparable SQL value), or 'lit' (a literal, `value` its Python value)."""

    sql: str
    kind: str
    value: Any = None
    node: Node | None = None

    @property
    def cmp(self) -> str:
        return _cmp(self.sql) if self.kind == "json" else self.sql

    @property
    def json(self) -> str:
        if self.kind == "json":
            return self.sql
        return f"json_quote({self.sql})"

    @property
    def numeric(self) -> bool:
        return self.kind == "num" or (self.kind == "lit" and isinstance(self.value, (int, float))
                                      and not isinstance(self.value, bool))


@dataclass
class _Scope:
    profile: str                                  # SQL giving the profile id the expression is about
    events: tuple[tuple[str, EventStream], ...] = ()  # enclosing event aliases, innermost last
    top: bool = True                              # user-scope top level: batch streams become CTEs


@dataclass
class _Compiled:
    sql: str
    static: dict[str, Any]
    dynamic: list[tuple[str, Callable[[datetime], Any]]]
    kind: str  # "audience" (bool) | "trait" (JSON text)
    collection: str
    list_result: bool


@dataclass
class _Compiler:
    query: Query
    realtime: bool
    since: bool = False
    static: dict[str, Any] = field(default_factory=dict)
    dynamic: list[tuple[str, Callable[[datetime], Any]]] = field(default_factory=list)
    ctes: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    counter: int = 0

    # -- helpers ----------------------------------------------------------------------------------------------
    def next(self) -> int:
        self.counter += 1
        return self.counter

    def param(self, value: Any) -> str:
        name = f"p{self.next()}"
        self.static[name] = value
        return f":{name}"

    def at_param(self, fn: Callable[[datetime], Any]) -> str:
        name = f"d{self.next()}"
        self.dynamic.append((name, fn))
        return f":{name}"

    def at_minus(self, duration: Duration) -> str:
        delta = duration.timedelta
        return self.at_param(lambda at: iso(at - delta))

    def at_plus(self, duration: Duration) -> str:
        delta = duration.timedelta
        return self.at_param(lambda at: iso(at + delta))

    # -- entry ------------------------------------------------------------------------------------------------
    def compile(self) -> _Compiled:
        root = self.query.root
        account = self.query.account_level
        collection = "accounts" if account else "users"
        scope = _Scope("P.pid", top=not account)
        boolean = self.query.result_type == "boolean"
        if boolean:
            value = f"coalesce({self.boolean(root, scope)}, 0)"
        else:
            value = self.scalar(root, scope).json
        if self.realtime:
            # driven by the ids (primary-key lookups), never by a scan of the collection
            population = ("SELECT DISTINCT p.profile_id FROM json_each(:ids) j CROSS JOIN engage_profiles p"
                          " ON p.profile_id = j.value WHERE p.collection = :collection AND p.merged_into IS NULL")
        else:
            # nearly every row qualifies: a plain scan beats the (collection, merged_into) index + row lookups
            population = ("SELECT profile_id FROM engage_profiles NOT INDEXED WHERE collection = :collection"
                          " AND merged_into IS NULL")
        if account:
            # Account profiles hold group_id only: the identifier rule applies to users (docs: audiences of
            # users with user_id/email/idfa); an account is considered when it exists.
            considered = "1"
        else:
            # CASE, not OR: SQLite evaluates both sides of an OR in a result column
            considered = ("(CASE WHEN :types IS NULL THEN 1 ELSE EXISTS (SELECT 1 FROM engage_external_ids x"
                          " WHERE x.profile_id = P.pid AND x.type IN (SELECT value FROM json_each(:types))) END)")
        ctes = ",\n".join([f"P(pid) AS ({population})"] + self.ctes)
        joins = "".join(f"\n{j}" for j in self.joins)
        if boolean:
            # the identifier check only for members (most profiles are not), so it is cheap in batch
            result = f"CASE WHEN {value} THEN {considered} ELSE 0 END"
        else:
            result = f"CASE WHEN {considered} THEN {value} END"
        sql = f"WITH {ctes}\nSELECT P.pid, {result}\nFROM P{joins}"
        list_result = isinstance(root, Aggregation) and root.function == "unique"
        return _Compiled(sql, self.static, self.dynamic, "audience" if boolean else "trait", collection,
                         list_result)

    # -- booleans ---------------------------------------------------------------------------------------------
    def boolean(self, node: Node, scope: _Scope) -> str:
        if isinstance(node, (And, Or)):
            # SQLite computes both sides of AND/OR in a result column; CASE stops at the first deciding operand,
            # and the cheap ones (CTE columns) go first: sub-queries (trait lookups, nested streams) run only
            # when still needed. Operands are 0/1 (never NULL) and free of side effects, so order is free.
            operands = sorted((self.boolean(op, scope) for op in node.operands), key=lambda sql: sql.count("SELECT"))
            if isinstance(node, And):
                return "(CASE WHEN " + " THEN CASE WHEN ".join(operands) + " THEN 1 ELSE 0 END" \
                    + " ELSE 0 END" * (len(operands) - 1) + ")"
            return "(CASE " + " ".join(f"WHEN {sql} THEN 1" for sql in operands) + " ELSE 0 END)"
        if isinstance(node, Not):
            return f"(NOT {self.boolean(node.operand, scope)})"
        if isinstance(node, (AnyUser, AllUsers)):
            k = self.next()
            inner = self.boolean(node.operand, _Scope(f"l{k}.profile_id", scope.events, top=False))
            links = f"SELECT 1 FROM engage_links l{k} WHERE l{k}.account_id = {scope.profile}"
            if isinstance(node, AnyUser):
                return f"EXISTS ({links} AND {inner})"
            # ALL over an account without users is vacuously true (no user fails the condition).
            return f"(NOT EXISTS ({links} AND NOT {inner}))"
        if isinstance(node, Comparison):
            return f"coalesce({self.comparison(node, scope)}, 0)"
        raise _error(node, f"{self.query.source(node) or type(node).__name__} is not a condition")

    def comparison(self, node: Comparison, scope: _Scope) -> str:
        op = node.operator
        cap = _count_cap(node)
        subject = self.aggregation(node.subject, scope, cap) if cap is not None else self.scalar(node.subject, scope)
        arg = node.argument
        values: list[_Val] = []
        if isinstance(arg, tuple):
            values = [self.scalar(v, scope) for v in arg]
        elif arg is not None and not isinstance(arg, Duration):
            values = [self.scalar(arg, scope)]
        if isinstance(subject, _TraitVal):
            # one primary-key lookup of the trait row, the predicate evaluated on it; no row = no value
            inner = self.predicate(node, subject.row_cmp, subject, values)
            on_missing = 1 if op in ("absent", "omits") else 0
            return f"coalesce((SELECT {inner} {subject.lookup}), {on_missing})"
        s = subject.cmp
        if (isinstance(subject, _EventVal) and subject.raw and op in ("equals", "differs", "one_of", "none_of")
                and all(v.kind == "lit" and isinstance(v.value, str) and v.value not in ("true", "false")
                        for v in values)):
            # a JSON boolean (1/0 through ->>) never equals a string: one JSON read per event is enough
            s = subject.raw
        return self.predicate(node, s, subject, values)

    def predicate(self, node: Comparison, s: str, subject: _Val, values: list[_Val]) -> str:
        op = node.operator
        arg = node.argument
        if op == "exists":
            return f"({s} IS NOT NULL)"
        if op == "absent":
            return f"({s} IS NULL)"
        if op in ("within_last", "within_next", "before_last", "after_next"):
            return self.relative(op, s, arg)
        if op in ("contains", "omits", "one_of", "none_of"):
            if op in ("one_of", "none_of"):
                listed = ", ".join(v.cmp for v in values)
                if op == "one_of":
                    return f"({s} IN ({listed}))"
                return f"({s} NOT IN ({listed}))"  # NULL (absent) stays NULL: false
            text = f"CAST({s} AS TEXT)"
            found = " OR ".join(f"instr({text}, CAST({v.cmp} AS TEXT)) > 0" for v in values)
            if op == "contains":
                return f"({found})"
            return f"(NOT coalesce({found}, 0))"
        value = values[0]
        a = value.cmp
        if op == "equals":
            return f"({s} = {a})"
        if op == "differs":
            return f"({s} <> {a})"  # docs: differs needs the value to exist; NULL <> x is NULL: false
        if op in ("starts_with", "ends_with"):
            text = f"CAST({s} AS TEXT)"
            needle = f"CAST({a} AS TEXT)"
            if op == "starts_with":
                return f"(substr({text}, 1, length({needle})) = {needle})"
            return f"({s} IS NOT NULL AND (length({needle}) = 0 OR substr({text}, -length({needle})) = {needle}))"
        if op in ("before_date", "after_date"):
            sign = "<" if op == "before_date" else ">"
            return f"(typeof({s}) = 'text' AND julianday({s}) {sign} julianday({a}))"
        sign = {"greater_than": ">", "at_least": ">=", "less_than": "<", "at_most": "<="}.get(op)
        if sign is None:
            raise _unsupported(node, f"the comparator {op}()")
        if value.kind == "lit" and isinstance(value.value, (date, datetime)):
            return f"(typeof({s}) = 'text' AND julianday({s}) {sign} julianday({a}))"
        if subject.numeric and value.numeric:
            return f"({s} {sign} {a})"
        if value.numeric:
            return f"(typeof({s}) IN {_NUMERIC} AND {s} {sign} {a})"
        if value.kind == "lit" and isinstance(value.value, str):
            return f"(typeof({s}) = 'text' AND {s} {sign} {a})"
        # Two values known only at evaluation: compare when both are numbers or both are not.
        return (f"((typeof({s}) IN {_NUMERIC}) = (typeof({a}) IN {_NUMERIC}) AND {s} {sign} {a})")

    def relative(self, op: str, s: str, duration: Any) -> str:
        """docs: within_last = "between today and the past d days - inclusive"; "today" is when Segment computes.
        With days the comparison is by calendar date (UTC), with hours by instant."""
        if not isinstance(duration, Duration):
            raise _error(None, f"{op}() needs a duration such as 7 days")
        at = self.at_param(iso)
        if op in ("within_last", "before_last"):
            bound = self.at_minus(duration)
        else:
            bound = self.at_plus(duration)
        fn = "date" if duration.unit == "day" else "julianday"
        x, b, now = f"{fn}({s})", f"{fn}({bound})", f"{fn}({at})"
        check = {"within_last": f"{x} BETWEEN {b} AND {now}", "within_next": f"{x} BETWEEN {now} AND {b}",
                 "before_last": f"{x} <= {b}", "after_next": f"{x} >= {b}"}[op]
        return f"(typeof({s}) = 'text' AND {check})"

    # -- scalars ----------------------------------------------------------------------------------------------
    def scalar(self, node: Any, scope: _Scope) -> _Val:
        if isinstance(node, Literal):
            return self.literal(node)
        if isinstance(node, TraitRef):
            path = _json_path(node, (), node.path[1:])
            key = self.param(node.key)
            return _TraitVal(node, scope, key, path if path != "$" else None, self.param(path), self.next())
        if isinstance(node, (PropertyRef, ContextRef)):
            return self.event_field(node, scope)
        if isinstance(node, Aggregation):
            return self.aggregation(node, scope)
        raise _error(node, f"{self.query.source(node) or type(node).__name__} is not a value")

    def literal(self, node: Literal) -> _Val:
        value = node.value
        if isinstance(value, bool):
            bound = "true" if value else "false"
        elif isinstance(value, datetime):
            bound = iso(value.astimezone(timezone.utc))
        elif isinstance(value, date):
            bound = value.isoformat()
        else:
            bound = value
        return _Val(self.param(bound), "lit", value, node)

    def event_field(self, node: PropertyRef | ContextRef, scope: _Scope) -> _Val:
        if not scope.events:
            raise _error(node, f"{self.query.source(node)} reads an event: only valid inside where() or a reducer")
        if isinstance(node, PropertyRef) and node.parent:
            if len(scope.events) < 2:
                raise _error(node, f"{self.query.source(node)} needs a parent event (a funnel)")
            alias, stream = scope.events[-2]
        else:
            alias, stream = scope.events[-1]
        j, path = self.field(node, alias, stream)
        if path is None:
            return _Val(j, "json", node=node)
        m = f"{alias}.message"
        # json_type and json_extract of the same message share one parse; `->` then json_extract would not
        comparable = (f"(CASE json_type({m}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
                      f" ELSE json_extract({m}, {path}) END)")
        return _EventVal(j, "json", node=node, comparable=comparable, raw=f"({m} ->> {path})")

    def field_json(self, node: PropertyRef | ContextRef, alias: str, stream: EventStream) -> str:
        return self.field(node, alias, stream)[0]

    def field(self, node: PropertyRef | ContextRef, alias: str, stream: EventStream) -> tuple[str, str | None]:
        """(JSON text of the field, its path parameter -- None when it is not one plain path)."""
        if isinstance(node, ContextRef):
            path = self.param(_json_path(node, ('context',), node.path))
            return f"({alias}.message -> {path})", path
        path = self.param(_json_path(node, ('properties',), node.path))
        j = f"({alias}.message -> {path})"
        if len(node.path) == 1 and node.path[0] in _PAGE_NAMES.get(stream.name, ()):
            # a page/screen call's name is a field of the call, shown as page_name/screen_name in the builder
            # (reference segment-api.md §2.3); analytics.js also copies it into properties.name.
            return f"coalesce({j}, ({alias}.message -> '$.name'))", None
        return j, path

    # -- streams ----------------------------------------------------------------------------------------------
    def stream_conditions(self, stream: EventStream, alias: str, scope: _Scope,
                          profile_row: str | None = None) -> list[str]:
        """`profile_row`: the engage_event_profiles alias of a per-profile read, whose name and timestamp columns
        (equal to the event's) let its (profile_id, name, timestamp) index do the name and window filtering."""
        if stream.source != "event":
            raise _error(stream, f"{stream.source}('{stream.name}'): entity() belongs to Linked Audiences, which "
                                 f"this emulator does not support")
        if profile_row:
            conds = [f"{profile_row}.name = {self.param(stream.name)}"]
        else:
            conds = [f"{EVENT_NAME_SQL.format(e=alias)} = {self.param(stream.name)}"]
        at = profile_row or alias
        if self.since:
            # only when asked: without it a count reads nothing but the (name, timestamp) index
            # received at or after :since; at that very instant (a manual clock standing still), only after the
            # event seq :since_seq (the last event a definition created then had seen; -1: every one)
            conds.append(f"({alias}.received_at > :since OR ({alias}.received_at = :since AND {alias}.seq > :since_seq))")
        window = stream.window
        if isinstance(window, Within):
            if window.parent:
                if not scope.events:
                    raise _error(window, "within(parent: ...) needs a parent event (a funnel)")
                parent = scope.events[-1][0]
                seconds = self.param(f"+{window.duration.seconds} seconds")
                # funnel: strictly after the parent event, and no later than the duration after it
                conds.append(f"({alias}.timestamp > {parent}.timestamp OR ({alias}.timestamp = {parent}.timestamp"
                             f" AND {alias}.seq > {parent}.seq))")
                conds.append(f"{alias}.timestamp <= strftime('%Y-%m-%dT%H:%M:%fZ', {parent}.timestamp, {seconds})")
            else:
                conds.append(f"{at}.timestamp >= {self.at_minus(window.duration)}")
        elif isinstance(window, Between):
            conds.append(f"{at}.timestamp BETWEEN {self.at_minus(window.end)} AND {self.at_minus(window.start)}")
        elif isinstance(window, ExpiresAfter):
            conds.extend(self.session(stream, alias, scope, window.duration))
        elif window is not None:
            raise _unsupported(window, type(window).__name__)
        if stream.exclude_sources:
            listed = ", ".join(self.param(s) for s in stream.exclude_sources)
            conds.append(f"{alias}.source NOT IN ({listed})")
        if stream.where is not None:
            inner = _Scope(f"ep{alias[1:]}.profile_id", scope.events + ((alias, stream),), top=False)
            conds.append(self.boolean(stream.where, inner))
        return conds

    def session(self, stream: EventStream, alias: str, scope: _Scope, duration: Duration) -> list[str]:
        """expires_after(d): only the current session counts -- the run of matching events with less than `d`
        between one and the next, ending with the latest -- and only while the latest is less than `d` old
        ("the value resets after duration without a matching event"; docs: session windows, computed-traits.md).
        """
        plain = replace(stream, window=None)
        profile = f"ep{alias[1:]}.profile_id"

        def rows(k: int, extra: str = "") -> str:
            e, ep = f"e{k}", f"ep{k}"
            conds = [f"{ep}.profile_id = {profile}"] + self.stream_conditions(plain, e, scope)
            return (f"FROM engage_event_profiles {ep} CROSS JOIN segment_events {e} ON {e}.seq = {ep}.seq"
                    f" WHERE {' AND '.join(conds)}{extra}")

        last, y, z = self.next(), self.next(), self.next()
        seconds = self.param(f"-{duration.seconds} seconds")
        starts = (f" AND NOT EXISTS (SELECT 1 {rows(z)} AND e{z}.timestamp < e{y}.timestamp"
                  f" AND e{z}.timestamp > strftime('%Y-%m-%dT%H:%M:%fZ', e{y}.timestamp, {seconds}))")
        return [f"(SELECT max(e{last}.timestamp) {rows(last)}) > {self.at_minus(duration)}",
                f"{alias}.timestamp >= (SELECT max(e{y}.timestamp) {rows(y, starts)})"]

    def reducer(self, agg: Aggregation, alias: str, stream: EventStream) -> tuple[str, str, str | None]:
        """(aggregate SQL over the stream's rows, kind 'num'|'json', non-null JSON of the argument or None)."""
        fn = agg.function
        if fn == "count":
            return "count(*)", "num", None
        arg = agg.argument
        if arg is None:
            raise _error(agg, f"{fn}() needs property('...')")
        j = self.field_json(arg, alias, stream)
        if fn in ("sum", "avg") or (fn in ("min", "max") and (agg.as_type or "number") == "number"):
            # docs: aggregations use "only ... event properties that have a numeric value"
            raw = f"CASE WHEN json_type({j}) IN {_NUMERIC} THEN json_extract({j}, '$') END"
            return f"{fn}({raw})", "num", j
        if fn in ("min", "max"):  # as string: lexicographic over every scalar value
            raw = f"CASE WHEN json_type({j}) NOT IN ('null','object','array') THEN CAST({_cmp(j)} AS TEXT) END"
            return f"json_quote({fn}({raw}))", "json", j
        if fn in ("first", "last"):
            # the value of the earliest / latest event (timestamp, then arrival) that has one
            key = f"{alias}.timestamp || printf('%015d', {alias}.seq) || {j}"
            pick = "min" if fn == "first" else "max"
            return f"substr({pick}(CASE WHEN coalesce({j}, 'null') <> 'null' THEN {key} END), 40)", "json", j
        if fn == "unique":
            return f"('[' || group_concat(DISTINCT NULLIF({j}, 'null')) || ']')", "json", j
        if fn == "unique_count":
            return f"count(DISTINCT NULLIF({j}, 'null'))", "num", j
        raise _unsupported(agg, f"the reducer {fn}()")

    def aggregation(self, agg: Aggregation, scope: _Scope, cap: int | None = None) -> _Val:
        """`cap`: a count compared with a number only needs counting up to it (see `_count_cap`)."""
        stream = agg.stream
        k = self.next()
        e, ep = f"e{k}", f"ep{k}"
        if agg.function == "mode" and agg.as_type == "array":
            raise _unsupported(agg, "mode(... as array)")
        if scope.top and not self.realtime:
            return self.stream_cte(agg, scope, k)
        conds = [f"{ep}.profile_id = {scope.profile}"] + self.stream_conditions(stream, e, scope, profile_row=ep)
        if agg.function == "count" and _index_only(stream, self.since):
            source = f"engage_event_profiles {ep}"
        else:
            source = f"engage_event_profiles {ep} CROSS JOIN segment_events {e} ON {e}.seq = {ep}.seq"
        where = " AND ".join(conds)
        if agg.function == "mode":
            j = self.field_json(agg.argument, e, stream)
            freq = self.param(agg.min_frequency or 1)
            inner = (f"SELECT {j} AS j, count(*) AS n FROM {source} WHERE {where} AND coalesce({j}, 'null') <> 'null'"
                     f" GROUP BY 1")
            tail = f"FROM ({inner}) WHERE n >= {freq} ORDER BY n DESC, CAST({_cmp('j')} AS TEXT) LIMIT 1"
            return _CteVal(f"(SELECT j {tail})", "json", node=agg, comparable=f"(SELECT {_cmp('j')} {tail})")
        if cap is not None and agg.function == "count":
            # stop reading the profile's events at the first `cap` matches
            return _Val(f"(SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT {int(cap)}))", "num",
                        node=agg)
        expr, kind, _ = self.reducer(agg, e, stream)
        if kind == "json":
            # the comparable form computed inside the sub-query: it runs once, not once per use of its value
            return _CteVal(f"(SELECT {expr} FROM {source} WHERE {where})", kind, node=agg,
                           comparable=f"(SELECT {_cmp(expr)} FROM {source} WHERE {where})")
        return _Val(f"(SELECT {expr} FROM {source} WHERE {where})", kind, node=agg)

    def stream_cte(self, agg: Aggregation, scope: _Scope, k: int) -> _Val:
        """A top-level stream in batch: a grouped CTE S<k>(pid, v, c), read by event name, joined to P."""
        stream = agg.stream
        e, ep = f"e{k}", f"ep{k}"
        conds = self.stream_conditions(stream, e, scope)
        source = f"segment_events {e} CROSS JOIN engage_event_profiles {ep} ON {ep}.seq = {e}.seq"
        where = " AND ".join(conds)
        name = f"S{k}"
        if agg.function == "mode":
            j = self.field_json(agg.argument, e, stream)
            freq = self.param(agg.min_frequency or 1)
            # docs: "most frequent value"; tie -> "first alphabetical value" (computed-traits.md)
            counted = (f"SELECT {ep}.profile_id AS pid, {j} AS j, count(*) AS n FROM {source} WHERE {where}"
                       f" AND coalesce({j}, 'null') <> 'null' GROUP BY 1, 2")
            ranked = (f"SELECT pid, j, row_number() OVER (PARTITION BY pid ORDER BY n DESC,"
                      f" CAST({_cmp('j')} AS TEXT)) AS rn FROM ({counted}) WHERE n >= {freq}")
            body = f"SELECT pid, j AS v, {_cmp('j')} AS c FROM ({ranked}) WHERE rn = 1"
            kind = "json"
        else:
            expr, kind, _ = self.reducer(agg, e, stream)
            if kind == "json":
                body = (f"SELECT pid, v, {_cmp('v')} AS c FROM (SELECT {ep}.profile_id AS pid, {expr} AS v"
                        f" FROM {source} WHERE {where} GROUP BY {ep}.profile_id)")
            else:
                body = f"SELECT {ep}.profile_id AS pid, {expr} AS v, NULL AS c FROM {source} WHERE {where} GROUP BY 1"
        self.ctes.append(f"{name}(pid, v, c) AS MATERIALIZED ({body})")
        self.joins.append(f"LEFT JOIN {name} ON {name}.pid = P.pid")
        if agg.function in ("count", "unique_count"):
            return _Val(f"coalesce({name}.v, 0)", "num", node=agg)
        if kind == "json":
            return _CteVal(f"{name}.v", "json", node=agg, comparable=f"{name}.c")
        return _Val(f"{name}.v", kind, node=agg)


class _CteVal(_Val):
    def __init__(self, sql: str, kind: str, *, node: Node, comparable: str) -> None:
        super().__init__(sql, kind, node=node)
        self._comparable = comparable

    @property
    def cmp(self) -> str:
        return self._comparable


class _EventVal(_CteVal):
    """A field of the event being filtered: JSON text, its comparable value, and `raw` (->>) for string tests."""

    def __init__(self, sql: str, kind: str, *, node: Node, comparable: str, raw: str) -> None:
        super().__init__(sql, kind, node=node, comparable=comparable)
        self.raw = raw


class _TraitVal(_Val):
    """A profile trait: one primary-key lookup, returning JSON or the comparable value as asked."""

    def __init__(self, node: TraitRef, scope: _Scope, key: str, path: str | None, path_param: str, k: int) -> None:
        t = f"t{k}"
        j = f"{t}.value" if path is None else f"({t}.value -> {path_param})"
        self.lookup = f"FROM engage_traits {t} WHERE {t}.profile_id = {scope.profile} AND {t}.key = {key}"
        self.row_cmp = _cmp(j)
        super().__init__(f"(SELECT {j} {self.lookup})", "json", node=node)
        self._comparable = f"(SELECT {self.row_cmp} {self.lookup})"

    @property
    def cmp(self) -> str:
        return self._comparable


def _compile_match(query: Query) -> _Compiled | None:
    """`Evaluator.profiles_with_matching_events`: one statement over the given events, every stream's conditions."""
    streams = [n for n in iter_nodes(query.root) if isinstance(n, EventStream)]
    if not any(s.where is not None for s in streams):
        return None
    for stream in streams:
        window = stream.window
        if stream.source != "event" or isinstance(window, ExpiresAfter) or (isinstance(window, Within) and window.parent):
            return None
        if stream.where is not None and any(isinstance(n, (EventStream, Aggregation, TraitRef))
                                            for n in iter_nodes(stream.where)):
            return None
    compiler = _Compiler(query, realtime=True)
    scope = _Scope("ep0.profile_id", top=False)
    matches = " OR ".join("(" + " AND ".join(compiler.stream_conditions(s, "e0", scope, profile_row="ep0")) + ")"
                          for s in streams)
    sql = ("SELECT DISTINCT ep0.profile_id FROM json_each(:seqs) s CROSS JOIN engage_event_profiles ep0"
           f" ON ep0.seq = s.value CROSS JOIN segment_events e0 ON e0.seq = ep0.seq WHERE {matches}")
    return _Compiled(sql, compiler.static, compiler.dynamic, "match", "users", False)


def _index_only(stream: EventStream, since: bool) -> bool:
    """A count of this stream needs nothing but the profile row's name and timestamp."""
    window = stream.window
    return (stream.where is None and not stream.exclude_sources and not since
            and not isinstance(window, ExpiresAfter) and not (isinstance(window, Within) and window.parent))


def _count_cap(node: Comparison) -> int | None:
    """For `count() <op> N` with a literal N: the count capped at floor(N) + 1 compares like the full count for every
    numeric comparator (any count above N stands for all of them), so counting can stop there; `>= N` needs only
    ceil(N)."""
    arg = node.argument
    subject = node.subject
    if not (isinstance(subject, Aggregation) and subject.function == "count" and isinstance(arg, Literal)
            and arg.type == "number" and not isinstance(arg.value, bool)
            and node.operator in ("greater_than", "at_least", "less_than", "at_most", "equals", "differs")):
        return None
    if node.operator == "at_least":
        return max(math.ceil(arg.value), 0)
    return max(math.floor(arg.value) + 1, 0)


class Evaluator:
    """Computes audiences (a bool per profile) and computed traits (a JSON value or None per profile)."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self._cache: dict[tuple[int, bool, bool], tuple[Query, _Compiled]] = {}

    def compile(self, query: Query, *, realtime: bool = False, since: bool = False) -> _Compiled:
        """The statement for `query` (cached per Query object): batch or for a list of profile ids, with or
        without a `since` bound on received_at."""
        key = (id(query), realtime, since)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is query:
            return hit[1]
        compiled = _Compiler(query, realtime, since).compile()
        if len(self._cache) >= _CACHE_LIMIT:
            # Query objects re-parsed over and over would otherwise be kept alive here forever
            self._cache.clear()
        self._cache[key] = (query, compiled)
        return compiled

    def profiles_with_matching_events(self, query: Query, seqs: Sequence[int], *, at: datetime,
                                      conn: sqlite3.Connection) -> set[str] | None:
        """The profiles of the events `seqs` that belong to one of the query's event streams (name, window and
        `where()` applied to the event), or None when the query has no per-event filter (the event name says
        it all) or a filter reads more than the event itself (traits, other events)."""
        key = (id(query), "match")
        hit = self._cache.get(key)
        if hit is None or hit[0] is not query:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            hit = self._cache[key] = (query, _compile_match(query))
        compiled = hit[1]
        if compiled is None:
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        params = dict(compiled.static)
        for name, fn in compiled.dynamic:
            params[name] = fn(at)
        params["seqs"] = json.dumps(list(seqs))
        return {row[0] for row in conn.execute(compiled.sql, params)}

    def sql(self, query: Query, *, realtime: bool = False, since: bool = False) -> str:
        """The SQL a query compiles to (for debugging and the dashboard)."""
        return self.compile(query, realtime=realtime, since=since).sql

    def evaluate(self, query: Query, *, at: datetime, profile_ids: Sequence[str] | None = None,
                 since: str | None = None, since_seq: int = -1, external_id_types: Sequence[str] | None = None,
                 conn: sqlite3.Connection | None = None) -> dict[str, Any]:
        """The query's value for each live profile at sandbox time `at`.

        profile_ids=None: every live profile of the collection ('users'; 'accounts' for an ANY/ALL definition) in
        one statement; a list: only those of them that are live. `since` (ISO instant): only events received at or
        after it count (Historical Backfill off; at that instant, only those after event `since_seq`); trait data
        always counts. `external_id_types`: a profile without
        an external id of these types is not considered (audience False / trait None).
        Audiences give a bool per profile, traits the JSON value (None when there is none).
        """
        compiled = self.compile(query, realtime=profile_ids is not None, since=since is not None)
        if profile_ids is not None and not profile_ids:
            return {}
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        params = dict(compiled.static)
        for name, fn in compiled.dynamic:
            params[name] = fn(at)
        params["collection"] = compiled.collection
        if since is not None:
            # received_at is stored as iso() text: compare like with like
            params["since"] = iso(parse_instant(since))
            params["since_seq"] = since_seq
        params["types"] = None if external_id_types is None else json.dumps(list(external_id_types))
        if profile_ids is not None:
            params["ids"] = json.dumps(list(profile_ids))
        if conn is not None:
            rows = conn.execute(compiled.sql, params).fetchall()
        else:
            with self.store.lock:
                rows = self.store.conn.execute(compiled.sql, params).fetchall()
        if compiled.kind == "audience":
            # 100,000 rows in batch: build the dict in C (fromkeys/compress) rather than a Python loop
            pids = list(map(_first, rows))
            out_bool = dict.fromkeys(pids, False)
            out_bool.update(dict.fromkeys(compress(pids, map(_second, rows)), True))
            return out_bool
        out: dict[str, Any] = {}
        for pid, value in rows:
            decoded = json.loads(value) if value is not None else None
            if compiled.list_result and isinstance(decoded, list):
                # docs: a Unique List is "in alphabetical order"
                decoded.sort(key=lambda v: (not isinstance(v, str), str(v)))
            out[pid] = decoded
        return out

"""Braze segments: filter groups over custom attributes, custom events, purchases and partner cohorts
(reference/braze-api.md §7), evaluated in SQL over the profile table at the sandbox clock's time.

A definition (configuration `braze.segments`, `sandbox.braze.define_segment`, or `POST /_emulator/braze/segments`):

```yaml
name: Engaged buyers
groups:                        # filter groups; filters inside a group join with `join` (and | or)
  - join: and
    filters:
      - {custom_attribute: plan, op: equals, value: pro}
      - {custom_event: Product Viewed, op: more_than, value: 2, days: 7}   # "X times in the past Y days"
  - filters: [{purchase: any, op: spent_more_than, value: 50}]
groups_join: and               # between groups (and | or)
exclude:                       # exclusion groups, always "AND NOT"
  - filters: [{segment_cohort: dormant_shopper}]
```
`filters: [...]` (and `join`) at the top is shorthand for one group. Filters:

- `custom_attribute: <key>` with `op` (spaces or underscores, case-insensitive):
  boolean `is` (value true/false), `is_true_or_not_set`, `is_false_or_not_set`; number `exactly` ("Exactly 0"
  includes users without the attribute), `does_not_equal`, `more_than`, `less_than` (includes users without it);
  string `equals` (case-sensitive), `does_not_equal` (case-insensitive), `matches_regex` (case-insensitive),
  `does_not_match_regex` (needs a value), `is_any_of`, `is_none_of`, `contains_any_of`, `does_not_contain_any_of`;
  array `includes_value`, `does_not_include_value`, `includes_any_of`, `includes_none_of`, `matches_regex`,
  `has_a_value`, `is_empty`, `values_contain_any_of`, `values_do_not_contain_any_of`, `is_all_of`,
  `is_not_all_of`; time `before`, `after` (an instant), `more_than_days_ago`, `less_than_days_ago`,
  `in_more_than_days`, `in_less_than_days` (a number of days; 1 day = 24 h from the evaluation time); any type
  `is_blank`, `is_not_blank`. Negative operators match users without the attribute, as Braze warns.
- `custom_event: <name>`: `more_than`, `less_than`, `exactly` N times (lifetime; with `days: Y`, Y in 1, 3, 7, 14,
  21, 30 and N at most 50, within the past Y days), `last_after`, `last_before` (an instant),
  `last_more_than_days_ago`, `last_less_than_days_ago`.
- `purchase: <product id> | any`: the same operators over purchases, plus `spent_more_than`, `spent_less_than`,
  `spent_exactly` (total revenue).
- `segment_cohort: <cohort name or id>` ("Segment Cohorts" filter): `op: in` (default) or `not_in`.
"""
from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .values import parse_time, time_text

if TYPE_CHECKING:
    from ..sandbox import Sandbox

DAY_WINDOWS = (1, 3, 7, 14, 21, 30)
MAX_ANY_OF = 256
MAX_REGEX = 32_764
_NUM = "('integer', 'real')"
_TIME_GLOB = "????-??-??T??:??:??.???Z"

ATTRIBUTE_OPS = {
    "equals", "is", "is_true_or_not_set", "is_false_or_not_set", "does_not_equal", "more_than", "less_than",
    "matches_regex", "does_not_match_regex", "is_any_of", "is_none_of", "contains_any_of", "does_not_contain_any_of",
    "includes_value", "does_not_include_value", "includes_any_of", "includes_none_of", "has_a_value", "is_empty",
    "values_contain_any_of", "values_do_not_contain_any_of", "is_all_of", "is_not_all_of", "before", "after",
    "more_than_days_ago", "less_than_days_ago", "in_more_than_days", "in_less_than_days", "is_blank",
    "is_not_blank",
}
HISTORY_OPS = {"more_than", "less_than", "exactly", "last_after", "last_before", "last_more_than_days_ago",
               "last_less_than_days_ago"}
PURCHASE_OPS = HISTORY_OPS | {"spent_more_than", "spent_less_than", "spent_exactly"}
_OP_ALIASES = {
    "exactly": "equals", "equal": "equals", "doesnt_equal": "does_not_equal", "not_equal": "does_not_equal",
    "greater_than": "more_than", "doesnt_match_regex": "does_not_match_regex", "doesnt_contain_any_of":
    "does_not_contain_any_of", "doesnt_include_value": "does_not_include_value", "values_dont_contain_any_of":
    "values_do_not_contain_any_of", "isnt_all_of": "is_not_all_of", "blank": "is_blank", "exists": "is_not_blank",
    "not_blank": "is_not_blank", "includes_all_of": "is_all_of", "is_true": "is", "is_false": "is",
}


class SegmentDefinitionError(ValueError):
    pass


def _op_name(op: Any, where: str) -> str:
    if not isinstance(op, str) or not op.strip():
        raise SegmentDefinitionError(f"{where}: 'op' must be an operator name")
    return re.sub(r"[\s\-]+", "_", op.strip().lower()).replace("'", "")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SegmentDefinitionError(f"{where}: 'value' must be a number")
    return value


def _instant(value: Any, where: str) -> str:
    if isinstance(value, datetime):
        return time_text(value)
    parsed = parse_time(value) if isinstance(value, str) else None
    if parsed is None:
        raise SegmentDefinitionError(f"{where}: 'value' must be a date or ISO-8601 instant")
    return time_text(parsed)


def _values(value: Any, where: str) -> list:
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_ANY_OF or not all(isinstance(v, (str, int, float)) for v in values):
        raise SegmentDefinitionError(f"{where}: 'value' must be a value or a list of 1 to {MAX_ANY_OF} values")
    return values


def _regex(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_REGEX:
        raise SegmentDefinitionError(f"{where}: 'value' must be a regular expression")
    try:
        re.compile(value)
    except re.error as exc:
        raise SegmentDefinitionError(f"{where}: invalid regular expression: {exc}") from None
    return value


def _normalize_filter(raw: Any, where: str) -> dict:
    if not isinstance(raw, dict):
        raise SegmentDefinitionError(f"{where}: a filter must be a mapping")
    subjects = [k for k in ("custom_attribute", "custom_event", "purchase", "segment_cohort") if k in raw]
    if len(subjects) != 1:
        raise SegmentDefinitionError(f"{where}: a filter needs exactly one of custom_attribute, custom_event, "
                                     "purchase or segment_cohort")
    subject = subjects[0]
    allowed = {subject, "op", "value", "days"}
    extra = set(raw) - allowed
    if extra:
        raise SegmentDefinitionError(f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
    name = raw[subject]
    if not isinstance(name, str) or not name:
        raise SegmentDefinitionError(f"{where}: '{subject}' must be a non-empty string")
    if subject == "segment_cohort":
        op = _op_name(raw.get("op", "in"), where)
        if op not in ("in", "not_in", "includes", "excludes"):
            raise SegmentDefinitionError(f"{where}: segment_cohort op must be 'in' or 'not_in'")
        return {"kind": "cohort", "name": name, "op": "in" if op in ("in", "includes") else "not_in"}
    op = _op_name(raw.get("op"), where)
    value = raw.get("value")
    if subject == "custom_attribute":
        if '"' in name:
            raise SegmentDefinitionError(f"{where}: a custom attribute name cannot contain '\"'")
        if op in ("is_true", "is_false"):
            value = op == "is_true"
        op = _OP_ALIASES.get(op, op)
        if op not in ATTRIBUTE_OPS:
            raise SegmentDefinitionError(f"{where}: unknown custom attribute operator {raw.get('op')!r} (known: "
                                         f"{', '.join(sorted(ATTRIBUTE_OPS))})")
        if "days" in raw:
            raise SegmentDefinitionError(f"{where}: 'days' is for custom_event and purchase filters")
        return {"kind": "attribute", "name": name, "op": op, "value": _attribute_value(op, value, where)}
    kind = "event" if subject == "custom_event" else "purchase"
    op = {"greater_than": "more_than", "equals": "exactly"}.get(op, op)
    ops = HISTORY_OPS if kind == "event" else PURCHASE_OPS
    if op not in ops:
        raise SegmentDefinitionError(f"{where}: unknown {subject} operator {raw.get('op')!r} (known: "
                                     f"{', '.join(sorted(ops))})")
    days = raw.get("days")
    if days is not None:
        if op not in ("more_than", "less_than", "exactly") or days not in DAY_WINDOWS or isinstance(days, bool):
            raise SegmentDefinitionError(f"{where}: 'days' must be one of {DAY_WINDOWS} with more_than, less_than "
                                         "or exactly")
        if _number(value, where) > 50:
            raise SegmentDefinitionError(f"{where}: 'X times in Y days' counts at most 50")
    if op in ("last_after", "last_before"):
        value = _instant(value, where)
    else:
        value = _number(value, where)
    return {"kind": kind, "name": name, "op": op, "value": value, "days": days}


def _attribute_value(op: str, value: Any, where: str) -> Any:
    if op in ("is_blank", "is_not_blank", "has_a_value", "is_empty", "is_true_or_not_set", "is_false_or_not_set"):
        return None
    if op == "is":
        if not isinstance(value, bool):
            raise SegmentDefinitionError(f"{where}: 'is' needs value true or false")
        return value
    if op in ("equals", "does_not_equal"):
        if not isinstance(value, (str, bool, int, float)):
            raise SegmentDefinitionError(f"{where}: '{op}' needs a string, number or boolean value")
        return value
    if op in ("more_than", "less_than"):
        return _number(value, where)
    if op in ("matches_regex", "does_not_match_regex"):
        return _regex(value, where)
    if op in ("before", "after"):
        return _instant(value, where)
    if op in ("more_than_days_ago", "less_than_days_ago", "in_more_than_days", "in_less_than_days"):
        return _number(value, where)
    if op in ("contains_any_of", "does_not_contain_any_of", "values_contain_any_of", "values_do_not_contain_any_of"):
        values = _values(value, where)
        if not all(isinstance(v, str) for v in values):
            raise SegmentDefinitionError(f"{where}: '{op}' needs strings")
        return values
    return _values(value, where)


def _normalize_group(raw: Any, where: str) -> dict:
    if not isinstance(raw, dict):
        raise SegmentDefinitionError(f"{where}: a group must be a mapping with 'filters'")
    extra = set(raw) - {"filters", "join"}
    if extra:
        raise SegmentDefinitionError(f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
    join = _join(raw.get("join", "and"), where)
    filters = raw.get("filters")
    if not isinstance(filters, list) or not filters:
        raise SegmentDefinitionError(f"{where}: 'filters' must be a non-empty list")
    return {"join": join, "filters": [_normalize_filter(f, f"{where}.filters[{i}]") for i, f in enumerate(filters)]}


def _join(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.lower() not in ("and", "or"):
        raise SegmentDefinitionError(f"{where}: join must be 'and' or 'or'")
    return value.lower()


def normalize(definition: Any) -> dict:
    """A definition checked and put in its one full form; SegmentDefinitionError names what is wrong."""
    if not isinstance(definition, dict):
        raise SegmentDefinitionError("a segment must be a mapping with a 'name'")
    name = definition.get("name")
    where = f"segment {name!r}" if isinstance(name, str) else "segment"
    if not isinstance(name, str) or not name.strip():
        raise SegmentDefinitionError(f"{where}: 'name' must be a non-empty string")
    extra = set(definition) - {"name", "filters", "join", "groups", "groups_join", "exclude", "description"}
    if extra:
        raise SegmentDefinitionError(f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
    if "filters" in definition and "groups" in definition:
        raise SegmentDefinitionError(f"{where}: give 'filters' (one group) or 'groups', not both")
    if "filters" in definition:
        groups_raw = [{"filters": definition["filters"], "join": definition.get("join", "and")}]
    else:
        if "join" in definition:
            raise SegmentDefinitionError(f"{where}: 'join' goes with 'filters'; between groups use 'groups_join'")
        groups_raw = definition.get("groups", [])
        if not isinstance(groups_raw, list):
            raise SegmentDefinitionError(f"{where}: 'groups' must be a list")
    exclude_raw = definition.get("exclude", [])
    if not isinstance(exclude_raw, list):
        raise SegmentDefinitionError(f"{where}: 'exclude' must be a list of groups")
    return {
        "name": name,
        "groups": [_normalize_group(g, f"{where}.groups[{i}]") for i, g in enumerate(groups_raw)],
        "groups_join": _join(definition.get("groups_join", "and"), where),
        "exclude": [_normalize_group(g, f"{where}.exclude[{i}]") for i, g in enumerate(exclude_raw)],
    }


def check_segments(value: Any) -> str | None:
    """Config check for `braze.segments`."""
    if not isinstance(value, list):
        return "a list of segments"
    names: set[str] = set()
    for index, definition in enumerate(value):
        try:
            normal = normalize(definition)
        except SegmentDefinitionError as exc:
            return f"a valid segment at [{index}]: {exc}"
        if normal["name"] in names:
            return f"segment names to be unique ({normal['name']!r} appears twice)"
        names.add(normal["name"])
    return None


# --- SQL -----------------------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


def _regexp(pattern: str, value: Any) -> int:
    if value is None:
        return 0
    return 1 if _compiled(pattern).search(str(value)) else 0


def _not(sql: str) -> str:
    """Negation where a missing attribute (SQL NULL) counts as "does not match", so the negation matches it."""
    return f"NOT COALESCE({sql}, 0)"


class _Compiler:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.params: dict[str, Any] = {}  # named: an operator may leave some of the fragments it built unused

    def p(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def days(self, n: float, sign: int = -1) -> str:
        return self.p(time_text(self.now + sign * timedelta(days=n)))

    def definition(self, d: dict) -> str:
        parts = [self.group(g) for g in d["groups"]]
        sql = f" {d['groups_join'].upper()} ".join(parts) if parts else "1"
        for group in d["exclude"]:
            sql = f"({sql}) AND {_not(self.group(group))}"
        return sql

    def group(self, g: dict) -> str:
        return "(" + f" {g['join'].upper()} ".join(self.filter(f) for f in g["filters"]) + ")"

    def filter(self, f: dict) -> str:
        if f["kind"] == "attribute":
            return "(" + self.attribute(f) + ")"
        if f["kind"] == "cohort":
            exists = ("EXISTS (SELECT 1 FROM braze_cohort_members m JOIN braze_cohorts c USING (cohort_id) "
                      f"WHERE m.braze_id = u.braze_id AND (c.cohort_id = {self.p(f['name'])} "
                      f"OR c.name = {self.p(f['name'])}))")
            return exists if f["op"] == "in" else _not(exists)
        return "(" + self.history(f) + ")"

    def history(self, f: dict) -> str:
        op, value = f["op"], f["value"]
        table, column = ("braze_user_events", "name") if f["kind"] == "event" else ("braze_user_purchases",
                                                                                     "product_id")
        any_product = f["kind"] == "purchase" and f["name"].lower() == "any"
        match = "" if any_product else f" AND {column} = {self.p(f['name'])}"
        if op.startswith("spent_"):
            if any_product:
                amount = "u.total_revenue"
            else:
                amount = f"COALESCE((SELECT sum(revenue) FROM {table} WHERE braze_id = u.braze_id{match}), 0)"
            cmp = {"spent_more_than": ">", "spent_less_than": "<", "spent_exactly": "="}[op]
            return f"{amount} {cmp} {self.p(value)}"
        if op in ("more_than", "less_than", "exactly"):
            cmp = {"more_than": ">", "less_than": "<", "exactly": "="}[op]
            if f["days"]:
                kind = self.p(f["kind"])
                name_match = "" if any_product else f" AND name = {self.p(f['name'])}"
                count = (f"COALESCE((SELECT sum(quantity) FROM braze_occurrences WHERE braze_id = u.braze_id "
                         f"AND kind = {kind}{name_match} AND time > {self.days(f['days'])} "
                         f"AND time <= {self.days(0)}), 0)")
            else:
                count = f"COALESCE((SELECT sum(count) FROM {table} WHERE braze_id = u.braze_id{match}), 0)"
            return f"{count} {cmp} {self.p(value)}"
        last = f"(SELECT max(last) FROM {table} WHERE braze_id = u.braze_id{match})"
        if op == "last_after":
            return f"{last} > {self.p(value)}"
        if op == "last_before":
            return f"{last} < {self.p(value)}"
        if op == "last_more_than_days_ago":
            return f"{last} < {self.days(value)}"
        return f"{last} >= {self.days(value)}"  # last_less_than_days_ago

    def attribute(self, f: dict) -> str:
        op, value = f["op"], f["value"]
        path = '$."' + f["name"] + '"'
        v = f"json_extract(u.custom, {self.p(path)})"
        t = f"json_type(u.custom, {self.p(path)})"
        each = f"json_each(u.custom, {self.p(path)})"
        missing = f"({t} IS NULL OR {t} = 'null')"
        blank = (f"({missing} OR ({t} = 'text' AND {v} = '') OR ({t} = 'array' AND json_array_length(u.custom, "
                 f"{self.p(path)}) = 0))")
        if op == "is_blank":
            return blank
        if op == "is_not_blank":
            return _not(blank)
        if op == "is":
            return f"{t} = {self.p('true' if value else 'false')}"
        if op in ("is_true_or_not_set", "is_false_or_not_set"):
            return f"({t} = {self.p('true' if op == 'is_true_or_not_set' else 'false')} OR {missing})"
        if op in ("equals", "does_not_equal"):
            if isinstance(value, bool):
                sql = f"{t} = {self.p('true' if value else 'false')}"
                return sql if op == "equals" else _not(sql)
            if isinstance(value, (int, float)):
                sql = f"({t} IN {_NUM} AND {v} = {self.p(value)})"
                if op == "equals":
                    return f"({sql} OR {missing})" if value == 0 else sql  # "Exactly 0" includes NULL
                return _not(sql)
            if op == "equals":
                return f"({t} = 'text' AND {v} = {self.p(value)})"
            return _not(f"({t} = 'text' AND lower({v}) = lower({self.p(value)}))")  # not case sensitive
        if op == "more_than":
            return f"({t} IN {_NUM} AND {v} > {self.p(value)})"
        if op == "less_than":
            return f"(({t} IN {_NUM} AND {v} < {self.p(value)}) OR {missing})"  # "Less Than" includes NULL
        if op in ("matches_regex", "does_not_match_regex"):
            pattern = self.p(value)
            any_element = f"EXISTS (SELECT 1 FROM {each} WHERE braze_regexp({pattern}, value))"
            matches = (f"(CASE WHEN {t} = 'array' THEN {any_element} WHEN {t} IN ('text', 'integer', 'real') "
                       f"THEN braze_regexp({pattern}, {v}) ELSE 0 END)")
            return matches if op == "matches_regex" else f"({_not(blank)} AND {_not(matches)})"
        if op in ("is_any_of", "is_none_of"):
            sql = f"({t} IN ('text', 'integer', 'real') AND {v} IN ({', '.join(self.p(x) for x in value)}))"
            return sql if op == "is_any_of" else _not(sql)
        if op in ("contains_any_of", "does_not_contain_any_of"):
            sql = "(" + " OR ".join(f"({t} = 'text' AND instr({v}, {self.p(x)}) > 0)" for x in value) + ")"
            return sql if op == "contains_any_of" else _not(sql)
        if op in ("includes_value", "includes_any_of", "does_not_include_value", "includes_none_of"):
            # JSON's true is 1 to SQLite: the element's type keeps true and 1 apart, as Braze's arrays do
            members = " OR ".join(f"(type IN {_array_element_types(x)} AND value = {self.p(x)})" for x in value)
            sql = f"({t} = 'array' AND EXISTS (SELECT 1 FROM {each} WHERE {members}))"
            return sql if op in ("includes_value", "includes_any_of") else _not(sql)
        if op in ("values_contain_any_of", "values_do_not_contain_any_of"):
            cond = " OR ".join(f"instr(value, {self.p(x)}) > 0" for x in value)
            sql = f"({t} = 'array' AND EXISTS (SELECT 1 FROM {each} WHERE {cond}))"
            return sql if op == "values_contain_any_of" else _not(sql)
        if op in ("is_all_of", "is_not_all_of"):
            sql = "(" + " AND ".join(f"({t} = 'array' AND EXISTS (SELECT 1 FROM {each} WHERE type IN "
                                     f"{_array_element_types(x)} AND value = {self.p(x)}))" for x in value) + ")"
            return sql if op == "is_all_of" else _not(sql)
        if op == "has_a_value":
            return f"({t} = 'array' AND json_array_length(u.custom, {self.p(path)}) > 0)"
        if op == "is_empty":
            return _not(f"({t} = 'array' AND json_array_length(u.custom, {self.p(path)}) > 0)")
        is_time = f"({t} = 'text' AND {v} GLOB '{_TIME_GLOB}')"
        if op == "before":
            return f"({is_time} AND {v} < {self.p(value)})"
        if op == "after":
            return f"({is_time} AND {v} > {self.p(value)})"
        if op == "more_than_days_ago":
            return f"({is_time} AND {v} < {self.days(value)})"
        if op == "less_than_days_ago":
            return f"({is_time} AND {v} >= {self.days(value)} AND {v} <= {self.days(0)})"
        if op == "in_more_than_days":
            return f"({is_time} AND {v} > {self.days(value, +1)})"
        if op == "in_less_than_days":
            return f"({is_time} AND {v} >= {self.days(0)} AND {v} < {self.days(value, +1)})"
        raise AssertionError(op)


def compile_definition(definition: dict, now: datetime) -> tuple[str, dict]:
    """The WHERE clause (over `braze_users u`) and its parameters for a normalized definition."""
    compiler = _Compiler(now)
    return compiler.definition(definition), compiler.params


class Segments:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        sandbox.store.conn.create_function("braze_regexp", 2, _regexp, deterministic=True)

    @property
    def _configured(self) -> list:
        return self.sandbox.config["braze"].setdefault("segments", [])

    def list(self) -> list[dict]:
        return copy.deepcopy(self._configured)

    def get(self, name: str) -> dict | None:
        for definition in self._configured:
            if definition.get("name") == name:
                return copy.deepcopy(definition)
        return None

    def define(self, definition: dict) -> dict:
        """Add or replace (by name); definitions live in the configuration, so reset keeps them."""
        normalize(definition)
        definition = copy.deepcopy(definition)
        segments = self._configured
        for index, existing in enumerate(segments):
            if existing.get("name") == definition["name"]:
                segments[index] = definition
                break
        else:
            segments.append(definition)
        return copy.deepcopy(definition)

    def remove(self, name: str) -> bool:
        segments = self._configured
        kept = [d for d in segments if d.get("name") != name]
        removed = len(kept) < len(segments)
        segments[:] = kept
        return removed

    def members(self, name: str | None = None, *, definition: dict | None = None) -> list[dict]:
        """Members (`braze_id`, `external_id`) at the sandbox clock's time, ordered by external id."""
        if definition is None:
            if name is None:
                raise ValueError("give a segment name or a definition")
            definition = self.get(name)
            if definition is None:
                raise KeyError(f"no segment named {name!r}")
        where, params = compile_definition(normalize(definition), self.sandbox.clock.now())
        return self.sandbox.store.query(
            f"SELECT u.braze_id, u.external_id FROM braze_users u WHERE {where} "
            "ORDER BY u.external_id IS NULL, u.external_id, u.braze_id", params)

    def size(self, name: str) -> int:
        return len(self.members(name))


def _array_element_types(value: Any) -> str:
    """The json_each types an array element equal to `value` may have."""
    if isinstance(value, bool):
        return "('true', 'false')"
    if isinstance(value, (int, float)):
        return "('integer', 'real')"
    return "('text')"

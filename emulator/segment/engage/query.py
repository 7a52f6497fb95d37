"""The Segment Engage query language: parse audience and computed-trait definitions into a typed AST.

Facts: reference/segment-query-language.md §2 (docs `src/api/public-api/query-language.md`); decisions: SPEC.md §2
"Engage". The grammar is `grammar.lark` (LALR(1)). `parse()` checks syntax and structure; `check_definition()` also
checks that an audience yields a boolean and a computed trait a scalar, and refuses what the emulator does not support.

The AST is made of small frozen dataclasses. Every node carries `pos` (line, column and offsets into the query text;
excluded from equality) so an evaluator can point at the part of the query it is complaining about. Shape of a
definition, from the root down:

    And / Or / Not / AnyUser / AllUsers          junctions (boolean)
    Comparison(subject, operator, argument)      a comparator applied to a scalar (boolean)
    Aggregation(stream, function, argument, ...) a reducer over an event stream (scalar or list)
    EventStream(source, name, where, window, exclude_sources)
    TraitRef / PropertyRef / ContextRef / Literal  scalar extractors and constants
    Within / Between / ExpiresAfter              time windows of a stream; Duration from durations.py
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Iterator, NamedTuple, Union

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, UnexpectedToken, VisitError

from .durations import UNIT_WORDS, Duration

__all__ = [
    "CYCLE_MESSAGE", "MAX_PRIMARY_EXPRESSIONS", "AllUsers", "Aggregation", "And", "AnyUser", "Between", "Comparison",
    "ContextRef", "Duration", "EventStream", "ExpiresAfter", "Literal", "Not", "Or", "PropertyRef", "Query",
    "QueryError", "Span", "TraitRef", "Within", "check_definition", "detect_cycle", "iter_nodes", "parse",
]

#: docs, audiences FAQ: the error Segment gives when audiences reference each other in a loop.
CYCLE_MESSAGE = "The audience would create a cycle by referencing another audience"
#: docs: "Each definition allows a maximum of 50 primary expressions."
MAX_PRIMARY_EXPRESSIONS = 50

KINDS = ("audience", "trait")


class QueryError(ValueError):
    """An invalid query: where it went wrong (1-based `line`, `column`), what would have been valid there
    (`expected`, readable phrases) and `detail`, the message without the position prefix."""

    def __init__(self, line: int, column: int, message: str, expected: list[str] | None = None) -> None:
        self.line = line
        self.column = column
        self.expected = list(expected or [])
        self.detail = message
        super().__init__(f"line {line}, column {column}: {message}")


# ---------------------------------------------------------------------------------------------------------------
# AST
# ---------------------------------------------------------------------------------------------------------------

class Span(NamedTuple):
    """Where a node was written: 1-based line and column of its start; `start`/`end` are offsets into the text."""

    line: int
    column: int
    start: int
    end: int


@dataclass(frozen=True)
class Node:
    pos: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Literal(Node):
    """A constant: `'text'`, `100`, `.20`, `true`, `2023-12-07`, `2023-12-07T18:50:00Z`, or `literal(...)` of one.

    `type` is "string", "number", "boolean", "date" or "timestamp"; `value` is the Python value (str, int/float,
    bool, datetime.date, tz-aware datetime; a timestamp written without an offset is taken as UTC); `text` is the
    source spelling.
    """

    value: Union[str, int, float, bool, date, datetime]
    type: str
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class TraitRef(Node):
    """`trait('name')`: a profile trait. Also how another audience is referenced (its key used as the trait name,
    reference §2.3), so `key` (the first path segment) is what `Query.references` reports. `path` is the name split
    on unescaped dots for traversal into nested objects."""

    name: str
    path: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.path[0]


@dataclass(frozen=True)
class PropertyRef(Node):
    """`property('a.b')`: a property of the event being filtered or reduced. With `parent=True`
    (`property(parent: 'sku')`) it is a property of the enclosing event of a funnel: the event whose where()
    contains the stream this reference is filtering."""

    name: str
    path: tuple[str, ...]
    parent: bool = False


@dataclass(frozen=True)
class ContextRef(Node):
    """`context('page.url')`: a field of the event's `context` object (valid where a property is)."""

    name: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class Within(Node):
    """`within(7 days)`: only events from the last `duration` (relative to now). With `parent=True`
    (`within(parent: 5 days)`, a funnel step) the window is relative to the parent event's timestamp instead."""

    duration: Duration
    parent: bool = False


@dataclass(frozen=True)
class Between(Node):
    """`between(7 days, 10 days)`: only events from `end` ago up to `start` ago (start <= end)."""

    start: Duration
    end: Duration


@dataclass(frozen=True)
class ExpiresAfter(Node):
    """`expires_after(1 hour)`: a session window for computed traits (seconds, hours or days); the value resets
    after `duration` without a matching event."""

    duration: Duration


Window = Union[Within, Between, ExpiresAfter]


@dataclass(frozen=True)
class EventStream(Node):
    """`event('Order Completed')` (or `entity('orders')`, Linked Audiences) with its filters.

    `where` is the conjunction of every `.where(...)` (None if there is none) and is evaluated per event:
    PropertyRef/ContextRef in it read the event, TraitRef reads the profile, a nested Aggregation/EventStream is a
    condition on the profile's other events (a funnel step when it has `within(parent: ...)`).
    `window` is the one time window, `exclude_sources` the source ids dropped by `sources({exclude: ...})`.
    """

    source: str  # "event" | "entity"
    name: str
    where: "Expr | None" = None
    window: Window | None = None
    exclude_sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Aggregation(Node):
    """A reducer over a stream: `function` is one of count, sum, avg, min, max, mode, first, last, unique,
    unique_count (`unique(p).count()`). `argument` is the property/context read (None for count). `as_type` is the
    comparison type for min/max ("number" default, or "string": lexicographic) and mode ("string" default, "number",
    "array"); None for the others. `min_frequency` is mode's `d`: the least number of times the value must occur
    (1 when omitted)."""

    stream: EventStream
    function: str
    argument: "PropertyRef | ContextRef | None" = None
    as_type: str | None = None
    min_frequency: int | None = None


@dataclass(frozen=True)
class Comparison(Node):
    """`subject <comparator> argument`; sugar (`>=`) and deprecated names (`gte`) are normalised to the canonical
    operator: equals, differs, greater_than, at_least, less_than, at_most, exists, absent, contains, omits,
    starts_with, ends_with, one_of, none_of, before_date, after_date, within_last, within_next, before_last,
    after_next.

    `argument` is None for exists/absent; a tuple of values for contains/omits/one_of/none_of (both list syntaxes);
    a Duration for within_last/within_next/before_last/after_next; otherwise one value (a Literal -- a date or
    timestamp Literal for before_date/after_date, quoted or not -- or a scalar such as TraitRef or Aggregation).
    """

    subject: "Scalar"
    operator: str
    argument: "Scalar | tuple[Scalar, ...] | Duration | None" = None


@dataclass(frozen=True)
class And(Node):
    """Every operand holds (`AND`, binds tighter than OR)."""

    operands: tuple["Expr", ...]


@dataclass(frozen=True)
class Or(Node):
    """At least one operand holds (`OR`)."""

    operands: tuple["Expr", ...]


@dataclass(frozen=True)
class Not(Node):
    """The operand does not hold (`NOT`)."""

    operand: "Expr"


@dataclass(frozen=True)
class AnyUser(Node):
    """`ANY <condition>`: account-level audience; at least one user of the account satisfies the condition."""

    operand: "Expr"


@dataclass(frozen=True)
class AllUsers(Node):
    """`ALL <condition>`: account-level audience; every user of the account satisfies the condition."""

    operand: "Expr"


Scalar = Union[Literal, TraitRef, PropertyRef, ContextRef, Aggregation]
Expr = Union[And, Or, Not, AnyUser, AllUsers, Comparison, Scalar]


def iter_nodes(node: object) -> Iterator[Node]:
    """Every AST node under `node` (included), depth first, in source order."""
    if isinstance(node, tuple):
        for item in node:
            yield from iter_nodes(item)
        return
    if not isinstance(node, Node):
        return
    yield node
    if isinstance(node, (And, Or)):
        yield from iter_nodes(node.operands)
    elif isinstance(node, (Not, AnyUser, AllUsers)):
        yield from iter_nodes(node.operand)
    elif isinstance(node, Comparison):
        yield from iter_nodes(node.subject)
        yield from iter_nodes(node.argument)
    elif isinstance(node, Aggregation):
        yield from iter_nodes(node.stream)
        yield from iter_nodes(node.argument)
    elif isinstance(node, EventStream):
        yield from iter_nodes(node.where)
        yield from iter_nodes(node.window)


def result_type(node: object) -> str:
    """What a node yields: boolean, number, string, date, timestamp, list, or any (a trait/property value whose
    type is only known at evaluation)."""
    if isinstance(node, (Comparison, And, Or, Not, AnyUser, AllUsers)):
        return "boolean"
    if isinstance(node, Literal):
        return node.type
    if isinstance(node, Aggregation):
        fn = node.function
        if fn in ("count", "unique_count", "sum", "avg"):
            return "number"
        if fn in ("min", "max"):
            return node.as_type or "number"
        if fn == "mode":
            return {"number": "number", "array": "any"}.get(node.as_type or "string", "string")
        if fn == "unique":
            return "list"
        return "any"  # first / last
    return "any"


_TYPE_WORDS = {"boolean": "a condition that is true or false", "number": "a number", "string": "a string",
               "date": "a date", "timestamp": "a timestamp", "list": "a list", "any": "a value"}


def _compare_example(src: str, kind: str) -> str:
    return f"{src} >= 1" if kind == "number" else f"{src}.exists()"


@dataclass(frozen=True)
class Query:
    """A parsed definition.

    `root` is the AST; `result_type` what it yields (see `result_type()`); `is_batch` / `batch_reasons` the SPEC §2
    classification; `references` the trait/audience keys read through trait() (for cycle detection); `windows` every
    duration the query measures time with (within, between, expires_after, within_last & co.), so a clock-driven
    re-evaluation can be scheduled; `unsupported` features the emulator refuses in check_definition();
    `warnings` deprecated spellings used; `primary_expressions` the number of comparisons.
    """

    text: str
    kind: str
    root: Expr
    result_type: str
    is_batch: bool
    batch_reasons: tuple[str, ...]
    references: tuple[str, ...]
    windows: tuple[Duration, ...]
    unsupported: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    primary_expressions: int = 0

    def nodes(self) -> Iterator[Node]:
        return iter_nodes(self.root)

    @property
    def account_level(self) -> bool:
        """Uses ANY/ALL, which only make sense for an account-level (ACCOUNTS) audience."""
        return any(isinstance(node, (AnyUser, AllUsers)) for node in self.nodes())

    def source(self, node: Node) -> str:
        """The query text a node was parsed from."""
        return self.text[node.pos.start:node.pos.end] if node.pos else ""


# ---------------------------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------------------------

class _KeywordsAreWholeWords:
    """Postlexer that makes the lexer accept NAME in every state. Keywords are re-typed from NAME only when the
    whole word matches, so an unknown word is reported whole (`'counts'`), never as a keyword prefix."""

    always_accept = ("NAME",)

    def process(self, stream):
        return stream


@lru_cache(maxsize=None)
def _lark() -> Lark:
    # Built once per process; a Lark object is immutable once constructed.
    grammar = (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", postlex=_KeywordsAreWholeWords(),
                propagate_positions=True, maybe_placeholders=True)


_COMPARATORS = {
    "equals": "equals", "eq": "equals", "differs": "differs", "neq": "differs",
    "greater_than": "greater_than", "gt": "greater_than", "at_least": "at_least", "gte": "at_least",
    "less_than": "less_than", "lt": "less_than", "at_most": "at_most", "lte": "at_most",
    "exists": "exists", "is_set": "exists", "absent": "absent", "is_null": "absent",
    "contains": "contains", "contains_one": "contains", "omits": "omits",
    "starts_with": "starts_with", "ends_with": "ends_with", "one_of": "one_of", "none_of": "none_of",
    "before_date": "before_date", "after_date": "after_date",
    "within_last": "within_last", "within_next": "within_next",
    "before_last": "before_last", "after_next": "after_next",
}
_SUGAR = {"=": "equals", "==": "equals", "!=": "differs", ">": "greater_than", ">=": "at_least",
          "<": "less_than", "<=": "at_most"}


def _span(meta) -> Span | None:
    if meta is None or getattr(meta, "empty", True):
        return None
    return Span(meta.line, meta.column, meta.start_pos, meta.end_pos)


def _tok_span(tok: Token) -> Span:
    return Span(tok.line, tok.column, tok.start_pos, tok.end_pos)


def _fail(where: Span | Token | None, message: str, expected: list[str] | None = None) -> QueryError:
    if isinstance(where, Token):
        where = _tok_span(where)
    if where is None:
        return QueryError(1, 1, message, expected)
    return QueryError(where.line, where.column, message, expected)


_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}


def _unquote(tok: Token) -> str:
    body = str(tok)[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split_path(name: str) -> tuple[str, ...]:
    # docs: "The `.` character indicates traversal through nested structures. If the trait name contains a literal
    # period (`.`), it must be escaped" -- a backslash before the dot.
    parts, cur, i = [], [], 0
    while i < len(name):
        ch = name[i]
        if ch == "\\" and i + 1 < len(name) and name[i + 1] == ".":
            cur.append(".")
            i += 2
            continue
        if ch == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return tuple(parts)


def _parse_timestamp(text: str) -> datetime | date | None:
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}.*", text):
            return None
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    # A timestamp without an offset is taken as UTC (inference: the docs' `literal(2022-10-17T00:00:00)` has none).
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class _Filter:
    kind: str  # where | window | sources
    value: object
    pos: Span | None


@dataclass(frozen=True)
class _Reducer:
    function: str
    argument: object = None
    as_type: str | None = None
    min_frequency: int | None = None


@v_args(meta=True)
class _ToAst(Transformer):
    """Lark tree -> AST, with the checks that need only a node and its children."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.warnings: list[str] = []

    def _src(self, node: Node) -> str:
        return self.text[node.pos.start:node.pos.end] if node.pos else type(node).__name__

    def _need_condition(self, node: Node, junction: str) -> None:
        kind = result_type(node)
        if kind != "boolean":
            src = self._src(node)
            raise _fail(node.pos, f"{junction} needs a condition, but {src} is {_TYPE_WORDS[kind]}; compare it, "
                                  f"for example {_compare_example(src, kind)}", ["a condition such as event('...').count() >= 1"])

    # -- literals ---------------------------------------------------------------------------------------------
    def string(self, meta, children):
        (tok,) = children
        return Literal(_unquote(tok), "string", str(tok), pos=_span(meta))

    def number(self, meta, children):
        (tok,) = children
        text = str(tok)
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return Literal(value, "number", text, pos=_span(meta))

    def date(self, meta, children):
        (tok,) = children
        value = _parse_timestamp(str(tok))
        if value is None:
            raise _fail(tok, f"{tok} is not a valid date", ["a date such as 2023-12-07"])
        return Literal(value, "date", str(tok), pos=_span(meta))

    def timestamp(self, meta, children):
        (tok,) = children
        value = _parse_timestamp(str(tok))
        if value is None:
            raise _fail(tok, f"{tok} is not a valid ISO 8601 timestamp", ["a timestamp such as 2023-12-07T18:50:00Z"])
        return Literal(value, "timestamp", str(tok), pos=_span(meta))

    def true(self, meta, children):
        return Literal(True, "boolean", str(children[0]), pos=_span(meta))

    def false(self, meta, children):
        return Literal(False, "boolean", str(children[0]), pos=_span(meta))

    def literal_call(self, meta, children):
        return replace(children[1], pos=_span(meta))

    # -- scalar extractors ------------------------------------------------------------------------------------
    def _name(self, tok: Token, what: str) -> str:
        name = _unquote(tok)
        if not name.strip():
            raise _fail(tok, f"{what}() needs a name, got an empty string", [f"a {what} name"])
        return name

    def trait_ref(self, meta, children):
        name = self._name(children[1], "trait")
        return TraitRef(name, _split_path(name), pos=_span(meta))

    def property_ref(self, meta, children):
        _, parent, tok = children
        name = self._name(tok, "property")
        return PropertyRef(name, _split_path(name), parent=parent is not None, pos=_span(meta))

    def context_ref(self, meta, children):
        name = self._name(children[1], "context")
        return ContextRef(name, _split_path(name), pos=_span(meta))

    # -- streams ----------------------------------------------------------------------------------------------
    def source(self, meta, children):
        kw, tok = children
        return EventStream(str(kw).lower(), self._name(tok, str(kw).lower()), pos=_span(meta))

    def stream(self, meta, children):
        if len(children) == 1:
            return replace(children[0], pos=_span(meta))
        stream, flt = children
        if flt.kind == "where":
            where = flt.value if stream.where is None else _join(And, stream.where, flt.value)
            return replace(stream, where=where, pos=_span(meta))
        if flt.kind == "window":
            if stream.window is not None:
                raise _fail(flt.pos, f"{stream.source}('{stream.name}') already has the time window "
                                     f"{self._src(stream.window)}; use only one of within(), between() and "
                                     f"expires_after() per {stream.source}()", ["a single time window"])
            return replace(stream, window=flt.value, pos=_span(meta))
        excluded = stream.exclude_sources + tuple(s for s in flt.value if s not in stream.exclude_sources)
        return replace(stream, exclude_sources=excluded, pos=_span(meta))

    def where(self, meta, children):
        condition = children[1]
        kind = result_type(condition)
        if kind != "boolean":
            src = self._src(condition)
            raise _fail(condition.pos, f"where() needs a condition such as property('price') >= 100, but {src} "
                                       f"is {_TYPE_WORDS[kind]}", ["a condition"])
        return _Filter("where", condition, _span(meta))

    def sources(self, meta, children):
        values = children[2]
        for value in values:
            if not (isinstance(value, Literal) and value.type == "string"):
                raise _fail(value.pos, "sources({exclude: ...}) takes quoted source ids",
                            ["a quoted source id"])
        return _Filter("sources", tuple(v.value for v in values), _span(meta))

    def within(self, meta, children):
        _, parent, duration = children
        return _Filter("window", Within(duration, parent=parent is not None, pos=_span(meta)), _span(meta))

    def between(self, meta, children):
        _, start, end = children
        if start.seconds > end.seconds:
            raise _fail(_span(meta), f"between({start}, {end}): the first duration is the nearer bound and must "
                                     f"not be longer than the second, for example between({end}, {start})",
                        ["a first duration no longer than the second"])
        return _Filter("window", Between(start, end, pos=_span(meta)), _span(meta))

    def expires_after(self, meta, children):
        return _Filter("window", ExpiresAfter(children[1], pos=_span(meta)), _span(meta))

    def duration(self, meta, children):
        amount, unit = children
        if int(amount) < 1:
            raise _fail(amount, f"a duration must be at least 1, got {amount}", ["a whole number of 1 or more"])
        return Duration(int(amount), UNIT_WORDS[str(unit).lower()])

    # -- reducers ---------------------------------------------------------------------------------------------
    def count(self, meta, children):
        return _Reducer("count")

    def simple_reducer(self, meta, children):
        kw, arg = children
        return _Reducer(str(kw).lower(), arg)

    def minmax(self, meta, children):
        kw, arg, _as, as_type = children
        return _Reducer(str(kw).lower(), arg, str(as_type).lower() if as_type else "number")

    def mode(self, meta, children):
        _, arg, _as, as_type, freq = children
        if freq is not None and int(freq) < 1:
            raise _fail(freq, "mode()'s minimum frequency must be at least 1", ["a whole number of 1 or more"])
        return _Reducer("mode", arg, str(as_type).lower() if as_type else "string", int(freq) if freq else 1)

    def aggregation(self, meta, children):
        stream, red = children
        return Aggregation(stream, red.function, red.argument, red.as_type, red.min_frequency, pos=_span(meta))

    def list_agg(self, meta, children):
        stream, _, arg = children
        return Aggregation(stream, "unique", arg, pos=_span(meta))

    def unique_count(self, meta, children):
        return replace(children[0], function="unique_count", pos=_span(meta))

    # -- comparisons ------------------------------------------------------------------------------------------
    def _comparator(self, kw: Token) -> str:
        spelled = str(kw).lower()
        canonical = _COMPARATORS[spelled]
        if spelled != canonical:
            self.warnings.append(f"{spelled}() is a deprecated name of {canonical}() (renamed 2024-04-11)")
        return canonical

    def cmp_sugar(self, meta, children):
        subject, op, value = children
        return Comparison(subject, _SUGAR[str(op)], value, pos=_span(meta))

    def cmp_call(self, meta, children):
        subject, (operator, argument) = children
        return Comparison(subject, operator, argument, pos=_span(meta))

    def cmp_one(self, meta, children):
        kw, value = children
        operator = self._comparator(kw)
        if operator in ("before_date", "after_date"):
            value = self._as_timestamp(operator, value)
        return operator, value

    def _as_timestamp(self, operator: str, value):
        if isinstance(value, Literal):
            if value.type in ("date", "timestamp"):
                return value
            parsed = _parse_timestamp(value.value) if value.type == "string" else None
            if parsed is None:
                raise _fail(value.pos, f"{operator}() needs an ISO 8601 timestamp such as 2023-12-07T18:50:00Z, "
                                       f"got {value.text}", ["an ISO 8601 timestamp"])
            kind = "date" if type(parsed) is date else "timestamp"
            return Literal(parsed, kind, value.text, pos=value.pos)
        return value

    def cmp_none(self, meta, children):
        return self._comparator(children[0]), None

    def cmp_list(self, meta, children):
        kw, values = children
        return self._comparator(kw), values

    def cmp_relative(self, meta, children):
        kw, duration = children
        return self._comparator(kw), duration

    def value_list(self, meta, children):
        return tuple(children)

    bracket_list = value_list

    # -- junctions --------------------------------------------------------------------------------------------
    def or_(self, meta, children):
        left, _, right = children
        self._need_condition(left, "OR")
        self._need_condition(right, "OR")
        return _join(Or, left, right, _span(meta))

    def and_(self, meta, children):
        left, _, right = children
        self._need_condition(left, "AND")
        self._need_condition(right, "AND")
        return _join(And, left, right, _span(meta))

    def not_(self, meta, children):
        self._need_condition(children[1], "NOT")
        return Not(children[1], pos=_span(meta))

    def any_(self, meta, children):
        self._need_condition(children[1], "ANY")
        return AnyUser(children[1], pos=_span(meta))

    def all_(self, meta, children):
        self._need_condition(children[1], "ALL")
        return AllUsers(children[1], pos=_span(meta))


def _join(cls, left, right, pos=None):
    """n-ary And/Or: `a AND b AND c` is And((a, b, c)), not nested pairs."""
    items = []
    for operand in (left, right):
        items.extend(operand.operands if type(operand) is cls else (operand,))
    if pos is None and left.pos and right.pos:
        pos = Span(left.pos.line, left.pos.column, left.pos.start, right.pos.end)
    return cls(tuple(items), pos=pos)


# ---------------------------------------------------------------------------------------------------------------
# Checks that need the enclosing context (walked from the root down), and classification
# ---------------------------------------------------------------------------------------------------------------

class _Analysis:
    def __init__(self, query_text: str, kind: str) -> None:
        self.text = query_text
        self.kind = kind
        self.batch_reasons: list[str] = []
        self.references: list[str] = []
        self.windows: list[Duration] = []
        self.unsupported: list[tuple[str, Span | None]] = []
        self.comparisons: list[Comparison] = []

    def src(self, node: Node) -> str:
        return self.text[node.pos.start:node.pos.end] if node.pos else type(node).__name__

    def batch(self, reason: str) -> None:
        if reason not in self.batch_reasons:
            self.batch_reasons.append(reason)

    def window(self, duration: Duration) -> None:
        if duration not in self.windows:
            self.windows.append(duration)

    def expr(self, node: Node, depth: int, quantified: bool) -> None:
        """depth = number of enclosing where() (0 at the top of the definition)."""
        if isinstance(node, (And, Or)):
            for operand in node.operands:
                self.expr(operand, depth, quantified)
        elif isinstance(node, Not):
            self.expr(node.operand, depth, quantified)
        elif isinstance(node, (AnyUser, AllUsers)):
            word = "ANY" if isinstance(node, AnyUser) else "ALL"
            if depth:
                raise _fail(node.pos, f"{word} is for account-level audiences and applies to a whole condition, "
                                      f"not inside where()", ["a condition without ANY/ALL"])
            if quantified:
                raise _fail(node.pos, f"{word} cannot be nested inside another ANY or ALL",
                            ["a condition without ANY/ALL"])
            self.batch(f"account-level {word} (ANY/ALL audiences are computed in batch)")
            self.expr(node.operand, depth, True)
        elif isinstance(node, Comparison):
            self.comparisons.append(node)
            if len(self.comparisons) > MAX_PRIMARY_EXPRESSIONS:
                raise _fail(node.pos, f"a definition allows at most {MAX_PRIMARY_EXPRESSIONS} primary expressions "
                                      f"(conditions); this is number {len(self.comparisons)}",
                            [f"at most {MAX_PRIMARY_EXPRESSIONS} conditions"])
            self.scalar(node.subject, depth, quantified)
            argument = node.argument
            if isinstance(argument, Duration):
                self.window(argument)
            elif isinstance(argument, tuple):
                for value in argument:
                    self.scalar(value, depth, quantified)
            elif argument is not None:
                self.scalar(argument, depth, quantified)
        else:
            self.scalar(node, depth, quantified)

    def scalar(self, node: Node, depth: int, quantified: bool) -> None:
        if isinstance(node, TraitRef):
            if node.key not in self.references:
                self.references.append(node.key)
            if depth:
                self.batch(f"dynamic reference: {self.src(node)} inside where()")
        elif isinstance(node, (PropertyRef, ContextRef)):
            self.event_field(node, depth)
        elif isinstance(node, Aggregation):
            self.stream(node.stream, depth, quantified)
            if node.argument is not None:
                if isinstance(node.argument, PropertyRef) and node.argument.parent:
                    raise _fail(node.argument.pos, f"{node.function}() reads the events of its own stream; "
                                                   f"property(parent: ...) is only valid inside where()",
                                ["property('...') or context('...')"])
        elif isinstance(node, Literal):
            pass
        else:  # a junction or comparison where a value is expected cannot come out of the grammar
            self.expr(node, depth, quantified)

    def event_field(self, node: PropertyRef | ContextRef, depth: int) -> None:
        what = "property" if isinstance(node, PropertyRef) else "context"
        if depth == 0:
            raise _fail(node.pos, f"{self.src(node)} reads an event, so it is only valid inside where() or as a "
                                  f"reducer's argument such as event('...').sum({what}('...'))",
                        ["trait('...'), a literal value, or event('...') with a reducer"])
        if isinstance(node, PropertyRef) and node.parent:
            if depth < 2:
                raise _fail(node.pos, f"{self.src(node)} reads the parent event of a funnel, so it is only valid "
                                      f"inside the where() of an event() that is itself inside another event's "
                                      f"where()", ["property('...')"])
            self.batch(f"funnel: {self.src(node)}")

    def stream(self, stream: EventStream, depth: int, quantified: bool) -> None:
        if stream.source == "entity":
            self.unsupported.append((f"entity('{stream.name}')", stream.pos))
            self.batch(f"linked audience: entity('{stream.name}')")
        window = stream.window
        if isinstance(window, Within):
            self.window(window.duration)
            if window.parent:
                if depth == 0:
                    raise _fail(window.pos, f"{self.src(window)} is relative to the parent event of a funnel, so it "
                                            f"is only valid on an event() inside another event's where()",
                                ["within(7 days)"])
                self.batch(f"funnel: {self.src(window)}")
            elif self.kind == "trait":
                # docs src/unify/Traits/computed-traits.md: "Those that use sliding windows are created as
                # batch-based computations and do not receive real-time updates."
                self.batch(f"computed trait with a sliding window: {self.src(window)}")
        elif isinstance(window, Between):
            self.window(window.start)
            self.window(window.end)
            self.batch(f"between window: {self.src(window)}")
        elif isinstance(window, ExpiresAfter):
            self.window(window.duration)
        if stream.where is not None:
            self.expr(stream.where, depth + 1, quantified)


# ---------------------------------------------------------------------------------------------------------------
# Syntax errors in words a person understands
# ---------------------------------------------------------------------------------------------------------------

_EXPR_START = {"EVENT", "ENTITY", "TRAIT", "PROPERTY", "CONTEXT", "LITERAL", "NOT", "ANY", "ALL", "LPAR"}
_LITERALS = {"STRING", "NUMBER", "DATE", "TIMESTAMP", "TRUE", "FALSE"}
_SCALAR_START = {"EVENT", "ENTITY", "TRAIT", "PROPERTY", "CONTEXT", "LITERAL"}
_FILTERS = {"WHERE", "SOURCES", "WITHIN", "BETWEEN", "EXPIRES_AFTER"}
_REDUCERS = {"COUNT", "SUM", "AVG", "MAX", "MIN", "MODE", "FIRST", "LAST", "UNIQUE"}
_COMPARATOR_TERMS = {name.upper() for name in _COMPARATORS}
_UNITS = {"SECOND", "SECONDS", "HOUR", "HOURS", "DAY", "DAYS"}
_TYPES = {"NUMBER_T", "STRING_T", "ARRAY_T"}
_SINGLE = {
    "CMP_OP": "a comparator (>=, >, =, ...)",
    "DOT": "'.'", "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "COLON": "':'", "LBRACE": "'{'", "RBRACE": "'}'",
    "LSQB": "'['", "RSQB": "']'", "INT": "a whole number", "STRING": "a quoted string such as 'Order Completed'",
    "PARENT": "'parent:'", "EXCLUDE": "'exclude:'", "AS": "'as'", "COUNT": "count()",
    "EVENT": "event('...')", "ENTITY": "entity('...')", "TRAIT": "trait('...')", "PROPERTY": "property('...')",
    "CONTEXT": "context('...')", "LITERAL": "literal(...)", "NUMBER": "a number", "DATE": "a date",
    "TIMESTAMP": "a timestamp", "TRUE": "true", "FALSE": "false", "NOT": "NOT", "ANY": "ANY", "ALL": "ALL",
}
_LAST = {"AND": "AND/OR", "OR": "AND/OR", "$END": "the end of the query"}


def _expected_phrases(accepted: set[str]) -> list[str]:
    accepted = set(accepted) - {"NAME"}
    phrases: list[str] = []

    def take(names: set[str], phrase: str) -> None:
        if accepted & names:
            phrases.append(phrase)
            accepted.difference_update(names)

    if "NOT" in accepted:
        take(_EXPR_START, "a condition such as event('...').count() >= 1, trait('...') = 'x', NOT or '('")
    if "STRING" in accepted and "NUMBER" in accepted:
        refs = " or trait('...')" if "TRAIT" in accepted else ""
        take(_LITERALS | _SCALAR_START, f"a value (a number, a 'quoted string', a date, true/false{refs})")
    if {"PROPERTY", "CONTEXT"} <= accepted and "TRAIT" not in accepted:
        take({"PROPERTY", "CONTEXT"}, "property('...') or context('...')")
    take({"CMP_OP"}, _SINGLE["CMP_OP"])
    take(_COMPARATOR_TERMS, "a comparator function (equals, differs, exists, absent, contains, one_of, ...)")
    take(_FILTERS, "a filter (where, sources, within, between, expires_after)")
    if accepted & _REDUCERS and len(accepted & _REDUCERS) > 1:
        take(_REDUCERS, "a reducer (count, sum, avg, min, max, mode, first, last, unique)")
    take(_UNITS, "a time unit (seconds, hours or days)" if "SECOND" in accepted else "a time unit (hours or days)")
    take(_TYPES, "a type (number, string or array)" if "ARRAY_T" in accepted else "a type (number or string)")
    for name in sorted(accepted - set(_LAST), key=lambda n: list(_SINGLE).index(n) if n in _SINGLE else 999):
        phrases.append(_SINGLE.get(name, name.lower()))
    tail = [phrase for name, phrase in _LAST.items() if name in accepted]
    for phrase in dict.fromkeys(tail):
        phrases.append(phrase)
    return phrases


def _join_or(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items) or "nothing more"
    return ", ".join(items[:-1]) + " or " + items[-1]


_LEX = re.compile(r"""\s*('(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[A-Za-z_][A-Za-z0-9_]*|\d{4}-\d\d-\d\d(?:[Tt]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[Zz]|[+-]\d\d(?::?\d\d)?)?)?|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|==|!=|>=|<=|&&|\|\||.)""",
                  re.S)


def _context_before(text: str, pos: int) -> str:
    """'after count()', "after event('Shoes Bought')", "after '>='", or 'at the start of the query'."""
    tokens: list[tuple[str, int, int]] = []
    i = 0
    while i < pos:
        m = _LEX.match(text, i)
        if not m or m.end() > pos or not m.group(1):
            break
        tokens.append((m.group(1), m.start(1), m.end(1)))
        i = m.end()
    if not tokens:
        return "at the start of the query"
    stack: list[tuple[str | None, int]] = []
    closed: dict[int, tuple[str | None, int]] = {}  # index of ')' -> (function name, start offset)
    for idx, (tok, start, _end) in enumerate(tokens):
        if tok == "(":
            name = tokens[idx - 1][0] if idx and re.match(r"[A-Za-z_]", tokens[idx - 1][0]) else None
            stack.append((name, tokens[idx - 1][1] if name else start))
        elif tok == ")" and stack:
            closed[idx] = stack.pop()

    def call(idx: int) -> str | None:
        if idx in closed and closed[idx][0]:
            name, start = closed[idx]
            written = text[start:tokens[idx][2]]
            return written if len(written) <= 40 else f"{name}(...)"
        return None

    last = len(tokens) - 1
    tok = tokens[last][0]
    if tok == ")" and call(last):
        return f"after {call(last)}"
    if tok == "." and last and call(last - 1):
        return f"after the '.' that follows {call(last - 1)}"
    if tok == "(" and last and re.match(r"[A-Za-z_]", tokens[last - 1][0]):
        return f"after '{tokens[last - 1][0]}('"
    if tok[0] in "'\"":
        return f"after the string {tok}"
    return f"after '{tok}'"


_UNIT_ABBREVIATIONS = {"d", "h", "s", "m", "w", "min", "mins", "minute", "minutes", "week", "weeks", "month",
                       "months", "year", "years", "hr", "hrs", "sec", "secs"}


def _hint(got: str, accepted: set[str]) -> str | None:
    word = got.lower()
    if got.startswith("&"):
        return "use AND to join conditions"
    if got.startswith("|"):
        return "use OR to join conditions"
    if word == "audience":
        return "audience() does not exist: reference an audience by its key with trait('<audience_key>') = true"
    if "DOT" in accepted and (word.upper() in _REDUCERS | _FILTERS or word in _COMPARATORS):
        return f"functions are chained with '.', as in .{word}(...)"
    if word.upper() in _REDUCERS and not accepted & _REDUCERS:
        if "COUNT" in accepted:
            return "unique() gives a list: only .count() may follow it"
        return f"{word}() is a reducer: it follows event('...') or its filters, as in event('X').{word}(...)"
    if word.upper() in _FILTERS and not accepted & _FILTERS:
        return f"filters such as {word}() come right after event('...'), before the reducer"
    if word in _COMPARATORS and not accepted & _COMPARATOR_TERMS:
        if "COUNT" in accepted and len(accepted & _REDUCERS) == 1:
            return "unique() gives a list: only .count() may follow it"
        if accepted & _REDUCERS:
            return "event('...') is a stream of events: add a reducer such as .count() before comparing"
    if got in _SUGAR and accepted == {"DOT"}:
        return "event('...') is a stream of events: add a reducer such as .count() before comparing"
    if got == "$":
        return "the $ array operator is not documented by Segment and is not supported"
    if word == "in":
        return "use .one_of('a', 'b') to match one of several values"
    if word in ("second", "seconds") and accepted & _UNITS:
        return "seconds are only for expires_after(); use hours or days"
    if word in _UNIT_ABBREVIATIONS and accepted & _UNITS:
        return "write the unit in full: " + ("seconds, hours or days" if "SECOND" in accepted else "hours or days")
    return None


def _syntax_error(text: str, exc: UnexpectedInput) -> QueryError:
    accepted: set[str] = set()
    parser = getattr(exc, "interactive_parser", None)
    if parser is not None:
        try:
            accepted = set(parser.accepts())
        except Exception:  # pragma: no cover - accepts() replays the parser; fall back to the raw sets
            accepted = set()
    if not accepted:
        accepted = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        end = len(text.rstrip())
        line = text.count("\n", 0, end) + 1
        column = end - (text.rfind("\n", 0, end) + 1) + 1
        got, at = "the end of the query", end
    elif isinstance(exc, UnexpectedToken):
        tok = exc.token
        line, column, at = tok.line, tok.column, tok.start_pos
        got = f"the string {tok}" if tok.type == "STRING" else f"'{tok}'"
        raw = str(tok)
    else:
        line, column, at = exc.line, exc.column, exc.pos_in_stream
        m = re.compile(r"&&|\|\||\S").match(text, at)
        raw = m.group(0) if m else text[at:at + 1]
        got = "a string that is never closed" if raw in ("'", '"') else f"'{raw}'"
    phrases = _expected_phrases(accepted)
    message = f"expected {_join_or(phrases)} {_context_before(text, at)}, got {got}"
    hint = _hint(raw, accepted) if got != "the end of the query" else None
    if hint:
        message += f" ({hint})"
    return QueryError(line, column, message, phrases)


# ---------------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------------

def _build(text: str, kind: str, force_batch: bool) -> tuple[Query, _Analysis]:
    if kind not in KINDS:
        raise ValueError(f"kind must be 'audience' or 'trait', got {kind!r}")
    if not isinstance(text, str):
        raise QueryError(1, 1, f"a query must be a string, got {type(text).__name__}", ["a query string"])
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    transformer = _ToAst(text)
    try:
        root = transformer.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        raise
    analysis = _Analysis(text, kind)
    analysis.expr(root, 0, False)
    reasons = list(analysis.batch_reasons)
    if force_batch:
        reasons.append("forced by the definition (batch: true)")
    query = Query(
        text=text, kind=kind, root=root, result_type=result_type(root), is_batch=bool(reasons),
        batch_reasons=tuple(reasons), references=tuple(analysis.references), windows=tuple(analysis.windows),
        unsupported=tuple(name for name, _ in analysis.unsupported), warnings=tuple(dict.fromkeys(transformer.warnings)),
        primary_expressions=len(analysis.comparisons),
    )
    return query, analysis


def parse(text: str, kind: str = "audience", *, force_batch: bool = False) -> Query:
    """Parse a definition. Raises QueryError (line, column, expected) for bad syntax or structure.

    `kind` ("audience" or "trait") only affects classification here; `check_definition` also checks the result type.
    `force_batch` records a definition that asks to be computed in batch.
    """
    return _build(text, kind, force_batch)[0]


def check_definition(text: str, kind: str = "audience", *, force_batch: bool = False) -> Query:
    """Parse and validate a definition as the Public API would accept it: an audience must yield a boolean, a computed
    trait a scalar (not a boolean), and features the emulator does not support (Linked Audiences' entity()) are
    refused by name."""
    query, analysis = _build(text, kind, force_batch)
    root = query.root
    where = root.pos
    if kind == "audience" and query.result_type != "boolean":
        src = query.source(root)
        raise _fail(where, f"an audience definition must be a condition that is true or false, but {src} computes "
                           f"{_TYPE_WORDS[query.result_type]}; compare it, for example "
                           f"{_compare_example(src, query.result_type)}",
                    ["a condition ending in a comparator"])
    if kind == "trait" and query.result_type == "boolean":
        raise _fail(where, "a computed trait definition must compute a value (a scalar such as "
                           "event('...').count() or event('...').last(property('...'))), but this query is a condition "
                           "that is true or false; drop the comparison (or define an audience instead)",
                    ["a scalar such as event('...').count()"])
    if analysis.unsupported:
        name, pos = analysis.unsupported[0]
        raise _fail(pos, f"{name}: entity() belongs to Linked Audiences, which this emulator does not support",
                    ["event('...') or trait('...')"])
    return query


def detect_cycle(definitions: dict[str, Query]) -> list[str] | None:
    """The first reference cycle among definitions keyed by audience/trait key, as a path that starts and ends with
    the same key (`['a', 'b', 'a']`), or None. Segment refuses such a definition with CYCLE_MESSAGE."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(key: str) -> list[str] | None:
        state[key] = 1
        path.append(key)
        for ref in definitions[key].references:
            if ref not in definitions:
                continue
            if state.get(ref) == 1:
                return path[path.index(ref):] + [ref]
            if ref not in state:
                found = visit(ref)
                if found:
                    return found
        path.pop()
        state[key] = 2
        return None

    for key in definitions:
        if key not in state:
            found = visit(key)
            if found:
                return found
    return None

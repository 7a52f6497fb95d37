"""What every destination shares: the planned request, the refusal, the per-event outcome, and the payload check.

The payload check mirrors what `@segment/actions-core` 3.170 does between mapping and `perform`: `removeEmptyValues`,
then ajv (`coerceTypes: "array"`, `allErrors`, `removeAdditional`) with the field definitions turned into a JSON schema,
and `@segment/ajv-human-errors` for the message. Only the keywords the Braze actions use are implemented; the message
texts and their order are the ones the real package produces (checked with /work/shared/tools/segment-destination-oracle).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from emulator.segment.destinations.jsvalues import (JS_SPACE_CLASS, clip, dayjs_ms, iso_string,
                                                     number_string, to_number, ymd)
from emulator.segment.destinations.mapping import UNDEFINED

# Segment's request client sends this user agent on every destination request (fixture headers).
USER_AGENT = "Segment (Actions)"

# Segment error codes (actions-core `ErrorCodes`) as the real package reports them.
PAYLOAD_VALIDATION_FAILED = "PAYLOAD_VALIDATION_FAILED"
MISSING_REQUIRED_FIELDS = "Missing required fields"
BAD_REQUEST = "BAD_REQUEST"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
RETRYABLE_ERROR = "RETRYABLE_ERROR"


# actions-core `HTTP_ERROR_CODE_MAP`: the errortype Segment records for an HTTP failure; anything else UNKNOWN_ERROR.
HTTP_ERROR_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 402: "PAYMENT_REQUIRED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 407: "PROXY_AUTHENTICATION_REQUIRED", 408: "REQUEST_TIMEOUT",
    409: "CONFLICT", 410: "GONE", 411: "LENGTH_REQUIRED", 412: "PRECONDITION_FAILED", 413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG", 415: "UNSUPPORTED_MEDIA_TYPE", 416: "RANGE_NOT_SATISFIABLE", 417: "EXPECTATION_FAILED",
    418: "IM_A_TEAPOT", 421: "MISDIRECTED_REQUEST", 422: "UNPROCESSABLE_ENTITY", 423: "LOCKED",
    424: "FAILED_DEPENDENCY", 425: "TOO_EARLY", 426: "UPGRADE_REQUIRED", 428: "PRECONDITION_REQUIRED",
    429: "TOO_MANY_REQUESTS", 431: "REQUEST_HEADER_FIELDS_TOO_LARGE", 451: "UNAVAILABLE_FOR_LEGAL_REASONS",
    499: "CANCELLED", 500: "INTERNAL_SERVER_ERROR", 501: "NOT_IMPLEMENTED", 502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT", 505: "HTTP_VERSION_NOT_SUPPORTED",
    506: "VARIANT_ALSO_NEGOTIATES", 507: "INSUFFICIENT_STORAGE", 508: "LOOP_DETECTED", 509: "BANDWIDTH_LIMIT_EXCEEDED",
    510: "NOT_EXTENDED", 511: "NETWORK_AUTHENTICATION_REQUIRED", 529: "SITE_IS_OVERLOADED",
}


def http_error_code(status: int) -> str:
    return HTTP_ERROR_CODES.get(status, "UNKNOWN_ERROR")


def reason_phrase(status: int) -> str:
    """The HTTP status text, which is the message of the HTTPError Segment's request client throws."""
    from http import HTTPStatus
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Request failed with status code {status}"


class DestinationRefusal(Exception):
    """The destination refused an event before sending anything (Segment's IntegrationError / payload check)."""

    def __init__(self, message: str, status: int | None = 400, code: str = PAYLOAD_VALIDATION_FAILED):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __repr__(self) -> str:
        return f"DestinationRefusal({self.message!r}, status={self.status}, code={self.code!r})"


class BatchFailure(DestinationRefusal):
    """An exception the action's code lets escape (a JavaScript TypeError or RangeError): it fails the event under
    `perform`, and the whole batch under `performBatch`."""


def thrown_failure(planned: "PlannedRequest", status: int, code: str | None, message: str | None,
                   body: Any) -> list[EventOutcome]:
    """A failure escaping performBatch (the request client's HTTPError, a TypeError reading the answer): every
    event of the batch fails with it, the ones the payload check refused included (even when none was sent)."""
    return [EventOutcome(i, status, code, message, body) for i in planned.batch_members or planned.events]


@dataclass
class PlannedRequest:
    """One HTTP request a destination would send, and which input events it carries.

    `sources[i]` is the index (in the `events` list given to `build_requests`) of the event that produced
    `body[<array>][i]`, so Braze's `errors[].index` maps back to an event. `events` lists each source event once.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: dict
    events: list[int]
    sources: list[int] = field(default_factory=list)
    action: str = ""
    endpoint: str = ""
    batch: bool = False  # built by the action's performBatch (more than one event) rather than perform
    # the events of that batch performBatch got (the payload check passed), in order: Braze's errors[].index of an
    # ecommerce batch is a position in it
    batch_events: list[int] = field(default_factory=list)
    # every event of that batch, the ones the payload check refused included: a thrown failure fails them all
    batch_members: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.endpoint.rstrip('/')}{self.path}"


@dataclass
class EventOutcome:
    """What Segment records for one event of a delivery: `status` 2xx = delivered."""

    index: int
    status: int
    code: str | None = None
    message: str | None = None
    body: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Plan:
    """`build_requests`' answer: the requests to send, and the events refused before sending (by input index)."""

    requests: list[PlannedRequest]
    refusals: dict[int, DestinationRefusal]
    filtered: list[int] = field(default_factory=list)  # events no subscription matched
    skipped: list[int] = field(default_factory=list)  # accepted, but nothing to send (Segment reports them delivered)
    created_cohorts: set[str] = field(default_factory=set)

    def __iter__(self):
        return iter(self.requests)

    def __len__(self) -> int:
        return len(self.requests)

    def __getitem__(self, i: int) -> PlannedRequest:
        return self.requests[i]


# -- what actions-core does to every event before perform/performBatch -----------------------------------------------

def membership_error(event: Any) -> BatchFailure | None:
    """actions-core `engageAudienceMembership` destructures `{context: {personas: {computation_class, ...} = {}} = {}}`
    from every event before perform (after the payload check) and performBatch (over the whole batch, refused events
    included, once one passed): a `null` context or personas throws a TypeError, which fails the event, or the batch,
    with V8's message. (Defaults apply to undefined only; any other value destructures.)"""
    if event.__class__ is not dict:
        return None
    context = event.get("context", UNDEFINED)
    if context is None:
        return BatchFailure("Cannot destructure property 'personas' of '{}' as it is null.", 400, BAD_REQUEST)
    if context.__class__ is dict and context.get("personas", UNDEFINED) is None:
        return BatchFailure("Cannot read properties of null (reading 'computation_class')", 400, BAD_REQUEST)
    return None


def batch_membership_error(events: list, indexes: list[int]) -> BatchFailure | None:
    """`membership_error` of a batch: the first event's that throws (`bundle.data.map(...)` runs in order)."""
    for index in indexes:
        error = membership_error(events[index])
        if error is not None:
            return error
    return None


# -- dates (dayjs as the destinations use it; JavaScript semantics in jsvalues) -----------------------------------------

def to_iso(value: Any) -> Any:
    """`dayjs(value).toISOString()` (utils.ts `toISO8601`): null/undefined pass through, invalid -> undefined."""
    if value is None or value is UNDEFINED:
        return value
    if value.__class__ is str and len(value) == 24 and _CANONICAL_ISO.fullmatch(value) and value[0] != "0" \
            and value[11:13] < "24":
        # Already what toISOString writes (most event times are): valid if Python reads it, and then unchanged.
        try:
            datetime.fromisoformat(value)
            return value
        except ValueError:
            pass
    ms = dayjs_ms(value)
    return UNDEFINED if ms is None else iso_string(ms)


_CANONICAL_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def to_date(value: Any) -> Any:
    """`dayjs(value).format('YYYY-MM-DD')` (utils.ts `toDateFormat`)."""
    if value is None or value is UNDEFINED:
        return value
    ms = dayjs_ms(value)
    return UNDEFINED if ms is None else ymd(ms)


# -- the payload check -------------------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+"
                    r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", re.I | re.A)  # re.A: JS /i folds ASCII only here
# ajv-formats 2.1.1 full `uri` regex, verbatim.
_URI = re.compile(r"""^(?:[a-z][a-z0-9+\-.]*:)(?:\/?\/(?:(?:[a-z0-9\-._~!$&'()*+,;=:]|%[0-9a-f]{2})*@)?(?:\[(?:(?:(?:(?:[0-9a-f]{1,4}:){6}|::(?:[0-9a-f]{1,4}:){5}|(?:[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){4}|(?:(?:[0-9a-f]{1,4}:){0,1}[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){3}|(?:(?:[0-9a-f]{1,4}:){0,2}[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){2}|(?:(?:[0-9a-f]{1,4}:){0,3}[0-9a-f]{1,4})?::[0-9a-f]{1,4}:|(?:(?:[0-9a-f]{1,4}:){0,4}[0-9a-f]{1,4})?::)(?:[0-9a-f]{1,4}:[0-9a-f]{1,4}|(?:(?:25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?))|(?:(?:[0-9a-f]{1,4}:){0,5}[0-9a-f]{1,4})?::[0-9a-f]{1,4}|(?:(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4})?::)|[Vv][0-9a-f]+\.[a-z0-9\-._~!$&'()*+,;=:]+)\]|(?:(?:25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?)|(?:[a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})*)(?::\d*)?(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*|\/(?:(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})+(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*)?|(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})+(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*)(?:\?(?:[a-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?(?:#(?:[a-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?$""", re.I | re.A)
_DATE = re.compile(r"^(\d\d\d\d)-(\d\d)-(\d\d)$", re.A)
_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d)(\.\d+)?(z|[+-]\d\d(?::?\d\d)?)?$", re.I | re.A)
_DATE_TIME_SEPARATOR = re.compile("[tT]|" + JS_SPACE_CLASS)  # ajv-formats /t|\s/i with JavaScript's \s
_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def _is_date(text: str) -> bool:
    m = _DATE.fullmatch(text)
    if not m:
        return False
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return 1 <= mo <= 12 and 1 <= d <= (29 if mo == 2 and leap else _DAYS[mo])


def _is_date_time(text: str) -> bool:
    parts = _DATE_TIME_SEPARATOR.split(text)
    if len(parts) != 2 or not _is_date(parts[0]):
        return False
    m = _TIME.fullmatch(parts[1])
    if not m:
        return False
    h, mi, s = int(m[1]), int(m[2]), int(m[3])
    # ajv-formats 2.1.1 means to require a zone here but compares `undefined !== ""`, so none is needed.
    return (h <= 23 and mi <= 59 and s <= 59) or (h, mi, s) == (23, 59, 60)


def _is_date_like(value: str) -> bool:
    """actions-core's `date-like` format: a string that is a number as JavaScript writes it is read as epoch seconds
    (`dayjs.unix`; the 13-digit milliseconds branch is overwritten right after it), anything else through dayjs."""
    number = to_number(value)
    if number_string(number) == value:
        return clip(number * 1000) is not None
    return dayjs_ms(value) is not None


def _remembered(check: Callable[[str], bool]) -> Callable[[str], bool]:
    """A format check answered once per distinct string (emails, product URLs and the like recur from event to
    event; the URI regex alone costs microseconds). The checks are pure; the memo is bounded."""
    memo: dict[str, bool] = {}

    def remembered(value: str) -> bool:
        answer = memo.get(value)
        if answer is None:
            if len(memo) >= 8192:
                memo.clear()
            answer = memo[value] = check(value)
        return answer

    return remembered


_FORMATS = {
    "email": (_remembered(lambda v: bool(_EMAIL.fullmatch(v))), "email address"),
    "uri": (_remembered(lambda v: bool(re.search(r"/|:", v)) and bool(_URI.fullmatch(v))), "URI"),
    "date-time": (_remembered(_is_date_time), "date and time"),
    "date-like": (_remembered(_is_date_like), "date-like"),
}


def _schema_types(spec: dict) -> list[str]:
    """JSON-schema type list of a field definition (fields-to-jsonschema.ts)."""
    if spec.get("multiple"):
        return ["array"]
    base = spec["type"]
    if base == "datetime":
        types = ["string", "number"]
    else:
        types = ["string" if base in ("password", "text") else base]
    if spec.get("allowNull"):
        types.append("null")
    return types


def _item_spec(spec: dict) -> dict:
    item = {k: v for k, v in spec.items() if k not in ("multiple", "allowNull", "required", "default", "label")}
    return item


class _Field:
    """A field definition with what the check needs worked out once (not per event): its JSON-schema types, the
    value classes that pass ajv's type check as they are, its items' and properties' definitions, its format."""

    __slots__ = ("title", "types", "direct", "multiple", "allow_null", "nullable", "stringy", "item",
                 "properties", "additional", "choices", "str_choices", "choices_message", "format", "type_message",
                 "plain")

    def __init__(self, spec: dict) -> None:
        self.title = spec.get("label")
        self.types = _schema_types(spec)
        # Exact classes `_has_type` accepts for these types ("integer" also needs the value to be whole: not listed).
        self.direct = frozenset(cls for t in self.types for cls in _DIRECT_CLASSES.get(t, ()))
        self.multiple = bool(spec.get("multiple"))
        self.allow_null = bool(spec.get("allowNull"))
        self.nullable = "null" in self.types
        self.stringy = "string" in self.types
        self.item = _Field(_item_spec(spec)) if self.multiple else None
        properties = spec.get("properties")
        self.properties = _Fields(properties) if properties else None
        self.additional = bool(spec.get("additionalProperties"))
        choices = spec.get("choices")
        # the enum ajv checks: each choice's value ({label, value} choices included)
        self.choices = list(dict.fromkeys(c["value"] if isinstance(c, dict) else c for c in choices)) \
            if choices is not None and not self.multiple else None
        # A string is among plain-string choices iff it is in their set (CURRENCIES has ~180: no linear scan).
        self.str_choices = frozenset(self.choices) if self.choices is not None and all(
            c.__class__ is str for c in self.choices) else None
        self.choices_message = None
        if self.choices is not None:
            allowed = self.choices + ([None] if self.allow_null else [])
            self.choices_message = f" must be one of: {_humanize_list([json.dumps(a) for a in allowed], 'or')}."
        fmt = spec.get("format") or ("date-like" if spec["type"] == "datetime" else None)
        self.format = _FORMATS[fmt] if fmt in _FORMATS else None
        humanized = _humanize_list(self.types, "or")
        self.type_message = f" must be {_article(humanized)} {humanized} but it was "
        # Nothing but the type to check: a value of a `direct` class passes `_check_value` unchanged.
        self.plain = not self.multiple and self.choices is None and self.format is None and self.properties is None


class _Fields:
    """An action's (or an object field's) field definitions, with the required and conditional keys listed."""

    __slots__ = ("fields", "members", "required", "conditional")

    def __init__(self, fields: dict[str, dict]) -> None:
        self.fields = {key: _Field(spec) for key, spec in fields.items()}
        self.members = tuple(self.fields.items())
        self.required = tuple(key for key, spec in fields.items() if spec.get("required") is True)
        self.conditional = tuple((key, _Condition(spec["required"])) for key, spec in fields.items()
                                 if isinstance(spec.get("required"), dict))


class _Condition:
    """A conditionally required field's `required: {match, conditions}` (only `name is <value>` is used here)."""

    __slots__ = ("any", "conditions")

    def __init__(self, condition: dict) -> None:
        self.any = condition.get("match", "all") == "any"
        self.conditions = tuple((c["fieldKey"], c["operator"] == "is", c.get("value")) for c in condition["conditions"])

    def applies(self, payload: dict) -> bool:
        for key, is_, value in self.conditions:  # comparing JSON values has no side effect: stop at the answer
            present = key in payload
            equal = present and payload[key] == value
            if bool(equal if is_ else (present and not equal)) is self.any:
                return self.any
        return not self.any


_DIRECT_CLASSES: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "boolean": (bool,), "null": (type(None),), "object": (dict,),
    "array": (list,)}
# Field definitions are static module dicts: their worked-out form is kept by identity (with a reference, so an id
# is never reused while cached).
_PLANS: dict[int, tuple[dict, _Fields]] = {}


def _plan(fields: dict[str, dict]) -> _Fields:
    entry = _PLANS.get(id(fields))
    if entry is None:
        if len(_PLANS) >= 64:
            _PLANS.clear()
        entry = _PLANS[id(fields)] = (fields, _Fields(fields))
    return entry[1]


def _remove_empty_values(payload: dict, plan: _Fields, is_root: bool = False) -> dict:
    """actions-core `removeEmptyValues`: null where null isn't allowed, "" where a string isn't expected, go away."""
    out = {}
    fields = plan.fields
    for key, value in payload.items():
        cls = value.__class__
        if cls is str:
            if value == "" and (is_root or ((field := fields.get(key)) is not None and not field.stringy)):
                continue
        elif cls not in _KEPT_CLASSES:
            field = fields.get(key)
            if field is not None:
                value = _remove_empty(value, field)
            if value is UNDEFINED:
                continue
        out[key] = value
    return out


_KEPT_CLASSES = frozenset((int, float, bool))  # never null nor "": `_remove_empty` gives them back as they are


def _remove_empty(value: Any, field: _Field) -> Any:
    if value.__class__ is str:
        return UNDEFINED if value == "" and not field.stringy else value
    if isinstance(value, list):
        if not field.multiple:
            return value
        # removeEmptyValues only filters array items out; the items it keeps are not cleaned (a null inside one
        # survives, and ajv then coerces it: `currency: null` becomes "").
        item = field.item
        return [v for v in value if not _empty_item(v, item)]
    if isinstance(value, dict):
        if field.properties is None:
            return value
        return _remove_empty_values(value, field.properties)
    if value is None and not field.nullable:
        return UNDEFINED
    return value


def _empty_item(value: Any, item: _Field) -> bool:
    """`_remove_empty(value, item) is UNDEFINED` without cleaning a kept item (an item is never `multiple`, and an
    object comes back as an object, cleaned or not)."""
    if isinstance(value, (list, dict)):
        return False
    if value is None:
        return not item.nullable
    return value == "" and isinstance(value, str) and not item.stringy


def _js_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _humanize_list(items: list[str], conjunction: str) -> str:
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} {conjunction} {items[1]}"
    return f"{', '.join(items[:-1])}, {conjunction} {items[-1]}"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _coerce(value: Any, types: list[str]) -> tuple[bool, Any]:
    """ajv `coerceTypes: "array"`: returns (ok, value)."""
    if _has_type(value, types):
        return True, value
    if not any(t in ("string", "number", "integer", "boolean", "null", "array") for t in types):
        return False, value  # nothing ajv can coerce to (a plain object field): no unwrapping either
    if isinstance(value, list) and len(value) == 1 and "array" not in types:
        # A one-item array is unwrapped. ajv checks the unwrapped item with an AND over the types, so for a
        # multi-type field (nullable, datetime) an item of a right type still fails; coercion goes on from the item.
        value = value[0]
        if len(types) == 1 and _has_type(value, types):
            return True, value
    for t in types:
        if t == "string":
            if isinstance(value, bool):
                return True, "true" if value else "false"
            if isinstance(value, (int, float)):
                return True, number_string(value)
            if value is None:
                return True, ""
        elif t in ("number", "integer"):
            number: Any = None
            if isinstance(value, bool):
                number = int(value)
            elif value is None:
                number = 0
            elif isinstance(value, str) and value and (f := to_number(value)) == f:
                # ajv: `data == +data`, false only for NaN (JavaScript's Number(): spaces, 0x10, 1e3 all count)
                number = int(f) if f.is_integer() and abs(f) < 1e21 else f
            # integer: ajv's `!(data % 1)`, true for a whole number and for Infinity ("Infinity" % 1 is NaN)
            if number is not None and (t == "number" or number.__class__ is int or not math.isfinite(number)
                                       or number.is_integer()):
                return True, number
        elif t == "boolean":
            if value in ("false", 0, None) and not isinstance(value, bool):
                return True, False
            if value in ("true", 1) and not isinstance(value, bool):
                return True, True
        elif t == "null":
            if value == "" or value is False or (isinstance(value, (int, float)) and value == 0):
                return True, None
        elif t == "array":
            return True, [value]
    return False, value


def _has_type(value: Any, types: list[str]) -> bool:
    for t in types:
        if t == "string" and isinstance(value, str):
            return True
        if t == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
            return True
        if t == "boolean" and isinstance(value, bool):
            return True
        if t == "null" and value is None:
            return True
        if t == "object" and isinstance(value, dict):
            return True
        if t == "array" and isinstance(value, list):
            return True
    return False


def check_payload(payload: dict, fields: dict[str, dict], single: bool) -> dict:
    """Apply actions-core's cleaning and schema check to a mapped payload; raise `DestinationRefusal` like Segment.

    `single` = the event goes through `perform` (root "" values are dropped there, not in `performBatch`).
    """
    plan = _plan(fields)
    payload = _remove_empty_values(payload, plan, is_root=single)
    errors: list[str] = []
    payload = _check_object(payload, plan, "", None, errors, root=True)
    if errors:
        raise DestinationRefusal(" ".join(errors), 400, PAYLOAD_VALIDATION_FAILED)
    return payload


def _preamble(path: str, title: str | None) -> str:
    if title:
        return title
    return "The root value" if path == "" else f"The value at {path}"


def _check_object(obj: dict, plan: _Fields, path: str, title: str | None, errors: list[str],
                  root: bool = False, additional: bool = False) -> dict:
    if root and plan.conditional:
        # Conditional requirements are an allOf of if/then: ajv runs them before `required` (untyped keywords first).
        for key, condition in plan.conditional:
            if condition.applies(obj) and key not in obj:
                where = _preamble(path, title)
                errors.append(f"{where} is missing the required field '{key}'.")
                errors.append(f'{where} must match "then" schema.')
    for key in plan.required:
        if key not in obj:
            errors.append(f"{_preamble(path, title)} is missing the required field '{key}'.")
    fields = plan.fields
    # removeAdditional: true (unless the object allows more); `out` is a copy whose values are replaced below.
    out = dict(obj) if additional else {k: v for k, v in obj.items() if k in fields}
    # Checked in the object's order (it has fewer keys than there are fields). ajv reports in the fields' order: an
    # object with something to report is checked again in that order (a refused event: rare). `obj` is not modified.
    reported = len(errors)
    for key, value in obj.items():
        field = fields.get(key)
        if field is None or (field.plain and value.__class__ in field.direct):
            continue  # `_check_value` would give it back as it is (and `out` already holds it)
        out[key] = _check_value(value, field, path, key, errors)
    if len(errors) > reported:
        del errors[reported:]
        for key, field in plan.members:
            if key in obj:
                out[key] = _check_value(obj[key], field, path, key, errors)
    return out


def _check_value(value: Any, field: _Field, parent: str, key: Any, errors: list[str]) -> Any:
    """The value at `{parent}/{key}` (the path is only spelled out for a message or a nested check)."""
    if field.multiple and not isinstance(value, list):
        value = [value]  # arrifyFields / array coercion
    if value.__class__ in field.direct:
        ok = True  # what `_coerce` answers first for a value of a right type
    else:
        ok, value = _coerce(value, field.types)
        if not ok:
            errors.append(f"{_preamble(f'{parent}/{key}', field.title)}{field.type_message}{_js_type(value)}.")
    choices = field.choices  # `enum` has no type: ajv checks it even after a type error
    if choices is not None and not (value is None and field.allow_null):
        if field.str_choices is not None and value.__class__ is str:
            refused = value not in field.str_choices
        else:
            refused = value not in choices or isinstance(value, bool)
        if refused:
            errors.append(f"{_preamble(f'{parent}/{key}', field.title)}{field.choices_message}")
    if ok and field.multiple and isinstance(value, list):
        path = f"{parent}/{key}"
        item = field.item
        return [_check_value(v, item, path, i, errors) for i, v in enumerate(value)]
    # ajv formats only look at strings, and do even after a type error (e.g. a one-item array unwrapped to a string).
    if field.format is not None and isinstance(value, str):
        check, label = field.format
        if not check(value):
            errors.append(f"{_preamble(f'{parent}/{key}', field.title)} must be a valid {label} string but it was not.")
    if not ok:
        return value
    if field.properties is not None and isinstance(value, dict):
        # A multiple field's items have no title (_item_spec drops it): "The value at /products/0 is missing ...".
        return _check_object(value, field.properties, f"{parent}/{key}", field.title, errors,
                             additional=field.additional)
    return value

"""The JavaScript value semantics Segment's destinations inherit from Node, where Python's differ.

- `number_string`: `String(number)` (ECMAScript Number::toString): `1e+21`, `1e-7`, `0.000001`, `100` for 100.0.
- `json_numbers` / `json_text`: what `JSON.stringify` writes for numbers: an integral float is an integer, NaN and
  Infinity are null, and exponents are written the JavaScript way.
- `date_ms` (`new Date(x)`, V8's parser for the ISO format, with its leniency: a day up to 31 in any month rolls
  over, 24:00 is the next midnight, six-digit signed years) and `dayjs_ms` (`dayjs(x)`: its own pattern first, then
  `new Date`). Times are epoch milliseconds as in JavaScript, so years past 9999 or before 1 work as there.
- `iso_string` (`toISOString`) and `ymd` (dayjs `format('YYYY-MM-DD')`).

Facts: the oracle cases (fixtures/segment-braze-oracle-cases.json, Segment's own package on Node 20); dayjs 1.11
`parseDate` and `REGEX_PARSE`; V8 `dateparser` (ES5 ISO strings, then its legacy parser, approximated here by
RFC 2822 parsing).
"""
from __future__ import annotations

import json
import math
import re
from email.utils import parsedate_to_datetime
from typing import Any

MAX_TIME_MS = 8.64e15  # TimeClip: a Date further than this from the epoch is invalid
_MS_PER_DAY = 86_400_000


# -- numbers -------------------------------------------------------------------------------------------------------

def number_string(value: int | float) -> str:
    """`String(value)` for a JavaScript number (a Python int beyond 2**53 is first rounded to a double, as JSON.parse
    would have done)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if -2**53 < value < 2**53:
            return str(value)
        try:
            value = float(value)
        except OverflowError:
            return "Infinity" if value > 0 else "-Infinity"
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")  # repr: the shortest digits that read back the same
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point  # value = 0.<digits> x 10^n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        text = (digits if k == 1 else digits[0] + "." + digits[1:]) + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + text


def json_numbers(value: Any) -> Any:
    """`value` with its numbers as JSON.stringify sees them: an integral float below 1e21 becomes an int (JSON.parse
    gave JavaScript one number type), NaN and Infinity become None. Containers are copied only when they change."""
    if value.__class__ is float:
        if value != value or math.isinf(value):
            return None
        if value.is_integer() and abs(value) < 1e21:
            return int(value)
        return value
    if isinstance(value, dict):
        changed = None
        for key, item in value.items():
            if item.__class__ in (str, int, bool) or item is None:
                continue
            new = json_numbers(item)
            if new is not item or new.__class__ is not item.__class__:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, list):
        items = [json_numbers(item) for item in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    return value


def json_text(value: Any) -> str:
    """`JSON.stringify(value)`: compact, non-ASCII kept, numbers written as JavaScript writes them."""
    value = json_numbers(value)
    if not _has_odd_float(value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _stringify(value)  # a float Python writes otherwise (1e-07 for 1e-7): rare enough to encode by hand


def _stringify(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{_stringify(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_stringify(v) for v in value) + "]"
    if value.__class__ is float:
        return number_string(value)
    return json.dumps(value, ensure_ascii=False)


def _has_odd_float(value: Any) -> bool:
    if value.__class__ is float:
        return number_string(value) != repr(value)
    if isinstance(value, dict):
        return any(_has_odd_float(v) for v in value.values() if v.__class__ not in (str, int, bool))
    if isinstance(value, list):
        return any(_has_odd_float(v) for v in value)
    return False


def to_number(text: str) -> float:
    """`Number(text)` for a string (NaN when it is not a number literal)."""
    stripped = text.strip(" \t\n\r\v\f\u00a0\ufeff\u2028\u2029")
    if stripped == "":
        return 0.0
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", stripped):
        return float(int(stripped, 16))
    if re.fullmatch(r"0[oO][0-7]+", stripped):
        return float(int(stripped[2:], 8))
    if re.fullmatch(r"0[bB][01]+", stripped):
        return float(int(stripped[2:], 2))
    if re.fullmatch(r"[+-]?Infinity", stripped):
        return -math.inf if stripped[0] == "-" else math.inf
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", stripped):
        return float(stripped)
    return math.nan


# -- dates ---------------------------------------------------------------------------------------------------------

def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (month 1-12; any year)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def utc_ms(year: float, month: float, day: float = 1, hours: float = 0, minutes: float = 0, seconds: float = 0,
           ms: float = 0) -> int | None:
    """`Date.UTC(year, month0, day, h, m, s, ms)`: fields overflow into the next (day 30 of February is in March);
    a year 0-99 means 1900-1999. None for an invalid time."""
    fields = [year, month, day, hours, minutes, seconds, ms]
    if any(f != f or math.isinf(f) for f in fields):
        return None
    year, month, day, hours, minutes, seconds, ms = (math.trunc(f) for f in fields)
    if 0 <= year <= 99:
        year += 1900
    ym = year + month // 12
    days = _days_from_civil(ym, month % 12 + 1, 1) + day - 1
    return clip(days * _MS_PER_DAY + ((hours * 60 + minutes) * 60 + seconds) * 1000 + ms)


def clip(ms: float) -> int | None:
    """TimeClip: None beyond 8.64e15 ms, else the integer milliseconds."""
    if ms != ms or math.isinf(ms) or abs(ms) > MAX_TIME_MS:
        return None
    return int(math.trunc(ms))


# The ES date-time string format; V8 also reads a space for the T (its legacy parser takes the time from there).
_ES_ISO = re.compile(
    r"(?P<year>[+-]\d{6}|\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2}))?)?"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?)?")
_SLASHED = re.compile(r"(?:(?P<y1>\d{4})/(?P<m1>\d{1,2})/(?P<d1>\d{1,2})|(?P<m2>\d{1,2})/(?P<d2>\d{1,2})/(?P<y2>\d{4}))"
                      r"(?:[ T](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?")


def date_ms(value: Any) -> int | None:
    """`new Date(value).getTime()` for a number or a string (None when it is NaN)."""
    if value is None or isinstance(value, bool):
        return int(value or 0)  # ToNumber: null is 0, true 1
    if isinstance(value, (int, float)):
        return clip(value)
    if not isinstance(value, str):
        return None
    text = value  # no trimming: V8 refuses ' 2026-11-20T10:00:00Z' (oracle case 191)
    match = _ES_ISO.fullmatch(text)
    if match:
        return _es_iso_ms(match)
    match = _SLASHED.fullmatch(text)
    if match:  # V8's legacy parser: 2026/11/20 or 11/20/2026, with an optional time (local time: UTC here)
        y, mo, d = (match["y1"], match["m1"], match["d1"]) if match["y1"] else (match["y2"], match["m2"], match["d2"])
        if not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31):
            return None
        return utc_ms(int(y), int(mo) - 1, int(d), int(match["h"] or 0), int(match["mi"] or 0), int(match["s"] or 0))
    try:  # V8's legacy parser, for the other forms events carry: RFC 2822 and its relatives
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # no zone: local time, and Segment's servers run in UTC
        return utc_ms(parsed.year, parsed.month - 1, parsed.day, parsed.hour, parsed.minute, parsed.second)
    offset = parsed.utcoffset().total_seconds() * 1000  # type: ignore[union-attr]
    local = utc_ms(parsed.year, parsed.month - 1, parsed.day, parsed.hour, parsed.minute, parsed.second)
    return None if local is None else clip(local - offset)


def _es_iso_ms(match: re.Match) -> int | None:
    year_text = match["year"]
    if year_text == "-000000":
        return None  # the spec forbids minus zero as a year
    year = int(year_text)
    month, day = int(match["month"] or 1), int(match["day"] or 1)
    hour, minute, second = int(match["hour"] or 0), int(match["minute"] or 0), int(match["second"] or 0)
    millis = int((match["fraction"] or "0")[:3].ljust(3, "0"))
    # V8 checks the ranges, not the calendar: day 31 of any month rolls over into the next one
    if not (1 <= month <= 12 and 1 <= day <= 31 and minute <= 59 and second <= 59):
        return None
    if hour > 23 and (hour != 24 or minute or second or millis):
        return None
    days = _days_from_civil(year, month, 1) + day - 1
    ms = days * _MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis
    zone = match["zone"]
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        zone_hours, zone_minutes = int(zone[1:3]), int(zone[-2:])
        if zone_hours > 23 or zone_minutes > 59:
            return None
        ms -= sign * (zone_hours * 60 + zone_minutes) * 60_000
    return clip(ms)


_DAYJS_PARSE = re.compile(r"^(\d{4})[-/]?(\d{1,2})?[-/]?(\d{0,2})[Tt\s]*(\d{1,2})?:?(\d{1,2})?:?(\d{1,2})?[.:]?(\d+)?$")


def dayjs_ms(value: Any) -> int | None:
    """`dayjs(value)` as a time: its own pattern for a string not ending in Z (read in UTC, Segment's servers' zone),
    else `new Date(value)`; None when invalid (dayjs(null) is invalid; undefined would be "now", never passed)."""
    if value is None:
        return None
    if isinstance(value, str) and value[-1:] not in ("Z", "z"):
        m = _DAYJS_PARSE.match(value)
        if m:
            year, month, day, hour, minute, second, fraction = m.groups()
            # `d[2] - 1 || 0`, `d[3] || 1`, `d[4] || 0` ...: an empty or absent part takes the default
            return utc_ms(int(year), (int(month) - 1) if month else 0, int(day) if day else 1,
                          int(hour) if hour else 0, int(minute) if minute else 0, int(second) if second else 0,
                          int((fraction or "0")[:3]))
    return date_ms(value)


def iso_string(ms: int) -> str:
    """`Date.prototype.toISOString`: years 0-9999 with four digits, others signed with six."""
    days, rest = divmod(ms, _MS_PER_DAY)
    year, month, day = _civil_from_days(days)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{'+' if year > 0 else '-'}{abs(year):06d}"
    return f"{year_text}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def ymd(ms: int) -> str:
    """dayjs `format('YYYY-MM-DD')` (its year is padded at the start to four characters, sign included)."""
    year, month, day = _civil_from_days(ms // _MS_PER_DAY)
    return f"{str(year).rjust(4, '0')}-{month:02d}-{day:02d}"

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


def json_number(value: int | float) -> Any:
    """One number as JSON.stringify writes it (see `json_numbers`)."""
    if value.__class__ is int:
        return value if -_SAFE_INT < value < _SAFE_INT else _big_int(value)
    if value != value or math.isinf(value):
        return None
    if value.is_integer() and abs(value) < 1e21:
        # beyond 2**53 JavaScript writes the shortest digits that read back (1e17+8 as 100000000000000000)
        return int(value) if -_SAFE_INT < value < _SAFE_INT else int(number_string(value))
    return value


def json_numbers(value: Any) -> Any:
    """`value` with its numbers as JSON.stringify sees them: an integral float below 1e21 becomes an int (JSON.parse
    gave JavaScript one number type), NaN and Infinity become None, and an int beyond 2**53 is the double JSON.parse
    made of it (written with JavaScript's digits: 2**60+1 is 1152921504606847000, 10**22 is 1e+22). Containers are
    copied only when they change."""
    cls = value.__class__
    if cls is float or cls is int:
        return json_number(value)
    if isinstance(value, dict):
        changed = None
        for key, item in value.items():
            cls = item.__class__
            if cls is str or cls is bool or item is None or (cls is int and -_SAFE_INT < item < _SAFE_INT):
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


_SAFE_INT = 2**53


def _big_int(value: int) -> int | float | None:
    """An int JSON.parse could not hold exactly, as the double it became (None for one beyond the doubles: Infinity,
    which JSON.stringify writes as null)."""
    try:
        double = float(value)
    except OverflowError:
        return None
    if abs(double) < 1e21:
        return int(number_string(double))  # the digits String(double) writes (1152921504606847000), as an int
    return double  # Python writes a double >= 1e21 as JavaScript does (1e+22, 4.27468923456912e+21)


def json_text(value: Any) -> str:
    """`JSON.stringify(value)`: compact, non-ASCII kept, numbers written as JavaScript writes them, a lone surrogate
    escaped (well-formed JSON.stringify; Python would write it raw, which no UTF-8 encoder takes)."""
    value = json_numbers(value)
    if not _has_odd_float(value):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    else:
        text = _stringify(value)  # a float Python writes otherwise (1e-07 for 1e-7): rare enough to encode by hand
    if _SURROGATE.search(text):  # json.loads pairs valid surrogates: any left in a str is lone
        text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


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


def js_string(value: Any) -> str:
    """`String(value)` for a JSON value (an array joins its items with commas, null and undefined items as "")."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number_string(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"


def is_array_index(key: str) -> bool:
    """A property key that is an array index in JavaScript: canonical ASCII digits ("0", "12"; not "01", not "١٢")
    below 2**32 - 1. Objects list such keys first, ascending (JSON.stringify's key order)."""
    return key.isdigit() and key.isascii() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1


def js_index(key: Any, length: int) -> int | None:
    """The element `array[key]` reads in JavaScript (key made a property key with String()): its index, or None
    when that is undefined. `arr["1"]`, `arr[1.0]` and `arr[[1]]` are `arr[1]`; `arr["01"]`, `arr[-1]` are not."""
    if key.__class__ is int:
        return key if 0 <= key < length else None
    text = js_string(key)
    return int(text) if is_array_index(text) and int(text) < length else None


def to_number(text: str) -> float:
    """`Number(text)` for a string (NaN when it is not a number literal)."""
    stripped = text.strip(_JS_WHITESPACE_TEXT)
    if stripped == "":
        return 0.0
    match = _NUMBER_LITERAL.fullmatch(stripped)
    if match is None:
        return math.nan
    if match["decimal"] is not None:  # the common case first
        return float(stripped)
    if match["infinity"] is not None:
        return -math.inf if stripped[0] == "-" else math.inf
    base = {"x": 16, "o": 8, "b": 2}[stripped[1].lower()]
    return float(int(stripped[2:], base))


# StringNumericLiteral: decimal, Infinity, or 0x / 0o / 0b integers (no sign before those)
_NUMBER_LITERAL = re.compile(r"(?P<decimal>[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)|(?P<infinity>[+-]?Infinity)"
                             r"|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+")


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


# The ES date-time string format with a T (ASCII digits only: Python's \d would take other scripts' digits). V8 reads
# it as _v8_parse does; this regex is the fast path for the times events usually carry.
_ES_ISO = re.compile(
    r"(?P<year>[+-][0-9]{6}|[0-9]{4})(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2}))?)?"
    r"(?:[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?)?"
    r"(?P<zone>[Zz]|[+-][0-9]{2}:?[0-9]{2})?)?")


def date_ms(value: Any) -> int | None:
    """`new Date(value).getTime()` for a number or a string (None when it is NaN)."""
    if value is None or isinstance(value, bool):
        return int(value or 0)  # ToNumber: null is 0, true 1
    if isinstance(value, (int, float)):
        return clip(value)
    if not isinstance(value, str):
        return None
    match = _ES_ISO.fullmatch(value)
    if match:
        return _es_iso_ms(match)
    return _v8_parse(value)  # no trimming: V8 refuses ' 2026-11-20T10:00:00Z' (oracle case 191)


# -- V8's date parser (src/date/dateparser-inl.h, dateparser.cc): the ES5 ISO form, then the legacy parser from
# wherever the ES5 form stopped. Local time is UTC (Segment's servers' zone).

JS_WHITESPACE = frozenset("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                          "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")
_JS_WHITESPACE_TEXT = "".join(JS_WHITESPACE)
_MONTH, _AM_PM, _ZONE_NAME, _TIME_SEPARATOR, _INVALID = range(5)
_KEYWORDS = [("jan", _MONTH, 1), ("feb", _MONTH, 2), ("mar", _MONTH, 3), ("apr", _MONTH, 4), ("may", _MONTH, 5),
             ("jun", _MONTH, 6), ("jul", _MONTH, 7), ("aug", _MONTH, 8), ("sep", _MONTH, 9), ("oct", _MONTH, 10),
             ("nov", _MONTH, 11), ("dec", _MONTH, 12), ("am", _AM_PM, 0), ("pm", _AM_PM, 12),
             ("ut", _ZONE_NAME, 0), ("utc", _ZONE_NAME, 0), ("z", _ZONE_NAME, 0), ("gmt", _ZONE_NAME, 0),
             ("cdt", _ZONE_NAME, -5), ("cst", _ZONE_NAME, -6), ("edt", _ZONE_NAME, -4), ("est", _ZONE_NAME, -5),
             ("mdt", _ZONE_NAME, -6), ("mst", _ZONE_NAME, -7), ("pdt", _ZONE_NAME, -7), ("pst", _ZONE_NAME, -8),
             ("t", _TIME_SEPARATOR, 0)]
# Tokens: ("num", value, length) | ("sym", char) | ("kw", type, value, length) | ("ws",) | ("unknown",) | ("end",)
_END = ("end",)


def _keyword(word: str) -> tuple:
    """KeywordTable::Lookup: the first three characters lowercased (c | 0x20); a longer word only for a month."""
    prefix = "".join(chr(ord(c) | 0x20) for c in word[:3])
    length = len(word.encode("utf-16-le", "surrogatepass")) // 2  # UTF-16 code units, as V8 counts
    for name, kind, value in _KEYWORDS:
        if prefix == name and (length <= 3 or kind == _MONTH):
            return ("kw", kind, value, length)
    return ("kw", _INVALID, 0, length)


def _tokens(text: str) -> list[tuple]:
    """DateStringTokenizer::Scan over the whole string (it is context-free)."""
    out: list[tuple] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if "0" <= c <= "9":
            start = i
            while i < n and text[i] == "0":
                i += 1
            digits = i
            while i < n and "0" <= text[i] <= "9":
                i += 1
            significant = text[digits:i][:9]  # ReadUnsignedNumeral: 9 significant digits, the rest skipped
            out.append(("num", int(significant) if significant else 0, i - start))
        elif c in ":-+.)":
            out.append(("sym", c))
            i += 1
        elif c >= "A" and c not in JS_WHITESPACE:
            start = i
            while i < n and text[i] >= "A" and text[i] not in JS_WHITESPACE:
                i += 1
            out.append(_keyword(text[start:i]))
        elif c in JS_WHITESPACE:
            out.append(("ws",))
            i += 1
        elif c == "(":
            balance = 0
            while True:  # SkipParentheses
                ch = text[i] if i < n else ""
                if ch == ")":
                    balance -= 1
                elif ch == "(":
                    balance += 1
                i += 1
                if not (balance > 0 and i < n):
                    break
            out.append(("unknown",))
        else:
            out.append(("unknown",))
            i += 1
    out.append(_END)
    return out


class _Scanner:
    __slots__ = ("tokens", "pos")

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple:
        return self.tokens[self.pos]

    def next(self) -> tuple:
        token = self.tokens[self.pos]
        if token is not _END:
            self.pos += 1
        return token

    def skip(self, symbol: str) -> bool:
        if self.tokens[self.pos] == ("sym", symbol):
            self.pos += 1
            return True
        return False


def _fixed(token: tuple, length: int) -> bool:
    return token[0] == "num" and token[2] == length


def _is_sign(token: tuple) -> bool:
    return token[0] == "sym" and token[1] in "+-"


def _is_z(token: tuple) -> bool:
    return token[0] == "kw" and token[1] == _ZONE_NAME and token[3] == 1 and token[2] == 0


def _millis(token: tuple) -> int:
    """ReadMilliseconds: the first three significant digits of the numeral."""
    number, length = token[1], token[2]
    if length == 1:
        return number * 100
    if length == 2:
        return number * 10
    if length > 3:
        return number // 10 ** (min(length, 9) - 3)
    return number


class _Parts:
    """V8's DayComposer, TimeComposer and TimeZoneComposer in one."""

    __slots__ = ("day", "named_month", "iso", "time", "hour_offset", "sign", "zone_hour", "zone_minute")

    def __init__(self) -> None:
        self.day: list[int] = []
        self.named_month: int | None = None
        self.iso = False
        self.time: list[int] = []
        self.hour_offset: int | None = None
        self.sign: int | None = None
        self.zone_hour: int | None = None
        self.zone_minute: int | None = None

    def add_day(self, n: int) -> bool:
        if len(self.day) < 3:
            self.day.append(n)
            return True
        return False

    def add_time(self, n: int) -> bool:
        if len(self.time) < 4:
            self.time.append(n)
            return True
        return False

    def add_final_time(self, n: int) -> bool:
        if not self.add_time(n):
            return False
        self.time.extend([0] * (4 - len(self.time)))
        return True

    def time_expecting(self, n: int) -> bool:
        index = len(self.time)
        return (index == 1 and 0 <= n <= 59) or (index == 2 and 0 <= n <= 59) or (index == 3 and 0 <= n <= 999)

    def set_zone(self, hours: int) -> None:
        self.sign = -1 if hours < 0 else 1
        self.zone_hour, self.zone_minute = abs(hours), 0

    def zone_expecting(self, n: int) -> bool:
        return self.zone_hour is not None and self.zone_minute is None and 0 <= n <= 59

    def zone_is_utc(self) -> bool:
        return self.zone_hour == 0 and self.zone_minute == 0

    def write(self) -> int | None:
        if not self.day:
            return None
        comp = self.day + [1] * (3 - len(self.day))  # index_ is 3 from here on, as in DayComposer::Write
        year = 0
        if self.named_month is None:
            if self.iso or not 1 <= comp[0] <= 31:
                year, month, day = comp
            else:
                month, day, year = comp
        else:
            month = self.named_month
            if not 1 <= comp[0] <= 31:
                year, day = comp[0], comp[1]
            else:
                day, year = comp[0], comp[1]
        if not self.iso:
            if 0 <= year <= 49:
                year += 2000
            elif 50 <= year <= 99:
                year += 1900
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return None
        hour, minute, second, millis = self.time + [0] * (4 - len(self.time))
        if self.hour_offset is not None:
            if not 0 <= hour <= 12:
                return None
            hour = hour % 12 + self.hour_offset
        if not (0 <= hour <= 23 and minute <= 59 and second <= 59 and millis <= 999):
            if hour != 24 or minute or second or millis:
                return None
        offset = 0
        if self.sign is not None:
            total = (self.zone_hour or 0) * 3600 + (self.zone_minute or 0) * 60
            if total > 2**31 - 1:
                return None
            offset = self.sign * total
        days = _days_from_civil(year, month, 1) + day - 1
        ms = days * _MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis
        return clip(ms - offset * 1000)


def _v8_parse(text: str) -> int | None:
    """`Date.parse(text)` as V8 does it, for any string (DateParser::Parse)."""
    scanner = _Scanner(text)
    parts = _Parts()
    token = _es5(scanner, parts)
    if token is None:
        return None
    has_read_number = bool(parts.day)
    while token is not _END:
        kind = token[0]
        if kind == "num":
            has_read_number = True
            n = token[1]
            if scanner.skip(":"):
                if scanner.skip(":"):
                    if parts.time:
                        return None
                    parts.add_time(n)
                    parts.add_time(0)
                else:
                    if not parts.add_time(n):
                        return None
                    if scanner.peek() == ("sym", "."):
                        scanner.next()
            elif scanner.skip(".") and parts.time_expecting(n):  # the "." is consumed either way
                parts.add_time(n)
                if scanner.peek()[0] != "num":
                    return None
                parts.add_final_time(_millis(scanner.next()))
            elif parts.zone_expecting(n):
                parts.zone_minute = n
            elif parts.time_expecting(n):
                parts.add_final_time(n)
                peek = scanner.peek()
                if not (peek is _END or peek[0] == "ws" or _is_z(peek) or _is_sign(peek)):
                    return None
            else:
                if not parts.add_day(n):
                    return None
                scanner.skip("-")
        elif kind == "kw":
            word_type, value = token[1], token[2]
            if word_type == _AM_PM and parts.time:
                parts.hour_offset = value
            elif word_type == _MONTH:
                parts.named_month = value
                scanner.skip("-")
            elif word_type == _ZONE_NAME and has_read_number:
                parts.set_zone(value)
            elif has_read_number or scanner.peek()[0] == "num":
                return None  # garbage words are illegal once a number has been read, or right before one
        elif _is_sign(token) and (parts.zone_is_utc() or parts.time):
            parts.sign = -1 if token[1] == "-" else 1
            n = length = 0
            if scanner.peek()[0] == "num":
                number = scanner.next()
                n, length = number[1], number[2]
            has_read_number = True
            if scanner.peek() == ("sym", ":"):
                parts.zone_hour, parts.zone_minute = n, None
            elif length in (1, 2):
                parts.zone_hour, parts.zone_minute = n, 0
            elif length in (3, 4):
                parts.zone_hour, parts.zone_minute = n // 100, n % 100
            else:
                return None
        elif (_is_sign(token) or token == ("sym", ")")) and has_read_number:
            return None
        token = scanner.next()
    return parts.write()


def _es5(scanner: _Scanner, parts: _Parts) -> tuple | None:
    """ParseES5DateTime: the token the legacy parser goes on from (`_END` when the ES5 form was read whole), None
    when the string is invalid."""
    if _is_sign(scanner.peek()):
        sign_token = scanner.next()
        if not _fixed(scanner.peek(), 6):
            return sign_token
        sign = -1 if sign_token[1] == "-" else 1
        year = scanner.peek()[1]
        if sign < 0 and year == 0:
            return sign_token
        scanner.next()
        parts.add_day(sign * year)
    elif _fixed(scanner.peek(), 4):
        parts.add_day(scanner.next()[1])
    else:
        return scanner.next()
    if scanner.skip("-"):
        if not _fixed(scanner.peek(), 2) or not 1 <= scanner.peek()[1] <= 12:
            return scanner.next()
        parts.add_day(scanner.next()[1])
        if scanner.skip("-"):
            if not _fixed(scanner.peek(), 2) or not 1 <= scanner.peek()[1] <= 31:
                return scanner.next()
            parts.add_day(scanner.next()[1])
    peek = scanner.peek()
    if not (peek[0] == "kw" and peek[1] == _TIME_SEPARATOR):
        if peek is not _END:
            return scanner.next()
    else:
        scanner.next()
        if not _fixed(scanner.peek(), 2) or not 0 <= scanner.peek()[1] <= 24:
            return None
        hour_is_24 = scanner.peek()[1] == 24
        parts.add_time(scanner.next()[1])
        if not scanner.skip(":"):
            return None
        if not _fixed(scanner.peek(), 2) or not 0 <= scanner.peek()[1] <= 59 or (hour_is_24 and scanner.peek()[1]):
            return None
        parts.add_time(scanner.next()[1])
        if scanner.skip(":"):
            if not _fixed(scanner.peek(), 2) or not 0 <= scanner.peek()[1] <= 59 or (hour_is_24 and scanner.peek()[1]):
                return None
            parts.add_time(scanner.next()[1])
            if scanner.skip("."):
                if scanner.peek()[0] != "num" or (hour_is_24 and scanner.peek()[1]):
                    return None
                parts.add_time(_millis(scanner.next()))
        if _is_z(scanner.peek()):
            scanner.next()
            parts.set_zone(0)
        elif _is_sign(scanner.peek()):
            parts.sign = 1 if scanner.next()[1] == "+" else -1
            if _fixed(scanner.peek(), 4):
                hourmin = scanner.next()[1]
                hour, minute = hourmin // 100, hourmin % 100
                if not (0 <= hour <= 23 and 0 <= minute <= 59):
                    return None
                parts.zone_hour, parts.zone_minute = hour, minute
            else:
                if not _fixed(scanner.peek(), 2) or not 0 <= scanner.peek()[1] <= 23:
                    return None
                parts.zone_hour = scanner.next()[1]
                if not scanner.skip(":"):
                    return None
                if not _fixed(scanner.peek(), 2) or not 0 <= scanner.peek()[1] <= 59:
                    return None
                parts.zone_minute = scanner.next()[1]
        if scanner.peek() is not _END:
            return None
    if parts.sign is None and not parts.time:
        parts.set_zone(0)  # a date-only form is UTC (local time is UTC here anyway)
    parts.iso = True
    return _END


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


# JavaScript's \d is ASCII and its \s is JS_WHITESPACE (Python's are wider and narrower).
JS_SPACE_CLASS = "[\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]"
_DAYJS_PARSE = re.compile(r"^([0-9]{4})[-/]?([0-9]{1,2})?[-/]?([0-9]{0,2})(?:[Tt]|" + JS_SPACE_CLASS +
                          r")*([0-9]{1,2})?:?([0-9]{1,2})?:?([0-9]{1,2})?[.:]?([0-9]+)?\Z")  # \Z: JS's $ (no newline)


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

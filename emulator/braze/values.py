"""Braze's value formats: times, countries, emails, time zones (user_attributes_object.md, custom_attributes.md)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from ..clock import iso

UTC = timezone.utc

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TZ_SUFFIX = r"(Z|z|[+-]\d{2}:?\d{2})?"
# yyyy-MM-dd'T'HH:mm:ss:SSSZ (a colon before the milliseconds), one of Braze's documented event/attribute forms.
_COLON_MILLIS = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2}):(\d{1,6})" + _TZ_SUFFIX + "$")
_US_DATE = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$")  # MM/dd/yyyy, and "12-1-2021" (custom_attributes.md)
# ddd MM dd HH:mm:ss.TZD YYYY, e.g. "Thu 07 16 19:20:45.+01:00 2013" (Braze's form, oddly; a month name is also taken).
_CTIME = re.compile(r"^[A-Za-z]{3} ([A-Za-z]{3}|\d{1,2}) (\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:[. ]?(Z|[+-]\d{2}:?\d{2}))? (\d{4})$")
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_ISOISH = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?" + _TZ_SUFFIX + "$")


def _tz(text: str | None) -> timezone:
    if not text or text in "Zz":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def parse_time(value: object) -> datetime | None:
    """A Braze time in any documented form, as an aware UTC datetime; None when it is not one.

    No time zone means UTC ("midnight UTC" for a bare date); a year below 0 or above 3000 is not a time
    (Braze stores it as a string).
    """
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    # Every form below starts with a digit or with three letters and a space: most strings are no time at all.
    if not (text[:1].isdigit() or text[3:4] == " "):
        return None
    dt: datetime | None = None
    try:
        if _ISOISH.match(text):
            dt = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        elif match := _COLON_MILLIS.match(text):
            y, mo, d, h, mi, s, frac, tz = match.groups()
            dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int(frac.ljust(6, "0")[:6]), tzinfo=_tz(tz))
        elif match := _US_DATE.match(text):
            mo, d, y = match.groups()
            dt = datetime(int(y), int(mo), int(d), tzinfo=UTC)
        elif match := _CTIME.match(text):
            mo, d, h, mi, s, tz, y = match.groups()
            month = _MONTHS.get(mo.lower()) if mo.isalpha() else int(mo)
            if month is None:
                return None
            dt = datetime(int(y), month, int(d), int(h), int(mi), int(s), tzinfo=_tz(tz))
    except (ValueError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    if not 0 < dt.year <= 3000:
        return None
    try:
        return dt.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def time_text(dt: datetime) -> str:
    """How the emulator stores and exports a time: ISO, UTC, milliseconds (sortable as text)."""
    return iso(dt)


def time_text_of(value: object) -> str | None:
    """`time_text(parse_time(value))`, None when `value` is not a time."""
    return _time_text_of(value) if isinstance(value, str) else None


@lru_cache(maxsize=4096)
def _time_text_of(value: str) -> str | None:
    # cached: the objects of a /users/track batch repeat their times and attribute values
    dt = parse_time(value)
    return None if dt is None else iso(dt)


def is_email(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 255 and bool(_EMAIL.match(value))


@lru_cache(maxsize=1)
def _time_zones() -> frozenset:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def is_time_zone(value: object) -> bool:
    return isinstance(value, str) and value in _time_zones()


# Common names the country list spells differently; Braze maps "best effort" (user_attributes_object.md).
_COUNTRY_ALIASES = {
    "usa": "US", "u.s.": "US", "u.s.a.": "US", "united states of america": "US", "america": "US",
    "uk": "GB", "u.k.": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "south korea": "KR", "korea": "KR", "republic of korea": "KR",
    "north korea": "KP", "russia": "RU", "russian federation": "RU", "czech republic": "CZ", "czechia": "CZ",
    "holland": "NL", "the netherlands": "NL", "deutschland": "DE", "viet nam": "VN", "vietnam": "VN",
    "iran": "IR", "syria": "SY", "laos": "LA", "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ",
    "moldova": "MD", "ivory coast": "CI", "cote d'ivoire": "CI", "côte d'ivoire": "CI", "east timor": "TL",
    "hong kong": "HK", "taiwan": "TW", "macau": "MO", "macao": "MO", "puerto rico": "PR", "españa": "ES",
    "brasil": "BR", "méxico": "MX", "uae": "AE", "emirates": "AE", "vatican": "VA", "palestine": "PS",
    "eswatini": "SZ", "swaziland": "SZ", "burma": "MM", "cape verde": "CV", "cabo verde": "CV",
    "macedonia": "MK", "north macedonia": "MK", "greenland": "GL", "guernsey": "GG", "jersey": "JE",
    "isle of man": "IM", "gibraltar": "GI", "bermuda": "BM", "kosovo": "XK",
}


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    from faker.providers.date_time import Provider  # ISO 3166 names and codes ship with faker

    table: dict[str, str] = {}
    for country in Provider.countries:
        table[country.name.lower()] = country.alpha_2_code
        table[country.alpha_2_code.lower()] = country.alpha_2_code
        table[country.alpha_3_code.lower()] = country.alpha_2_code
    for code in _COUNTRY_ALIASES.values():
        table.setdefault(code.lower(), code)
    table.update(_COUNTRY_ALIASES)
    return table


def country_code(value: str) -> str | None:
    """ISO-3166-1 alpha-2 for a code or a name ("Australia" -> "AU"); None when nothing matches (Braze sets NULL)."""
    return _countries().get(" ".join(value.strip().lower().split()))

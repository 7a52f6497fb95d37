"""JSON request bodies as the real services' parsers leave them.

JSON may spell a lone UTF-16 surrogate (`"\\ud800"` without its pair). Python keeps it in the string, which then can
be neither stored (SQLite wants UTF-8) nor sent; Go's encoding/json, which Segment's Tracking API runs on, turns it
into U+FFFD, and so do we, on both apps (Braze does not say; a replacement character beats a lost request).
"""
from __future__ import annotations

import json
import re
from typing import Any

# Any surrogate escape (a literal-led pattern: a fast scan of bodies that have none, nearly all of them).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_ESCAPE_BYTES = re.compile(_SURROGATE_ESCAPE.pattern.encode())
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads pairs valid surrogates: any left in a str is lone


def loads(text: str | bytes, **options: Any) -> Any:
    """`json.loads`, with lone surrogates replaced by U+FFFD."""
    value = json.loads(text, **options)
    return _replace_lone_surrogates(value) if _has_lone_escape(text) else value


def _has_lone_escape(text: str | bytes) -> bool:
    """A high surrogate escape not followed by a low one, or a low one not after a high one: a pair (an emoji as
    analytics-python writes it, ensure_ascii) is not lone and needs no walk over the body."""
    pattern = _SURROGATE_ESCAPE_BYTES if isinstance(text, (bytes, bytearray)) else _SURROGATE_ESCAPE
    expect_low_at = None  # where the low half of the last high escape has to start
    for match in pattern.finditer(text):
        digit = match.group()[3:4]
        high = (digit.decode() if isinstance(digit, bytes) else digit) in "89abAB"
        if expect_low_at is not None:
            if high or match.start() != expect_low_at:
                return True  # the previous high escape had no low one right after it
            expect_low_at = None
        elif not high:
            return True  # a low escape without a high one before it
        else:
            expect_low_at = match.end()
    return expect_low_at is not None


def _replace_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_lone_surrogates(v) for v in value]
    return value

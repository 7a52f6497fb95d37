"""JSON request bodies as the real services' parsers leave them.

JSON may spell a lone UTF-16 surrogate (`"\\ud800"` without its pair). Python keeps it in the string, which then can
be neither stored (SQLite wants UTF-8) nor sent; Go's encoding/json, which Segment's Tracking API runs on, turns it
into U+FFFD, and so do we, on both apps (Braze does not say; a replacement character beats a lost request).
"""
from __future__ import annotations

import json
import re
from typing import Any

# A high surrogate escape not followed by a low one, or a low one not preceded by a high one: a pair (an emoji as
# analytics-python writes it, ensure_ascii) is not lone and needs no walk over the body.
_LONE = r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F]"
_SURROGATE_ESCAPE = re.compile(_LONE)
_SURROGATE_ESCAPE_BYTES = re.compile(_LONE.encode())
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads pairs valid surrogates: any left in a str is lone


def loads(text: str | bytes, **options: Any) -> Any:
    """`json.loads`, with lone surrogates replaced by U+FFFD."""
    value = json.loads(text, **options)
    escaped = _SURROGATE_ESCAPE_BYTES if isinstance(text, (bytes, bytearray)) else _SURROGATE_ESCAPE
    return _replace_lone_surrogates(value) if escaped.search(text) else value


def _replace_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_lone_surrogates(v) for v in value]
    return value

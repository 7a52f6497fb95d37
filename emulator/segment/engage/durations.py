"""Durations of the Engage query language: `7 days`, `1 hour`, `30 seconds`.

The docs write a whole number followed by a unit word, singular or plural (`within(7 days)`, `expires_after(1 hour)`);
`within`/`between` and the relative-date comparators take hours or days, `expires_after` also takes seconds
(reference/segment-query-language.md §2.3). Abbreviations such as `7d` appear nowhere in the docs and are refused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

#: unit word (singular or plural, any case) -> canonical singular unit
UNIT_WORDS = {"second": "second", "seconds": "second", "hour": "hour", "hours": "hour", "day": "day", "days": "day"}
UNIT_SECONDS = {"second": 1, "hour": 3600, "day": 86400}

_DURATION = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True)
class Duration:
    """A whole number of seconds, hours or days, as written in the query (`7 days` -> Duration(7, "day"))."""

    amount: int
    unit: str  # "second" | "hour" | "day"

    @property
    def seconds(self) -> int:
        return self.amount * UNIT_SECONDS[self.unit]

    @property
    def timedelta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}{'' if self.amount == 1 else 's'}"


def parse_duration(text: str) -> Duration:
    """Parse `7 days` / `1 hour` / `30 seconds` (case-insensitive); ValueError names what is wrong."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration such as '7 days', got {text!r}")
    unit = UNIT_WORDS.get(match.group(2).lower())
    if unit is None:
        raise ValueError(f"unknown time unit {match.group(2)!r}: use seconds, hours or days")
    return Duration(int(match.group(1)), unit)

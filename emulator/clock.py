"""The sandbox clock: the one source of time for everything the emulator writes.

A manual clock stands still until a test or scenario moves it; a real-time clock follows the wall clock
from the instant it was started, and can still be moved forward. Time never goes backwards, except
through `Sandbox.reset()`, which rewinds a manual clock to its start so every test begins alike.
"""
from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

UTC = timezone.utc
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$", re.I)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ClockError(ValueError):
    """A move the clock refuses (backwards, or not a duration / instant)."""


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """`"31d"`, `"2h"`, `"90s"`, `"1.5h"`, a number of seconds, or a timedelta."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ClockError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        return timedelta(seconds=text)
    if isinstance(text, str):
        match = _DURATION.match(text)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
    raise ClockError(f"not a duration: {text!r} (expected a number and a unit: ms, s, m, h, d or w, e.g. '31d')")


def parse_instant(value: str | datetime) -> datetime:
    """An ISO-8601 instant; a naive one is taken as UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ClockError(f"not an ISO-8601 instant: {value!r}") from None
    else:
        raise ClockError(f"not an ISO-8601 instant: {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def iso(dt: datetime) -> str:
    """Segment's and Braze's timestamp form: UTC, milliseconds, `Z`."""
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


Listener = Callable[[datetime, datetime], None]


class Clock:
    """Manual (`realtime=False`) or wall-clock-following (`realtime=True`) time, movable forward only."""

    def __init__(self, start: datetime | str | None = None, realtime: bool = False) -> None:
        self.start = parse_instant(start) if start is not None else DEFAULT_START
        if realtime and start is None:
            self.start = datetime.now(UTC)
        self.realtime = realtime
        self._offset = timedelta(0)
        self._anchor = time.monotonic()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def now(self) -> datetime:
        if self.realtime:
            return self.start + self._offset + timedelta(seconds=time.monotonic() - self._anchor)
        return self.start + self._offset

    @property
    def moved(self) -> timedelta:
        """How far explicit moves have put the clock ahead (of its start, or of the wall clock when real-time)."""
        return self._offset

    def on_move(self, listener: Listener) -> None:
        """Call `listener(old, new)` after every explicit move (not for real time passing)."""
        self._listeners.append(listener)

    def advance(self, duration: str | int | float | timedelta | None = None, **parts: float) -> datetime:
        """`advance("31d")`, `advance(days=31)`, `advance(timedelta(...))`."""
        delta = parse_duration(duration) if duration is not None else timedelta(**parts)
        if delta < timedelta(0):
            raise ClockError("the sandbox clock never goes backwards")
        with self._lock:
            old = self.now()
            self._offset += delta
            new = self.now()
        self._notify(old, new)
        return new

    def set(self, instant: str | datetime) -> datetime:
        target = parse_instant(instant)
        with self._lock:
            old = self.now()
            if target < old:
                raise ClockError(f"the sandbox clock never goes backwards: it is {iso(old)}, asked for {iso(target)}")
            self._offset += target - old
            new = self.now()
        self._notify(old, new)
        return new

    def rewind_to_start(self) -> None:
        """Only for `Sandbox.reset()`: a reset sandbox starts its day again."""
        with self._lock:
            if self.realtime:  # a real-time clock restarts from the wall clock, never from the past
                self.start = datetime.now(UTC)
            self._offset = timedelta(0)
            self._anchor = time.monotonic()

    def _notify(self, old: datetime, new: datetime) -> None:
        for listener in list(self._listeners):
            listener(old, new)

    def describe(self) -> dict:
        return {"now": iso(self.now()), "mode": "realtime" if self.realtime else "manual", "start": iso(self.start)}

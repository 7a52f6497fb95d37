"""Fault rules: make an app answer an error or slow down, per route, with a probability or a count.

`{"app": "braze", "path": "/users/track", "status": 429, "retry_after": 2, "count": 1}` answers the next
request to /users/track with 429 and `Retry-After: 2`, then the rule is used up. `rate` (0..1) draws from
the sandbox RNG, so a seeded run fails the same requests every time. `latency_ms` delays the answer (and,
without `status`, only delays it). The body is shaped like the app's own errors.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sandbox import Sandbox

APPS = ("segment", "braze")
# What the real services say with these statuses (Braze: SPEC.md §2 "Rate limited: 429 {"message": "Rate Limited"}").
FAULT_MESSAGES = {429: "Rate Limited"}


class FaultError(ValueError):
    pass


@dataclass
class Fault:
    app: str
    path: str = "*"
    method: str | None = None
    status: int | None = None
    rate: float = 1.0
    count: int | None = None
    latency_ms: int = 0
    retry_after: float | None = None
    message: str | None = None
    body: Any = None  # answered as JSON instead of the app's error shape (e.g. a 201 with per-item errors)

    def matches(self, app: str, method: str, path: str) -> bool:
        if self.app != app or (self.method and self.method.upper() != method.upper()):
            return False
        if self.path == "*" or self.path == path:
            return True
        return self.path.endswith("*") and path.startswith(self.path[:-1])


def parse_fault(raw: Any) -> Fault:
    if not isinstance(raw, dict):
        raise FaultError("a fault must be an object")
    known = set(Fault.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise FaultError(f"unknown fault field(s) {sorted(unknown)}; known: {sorted(known)}")
    if raw.get("app") not in APPS:
        raise FaultError(f"fault.app must be one of {list(APPS)}")
    fault = Fault(**raw)
    if fault.status is not None and (not isinstance(fault.status, int) or not 100 <= fault.status <= 599):
        raise FaultError("fault.status must be an HTTP status code")
    if not isinstance(fault.rate, (int, float)) or not 0 <= fault.rate <= 1:
        raise FaultError("fault.rate must be a number from 0 to 1")
    if fault.count is not None and (not isinstance(fault.count, int) or fault.count < 1):
        raise FaultError("fault.count must be a positive integer")
    if not isinstance(fault.latency_ms, int) or fault.latency_ms < 0:
        raise FaultError("fault.latency_ms must be a non-negative integer")
    if fault.status is None and not fault.latency_ms:
        raise FaultError("a fault needs a status, a latency_ms, or both")
    if not isinstance(fault.path, str) or not (fault.path == "*" or fault.path.startswith("/")):
        raise FaultError("fault.path must be '*' or start with '/'")
    return fault


class Faults:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self.rules: list[Fault] = []
        self._lock = threading.Lock()

    def set(self, rules: list[Any]) -> list[Fault]:
        if not isinstance(rules, list):
            raise FaultError("faults must be a list")
        parsed = [parse_fault(rule) for rule in rules]
        with self._lock:
            self.rules = parsed
        return parsed

    def add(self, **rule: Any) -> Fault:
        fault = parse_fault(rule)
        with self._lock:
            self.rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.rules = []

    def describe(self) -> list[dict]:
        return [asdict(rule) for rule in self.rules]

    def draw(self, app: str, method: str, path: str) -> Fault | None:
        """The fault this request meets, if any (sleeping its latency); uses up one of its count."""
        with self._lock:
            for rule in self.rules:
                if not rule.matches(app, method, path):
                    continue
                if rule.rate < 1 and self.sandbox.ids.random() >= rule.rate:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count == 0:
                        self.rules.remove(rule)
                break
            else:
                return None
        if rule.latency_ms:
            time.sleep(rule.latency_ms / 1000)
        return rule if rule.status is not None else None

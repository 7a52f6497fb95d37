"""REST API keys, their permissions, rate limits and redelivery dedup for the Braze app.

Keys (`braze.rest_api_keys`): a plain string has every permission; `{key, permissions: [...]}` only those listed
(braze-docs `_docs/_api/basics.md`, "REST API key permissions"). The key comes from `Authorization: Bearer`, or
from the body's `api_key` (Braze's legacy form, still accepted).

Rate limits (`braze.rate_limits`, bucket -> `{limit, window_seconds}`) use fixed windows on the *sandbox* clock and
are counted per workspace, as Braze counts per company. Defaults, from braze-docs `api_limits.md`:

| bucket | endpoints | default | source |
| --- | --- | --- | --- |
| `users.track` | `/users/track` | 50,000 / 60 s | the long-standing documented limit; Braze's newer 3,000 / 3 s is one config line away |
| `users.export.ids` | `/users/export/ids` | 2,500 / 60 s | companies onboarded before 2024-08-22 (250 / min after) |
| `users.identity` | `/users/delete`, `/users/alias/new`, `/users/identify`, `/users/merge` | 20,000 / 60 s, shared | api_limits.md |
| `partners.cohorts` | `/partners/segment/cohorts[/users]` | 250,000 / 3,600 s | cohort_import.md |
| `default` | everything else | 250,000 / 3,600 s | api_limits.md |

The defaults are generous on purpose: a manual sandbox clock stands still, so a window never ends until the test
moves the clock, and a test or the Segment destination must not be throttled by accident. Configure a small limit
to exercise 429 handling. The counts live in memory (emptied by reset and by a restart, as a new window would be). Every answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset` (UTC epoch seconds, api_limits.md); a 429 adds `Retry-After` (seconds).

Redelivery: a request may carry `X-Emulator-Delivery-Id`. The first answer to a delivery id is stored in the same
transaction as its effects; the same id on the same path again is answered with the stored status and body
and applies nothing, so a destination that retries after a lost answer does not count an event twice.
"""
from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..clock import iso
from . import errors

if TYPE_CHECKING:
    from ..sandbox import Sandbox

ALL = "*"
RATE_LIMIT_DEFAULTS: dict[str, dict[str, int]] = {
    "users.track": {"limit": 50_000, "window_seconds": 60},
    "users.export.ids": {"limit": 2_500, "window_seconds": 60},
    "users.identity": {"limit": 20_000, "window_seconds": 60},
    "partners.cohorts": {"limit": 250_000, "window_seconds": 3_600},
    "default": {"limit": 250_000, "window_seconds": 3_600},
}
DELIVERY_HEADER = "X-Emulator-Delivery-Id"


def check_rest_key(entry: Any) -> str | None:
    """Config check for one `rest_api_keys` entry."""
    if isinstance(entry, str):
        return None if entry else "a non-empty key"
    if isinstance(entry, dict):
        if set(entry) - {"key", "permissions", "name"}:
            return "a key as a string or {key, permissions, name}"
        if not isinstance(entry.get("key"), str) or not entry["key"]:
            return "a mapping with a non-empty string 'key'"
        perms = entry.get("permissions", [ALL])
        if not isinstance(perms, list) or not all(isinstance(p, str) and p for p in perms):
            return "'permissions' as a list of permission names such as users.track"
        return None
    return "a key as a string or {key, permissions}"


def check_rate_limits(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "a mapping of bucket -> {limit, window_seconds}"
    for bucket, spec in value.items():
        if bucket not in RATE_LIMIT_DEFAULTS:
            return f"a known bucket ({', '.join(RATE_LIMIT_DEFAULTS)}), not {bucket!r}"
        if not isinstance(spec, dict) or set(spec) - {"limit", "window_seconds"}:
            return f"{bucket}: a mapping with limit and window_seconds"
        for key, item in spec.items():
            if isinstance(item, bool) or not isinstance(item, int) or item < (0 if key == "limit" else 1):
                return f"{bucket}.{key}: a positive integer"
    return None


@dataclass
class RateState:
    limit: int
    remaining: int
    reset: int
    retry_after: int
    limited: bool

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                   "X-RateLimit-Reset": str(self.reset)}
        if self.limited:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class Auth:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self._windows: dict[str, tuple[float, int]] = {}  # bucket -> (window start, requests counted)
        self._windows_lock = threading.Lock()
        sandbox.on_reset(self._forget_windows)

    def _forget_windows(self) -> None:
        with self._windows_lock:  # a count being taken now is not written back over the reset
            self._windows.clear()

    # --- keys -----------------------------------------------------------------------------------
    def permissions(self, key: str | None) -> set[str] | None:
        """The permissions of a REST key, None when the key is unknown."""
        if not key:
            return None
        for entry in self.sandbox.config["braze"]["rest_api_keys"]:
            if isinstance(entry, str) and entry == key:
                return {ALL}
            if isinstance(entry, dict) and entry.get("key") == key:
                return set(entry.get("permissions", [ALL]))
        return None

    def authorize(self, key: str | None, permission: str) -> None:
        perms = self.permissions(key)
        if perms is None:
            raise errors.INVALID_API_KEY()
        if ALL not in perms and permission not in perms:
            raise errors.ACCESS_DENIED()

    def is_data_import_key(self, secret: Any) -> bool:
        return isinstance(secret, str) and secret in self.sandbox.config["braze"]["data_import_keys"]

    # --- rate limits ------------------------------------------------------------------------------
    def limit_for(self, bucket: str) -> tuple[int, int]:
        spec = dict(RATE_LIMIT_DEFAULTS.get(bucket, RATE_LIMIT_DEFAULTS["default"]))
        spec.update((self.sandbox.config["braze"].get("rate_limits") or {}).get(bucket, {}))
        return spec["limit"], spec["window_seconds"]

    def rate(self, bucket: str, count: bool = True) -> RateState:
        """Count one request against `bucket` (or only look, with count=False)."""
        limit, window = self.limit_for(bucket)
        now = self.sandbox.clock.now().timestamp()
        start = int(now // window) * window
        with self._windows_lock:
            window_start, used = self._windows.get(bucket, (start, 0))
            if window_start != start:
                used = 0
            limited = used >= limit
            if count and not limited:
                used += 1
                self._windows[bucket] = (start, used)
        reset = start + window
        return RateState(limit, max(0, limit - used), reset, max(1, math.ceil(reset - now)), limited)

    # --- redelivery -------------------------------------------------------------------------------
    def delivered(self, delivery_id: str, path: str) -> tuple[int, dict] | None:
        row = self.sandbox.store.execute("SELECT status, body FROM braze_deliveries WHERE delivery_id = ? AND path = ?",
                                         (delivery_id, path)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def remember(self, delivery_id: str, path: str, status: int, body: dict) -> None:
        self.sandbox.store.execute(
            "INSERT OR REPLACE INTO braze_deliveries (delivery_id, path, status, body, at) VALUES (?, ?, ?, ?, ?)",
            (delivery_id, path, status, json.dumps(body), iso(self.sandbox.clock.now())))

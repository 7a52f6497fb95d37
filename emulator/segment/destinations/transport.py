"""How a destination's request reaches its endpoint.

`endpoint: braze` means the sandbox's own Braze app: over HTTP when the sandbox is served (as in production),
through the WSGI transport otherwise. Any other value is a base URL reached over HTTP.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from ...sandbox import Sandbox

SANDBOX_BRAZE = "braze"
TIMEOUT_SECONDS = 30.0  # Segment's destination requests time out after at least 30 s (braze index.ts extendRequest)
DELIVERY_HEADER = "X-Emulator-Delivery-Id"


class TransportError(Exception):
    """No HTTP answer: `code` is the Node-style error code Segment reports (ECONNREFUSED, ETIMEDOUT, ...)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    latency_ms: float


class Transport:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self._clients: dict[str, "httpx.Client"] = {}

    def _client(self, endpoint: str) -> tuple["httpx.Client", bool]:
        import httpx

        own = endpoint == SANDBOX_BRAZE
        if own and "braze" in self.sandbox.urls:
            endpoint = self.sandbox.urls["braze"]
        key = "wsgi" if own and "braze" not in self.sandbox.urls else endpoint
        if key not in self._clients:
            if key == "wsgi":
                self._clients[key] = httpx.Client(transport=httpx.WSGITransport(app=self.sandbox.braze_app),
                                                  base_url="http://braze.emulator", timeout=TIMEOUT_SECONDS)
            else:
                self._clients[key] = httpx.Client(base_url=endpoint.rstrip("/"), timeout=TIMEOUT_SECONDS)
        return self._clients[key], own

    def send(self, endpoint: str, method: str, path: str, headers: dict[str, str], body: Any,
             delivery_id: str | None = None) -> Answer:
        import httpx

        client, own = self._client(endpoint)
        sent_headers = dict(headers)
        if own and delivery_id:
            # Only our own Braze understands it: it makes a redelivered request a no-op (at-least-once → exactly-once).
            sent_headers[DELIVERY_HEADER] = delivery_id
        started = time.perf_counter()
        try:
            response = client.request(method, path, json=body, headers=sent_headers)
        except httpx.ConnectError as exc:
            raise TransportError("ECONNREFUSED", str(exc)) from None
        except httpx.TimeoutException as exc:
            raise TransportError("ETIMEDOUT", str(exc) or "timed out") from None
        except httpx.TransportError as exc:
            raise TransportError("ECONNRESET", str(exc)) from None
        latency = (time.perf_counter() - started) * 1000
        try:
            payload: Any = response.json()
        except ValueError:
            payload = response.text
        return Answer(response.status_code, dict(response.headers), payload, latency)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

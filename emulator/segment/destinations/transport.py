"""How a destination's request reaches its endpoint.

`endpoint: braze` means the sandbox's own Braze app: over HTTP when the sandbox is served, as in production
(EMULATOR.md §1), and in the same process through a plain WSGI call otherwise (the Braze app sees the same request:
path, headers, JSON body, its journal, faults and rate limits). Any other value is a base URL reached over HTTP.
"""
from __future__ import annotations

import http.client
import socket
import io
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import unquote

from .jsvalues import json_text

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
        # Keep-alive connections to the sandbox's own served Braze, one per sending thread (worker, flush callers).
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._connections_lock = threading.Lock()

    def _client(self, endpoint: str) -> "httpx.Client":
        import httpx

        if endpoint not in self._clients:
            self._clients[endpoint] = httpx.Client(base_url=endpoint.rstrip("/"), timeout=TIMEOUT_SECONDS)
        return self._clients[endpoint]

    def send(self, endpoint: str, method: str, path: str, headers: dict[str, str], body: Any,
             delivery_id: str | None = None) -> Answer:
        if endpoint != SANDBOX_BRAZE:
            return self._send_http(endpoint, method, path, headers, body)
        sent_headers = dict(headers)
        if delivery_id:
            # Only our own Braze understands it: a redelivered request is a no-op (at-least-once -> exactly-once).
            sent_headers[DELIVERY_HEADER] = delivery_id
        served = self.sandbox.urls.get("braze")
        if served:
            return self._send_own(served, method, path, sent_headers, body)
        started = time.perf_counter()
        status, response_headers, content = call_wsgi(self.sandbox.braze_app, method, path, sent_headers,
                                                      _encode_json(body))
        return Answer(status, response_headers, _decode(content), (time.perf_counter() - started) * 1000)

    def _send_http(self, endpoint: str, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        import httpx

        client = self._client(endpoint)
        started = time.perf_counter()
        try:
            response = client.request(method, path, content=_encode_json(body),
                                      headers={"content-type": "application/json", **headers})
        except httpx.TransportError as exc:
            raise _no_answer(exc, timed_out=isinstance(exc, httpx.TimeoutException)) from None
        latency = (time.perf_counter() - started) * 1000
        return Answer(response.status_code, dict(response.headers), _decode(response.content), latency)

    def _send_own(self, base_url: str, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        """Our own Braze over HTTP through the standard library's client: a request costs a fraction of httpx's, and
        the server is known. A kept-alive connection the server dropped meanwhile is reopened once: the delivery
        id makes a request that did arrive a no-op the second time."""
        connection = self._own_connection(base_url)
        payload = _encode_json(body)
        sent = {"content-type": "application/json", **headers}
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                connection.request(method, path, body=payload, headers=sent)
                response = connection.getresponse()
                content = response.read()
                break
            except (http.client.HTTPException, OSError) as exc:
                connection.close()
                error = _no_answer(exc)
                if attempt == 2 or error.code != "ECONNRESET":  # only a dropped kept-alive connection is retried
                    raise error from None
        latency = (time.perf_counter() - started) * 1000
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, _decode(content), latency)

    def _own_connection(self, base_url: str) -> http.client.HTTPConnection:
        connections = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        connection = connections.get(base_url)
        if connection is None:
            host, _, port = base_url.split("://", 1)[-1].rstrip("/").partition(":")
            connection = http.client.HTTPConnection(host, int(port or 80), timeout=TIMEOUT_SECONDS)
            connections[base_url] = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


_PYTHON_EXPONENT = re.compile(r"\de-\d")  # 1e-07: where Python's float text differs from JavaScript's


def _encode_json(body: Any) -> bytes:
    """What Segment's fetch sends: JSON.stringify's text. Bodies are planned with JavaScript's numbers already
    (braze_cloud._sendable), so Python's encoder writes the same text unless a float needs an exponent below 1e-4."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if _PYTHON_EXPONENT.search(text):
        text = json_text(body)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: JSON.stringify writes it as an escape
        return json_text(body).encode("utf-8")


def _decode(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def _no_answer(exc: BaseException, timed_out: bool = False) -> TransportError:
    """A request that got no answer, with the code Segment's trace gives it (segment-api.md §4: ENOTFOUND,
    ECONNREFUSED, ECONNRESET, ECONNABORTED, ...), read from the OS error under the client's own exception."""
    code = "ECONNABORTED" if timed_out else "ECONNRESET"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            code = "ENOTFOUND"
            break
        if isinstance(cause, ConnectionRefusedError):
            code = "ECONNREFUSED"
            break
        if isinstance(cause, TimeoutError):
            code = "ECONNABORTED"  # a timed-out request (Segment has no ETIMEDOUT)
            break
        cause = cause.__cause__ or cause.__context__
    return TransportError(code, str(exc) or code)


def call_wsgi(app: Callable, method: str, path: str, headers: dict[str, str], body: bytes,
              host: str = "braze.emulator") -> tuple[int, dict[str, str], bytes]:
    """One request to a WSGI app in this process: (status, headers, body). A plain environ, as a server builds it."""
    path, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method.upper(), "SCRIPT_NAME": "", "PATH_INFO": unquote(path, "latin-1"),
        "QUERY_STRING": query, "SERVER_NAME": host.rsplit(":", 1)[0],
        "SERVER_PORT": host.rsplit(":", 1)[1] if ":" in host else "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": host, "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ["HTTP_" + key] = value
    answer: list[Any] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        answer[:] = [int(status.split(" ", 1)[0]), {k.lower(): v for k, v in response_headers}]
        return chunks.append

    chunks: list[bytes] = []
    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer[0], answer[1], b"".join(chunks)

"""The `ws-gateway` part of `tekoa up`: API Gateway's WebSocket API, locally.

It behaves as API Gateway does towards both sides:

* Clients connect to `ws://127.0.0.1:<TEKOA_WS_PORT>/`. Each connection gets an id; `$connect`,
  every message (routed on its `action` like `$request.body.action`: a known route, else
  `$default`) and `$disconnect` invoke the route handler (`functions.api.websocket.handler`,
  the Lambda's own entry point) with API Gateway's event shapes. A `$connect` answering other
  than 2xx refuses the handshake with that status; a message's answer `body` is sent back (a
  route response). Idle connections close after 10 minutes, any connection after 2 hours.
* The push side calls `POST`/`DELETE`/`GET /@connections/<id>` on the same port, as it calls the
  stage's management endpoint in AWS: a send, a close (followed by `$disconnect`), a look-up.
  An unknown id answers `410 GoneException`.

So the route handlers and the push adapter run unchanged locally and in AWS.

A fan-out is one `@connections` request per subscriber, so the gateway's cost per request bounds
how fast a thousand subscribers hear of an event. Through uvicorn's ASGI cycle a request cost a
task, a scope and two writes; `http_protocol` therefore looks at a connection's first request
line and hands a connection that opens with an `@connections` request (the push adapter's kept
connections) to `_Management`, which parses the pipelined requests itself, sends each frame,
and answers a whole batch with one write. Everything else (handshakes, `/health`) stays with
uvicorn, and both answer through the same `WebSocketGateway.manage`.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from tekoa.local.scheduler import LOCAL_ACCOUNT, LocalLambdaContext
from tekoa.observability import logger
from tekoa.realtime.messages import ROUTES
from tekoa.settings import Settings, get_settings

if TYPE_CHECKING:
    import uvicorn

ROUTE_HANDLER = "functions.api.websocket.handler"
IDLE_TIMEOUT_S = 600.0
MAX_DURATION_S = 7200.0
LOCAL_API_ID = "local"

Handler = Callable[[dict[str, Any], Any], Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(slots=True)
class _Connection:
    connection_id: str
    send: Send
    source_ip: str
    user_agent: str
    connected_at: float
    last_active: float
    closed: asyncio.Event = field(default_factory=asyncio.Event)


def _new_connection_id() -> str:
    # API Gateway's ids are 16 characters of base64 ending in '='; the '=' must survive the
    # round trip through the @connections path, so keep it.
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()


def _request_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


class WebSocketGateway:
    """An ASGI app: WebSocket clients on one side, the route handler and `@connections` on the other."""

    def __init__(self, handler: Handler, settings: Settings, *, threads: int = 8) -> None:
        self.handler = handler
        self.settings = settings
        self.connections: dict[str, _Connection] = {}
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ws-route")
        self._reaper: asyncio.Task[None] | None = None

    # -- API Gateway's events ---------------------------------------------------------------------

    def _context(self, route_key: str, event_type: str, connection: _Connection) -> dict[str, Any]:
        now = time.time()
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": self.settings.stage,
            "connectedAt": int(connection.connected_at * 1000),
            "requestTimeEpoch": int(now * 1000),
            "requestTime": _request_time(now),
            "requestId": str(uuid.uuid4()),
            "extendedRequestId": str(uuid.uuid4()),
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            "domainName": f"127.0.0.1:{self.settings.ws_port}",
            "connectionId": connection.connection_id,
            "apiId": LOCAL_API_ID,
        }

    async def _invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        context = LocalLambdaContext(
            function_name="ws-routes",
            invoked_function_arn=f"arn:aws:lambda:{self.settings.aws_region}:{LOCAL_ACCOUNT}:function:ws-routes",
            aws_request_id=str(uuid.uuid4()),
            deadline_ms=int(time.time() * 1000) + 29_000,
        )
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self.handler, event, context)
        except Exception:
            logger.exception("route handler failed", extra={"route": event["requestContext"]["routeKey"]})
            return {"statusCode": 500}
        return result if isinstance(result, dict) else {"statusCode": 200}

    # -- ASGI -------------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap())
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        now = time.time()
        client = scope.get("client") or ("127.0.0.1", 0)
        connection = _Connection(
            _new_connection_id(), send, str(client[0]), headers.get("user-agent", ""), now, now
        )
        response = await self._invoke(
            {
                "headers": headers,
                "multiValueHeaders": {name: [value] for name, value in headers.items()},
                "queryStringParameters": query or None,
                "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
                "requestContext": self._context("$connect", "CONNECT", connection),
                "isBase64Encoded": False,
            }
        )
        status = int(response.get("statusCode", 200))
        if not 200 <= status < 300:
            await self._refuse(send, status, str(response.get("body") or ""))
            return
        answer_headers = {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        self.connections[connection.connection_id] = connection
        await send({"type": "websocket.accept", "subprotocol": answer_headers.get("sec-websocket-protocol")})
        try:
            await self._receive_loop(connection, receive)
        finally:
            self.connections.pop(connection.connection_id, None)
            connection.closed.set()
            await self._invoke(
                {
                    "headers": headers,
                    "requestContext": {
                        **self._context("$disconnect", "DISCONNECT", connection),
                        "disconnectStatusCode": 1000,
                        "disconnectReason": "",
                    },
                    "isBase64Encoded": False,
                }
            )

    async def _refuse(self, send: Send, status: int, body: str) -> None:
        payload = body.encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": payload})

    async def _receive_loop(self, connection: _Connection, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            connection.last_active = time.time()
            text, data = message.get("text"), message.get("bytes")
            body = text if text is not None else base64.b64encode(data or b"").decode()
            response = await self._invoke(
                {
                    "requestContext": {
                        **self._context(_route_key(text), "MESSAGE", connection),
                        "messageId": str(uuid.uuid4()),
                    },
                    "body": body,
                    "isBase64Encoded": text is None,
                }
            )
            answer = response.get("body")
            if answer and connection.connection_id in self.connections:
                await self._send_text(connection, str(answer))

    async def _send_text(self, connection: _Connection, text: str) -> bool:
        try:
            await connection.send({"type": "websocket.send", "text": text})
        except Exception:  # the client went away: uvicorn reports it as its own exception types
            return False
        return True

    async def _close(self, connection: _Connection, code: int = 1000) -> None:
        self.connections.pop(connection.connection_id, None)
        try:
            await connection.send({"type": "websocket.close", "code": code})
        except Exception:  # already closed
            logger.debug("closing a closed connection", extra={"connection_id": connection.connection_id})

    async def _reap(self) -> None:
        """Close idle and too-old connections, as API Gateway does."""
        while True:
            await asyncio.sleep(15)
            now = time.time()
            for connection in list(self.connections.values()):
                if (
                    now - connection.last_active > IDLE_TIMEOUT_S
                    or now - connection.connected_at > MAX_DURATION_S
                ):
                    await self._close(connection, 1001)

    # -- @connections --------------------------------------------------------------------------

    async def manage(self, method: str, path: str, body: bytes) -> _Answer:
        """The management API's answer to one `@connections` request (sending or closing as asked)."""
        _, marker, quoted_id = path.rpartition("/@connections/")
        if not marker or not quoted_id:
            return _NOT_FOUND
        connection = self.connections.get(_unquote(quoted_id))
        if connection is None:
            return _GONE
        if method == "POST":
            delivered = await self._send_text(connection, body.decode("utf-8", errors="replace"))
            return _SENT if delivered else _GONE
        if method == "DELETE":
            await self._close(connection)
            return _Answer(204)
        if method == "GET":
            return _Answer(
                200,
                {
                    "connectedAt": datetime.fromtimestamp(connection.connected_at, UTC).isoformat(),
                    "lastActiveAt": datetime.fromtimestamp(connection.last_active, UTC).isoformat(),
                    "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                },
            )
        return _Answer(405, {"message": "Method Not Allowed"})

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/health":
            await _respond(send, _Answer(200, {"status": "ok", "connections": len(self.connections)}))
            return
        await _respond(send, await self.manage(scope["method"], scope["path"], body))

    def uvicorn_config(self, host: str, port: int, **options: Any) -> uvicorn.Config:
        """How uvicorn serves this gateway: its WebSocket settings and the `@connections` fast path."""
        import uvicorn

        return uvicorn.Config(
            self,
            host=host,
            port=port,
            http=http_protocol(self),
            ws="websockets-sansio",
            lifespan="off",
            access_log=False,
            ws_ping_interval=None,  # API Gateway does not ping either; clients send `ping` actions
            # API Gateway offers no permessage-deflate; compressing each small push cost more CPU
            # than the rest of the push.
            ws_per_message_deflate=False,
            proxy_headers=False,
            **options,
        )


@dataclass(frozen=True, slots=True)
class _Answer:
    """A management API response: status, JSON document (None: no body), `x-amzn-errortype`."""

    status: int
    document: Any = None
    error_type: str | None = None

    def payload(self) -> bytes:
        return b"" if self.document is None else json.dumps(self.document).encode()

    def http(self, *, close: bool = False) -> bytes:
        """The whole HTTP/1.1 response."""
        payload = self.payload()
        head = [f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}", f"content-length: {len(payload)}"]
        if self.document is not None:
            head.append("content-type: application/json")
        if self.error_type:
            head.append(f"x-amzn-errortype: {self.error_type}")
        if close:
            head.append("connection: close")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


_SENT = _Answer(200)
_GONE = _Answer(410, {"message": None}, "GoneException")
_NOT_FOUND = _Answer(404, {"message": "Not Found"})
_SENT_HTTP, _GONE_HTTP = _SENT.http(), _GONE.http()
"""The answers to nearly every request of a fan-out, as bytes once."""


def _wire(answer: _Answer, close: bool) -> bytes:
    if not close and answer is _SENT:
        return _SENT_HTTP
    if not close and answer is _GONE:
        return _GONE_HTTP
    return answer.http(close=close)


@lru_cache(maxsize=65_536)
def _unquote(quoted_id: str) -> str:
    """A connection id from the path (the same thousand ids come back with every fan-out)."""
    return unquote(quoted_id)


_MANAGEMENT_PATH = b"/@connections/"
_MAX_HEAD = 16_384


def http_protocol(gateway: WebSocketGateway) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, except for connections that open with an `@connections` request:
    those go to `_Management` (see the module docstring)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class FirstLine(asyncio.Protocol):
        def __init__(self, **uvicorn_args: Any) -> None:
            self._uvicorn_args = uvicorn_args
            self._transport: asyncio.Transport | None = None
            self._start = b""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            assert self._transport is not None
            self._start += data
            line_end = self._start.find(b"\r\n")
            if line_end < 0 and len(self._start) < _MAX_HEAD:
                return
            delegate: asyncio.Protocol = (
                _Management(gateway)
                if _MANAGEMENT_PATH in self._start[: max(line_end, 0)]
                else HttpToolsProtocol(**self._uvicorn_args)
            )
            self._transport.set_protocol(delegate)
            delegate.connection_made(self._transport)
            delegate.data_received(self._start)

    return FirstLine


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    body: bytes
    close: bool


def _next_request(buffer: bytearray) -> _Request | None:
    """Take one whole request off the front of `buffer` (None: not all of it has arrived).
    ValueError: not a request this endpoint can read."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > _MAX_HEAD:
            raise ValueError("request head too long")
        return None
    request_line, *header_lines = buffer[:end].decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ")
    length, close = 0, version == "HTTP/1.0"
    for line in header_lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = value.strip().lower() == "close"
        elif name == "transfer-encoding":
            raise ValueError("chunked requests are not supported")
    if len(buffer) < end + 4 + length:
        return None
    body = bytes(buffer[end + 4 : end + 4 + length])
    del buffer[: end + 4 + length]
    return _Request(method, target.partition("?")[0], body, close)


class _Management(asyncio.Protocol):
    """A kept connection of `@connections` requests: parsed here, answered in order, each batch
    that arrived together answered with one write."""

    def __init__(self, gateway: WebSocketGateway) -> None:
        self._gateway = gateway
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._requests: deque[_Request | None] = deque()  # None: unreadable, answer 400 and close
        self._serving: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._requests and self._requests[-1] is None:
            return  # closing
        self._buffer += data
        try:
            while (request := _next_request(self._buffer)) is not None:
                self._requests.append(request)
        except ValueError:
            self._requests.append(None)
        if self._requests and self._serving is None:
            self._serving = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        assert self._transport is not None
        try:
            while self._requests:
                answers: list[bytes] = []
                close = False
                while self._requests and not close:
                    request = self._requests.popleft()
                    if request is None:
                        answers.append(_Answer(400, {"message": "Bad Request"}).http(close=True))
                        close = True
                        break
                    answer = await self._gateway.manage(request.method, request.path, request.body)
                    close = request.close
                    answers.append(_wire(answer, close))
                if self._transport.is_closing():
                    return
                self._transport.write(b"".join(answers))
                if close:
                    self._transport.close()
                    return
        finally:
            self._serving = None


def _route_key(text: str | None) -> str:
    """`$request.body.action` when it names a route, else `$default` (as API Gateway selects)."""
    if text is None:
        return "$default"
    try:
        action = json.loads(text).get("action")
    except (ValueError, AttributeError):
        return "$default"
    return action if action in ROUTES else "$default"


async def _respond(send: Send, answer: _Answer) -> None:
    payload = answer.payload()
    headers = [(b"content-length", str(len(payload)).encode())]
    if answer.document is not None:
        headers.append((b"content-type", b"application/json"))
    if answer.error_type:
        headers.append((b"x-amzn-errortype", answer.error_type.encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def load_handler(path: str = ROUTE_HANDLER) -> Handler:
    """The route handler named `module.function`."""
    module_name, _, function_name = path.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    return handler


def main() -> None:
    """Entry point of the `ws-gateway` part: the gateway on `ws_host:ws_port` until SIGTERM."""
    import uvicorn

    settings = get_settings()
    gateway = WebSocketGateway(load_handler(), settings)
    config = gateway.uvicorn_config(
        settings.ws_host, settings.ws_port, log_level="warning", timeout_graceful_shutdown=5
    )
    uvicorn.Server(config).run()  # until SIGTERM/SIGINT

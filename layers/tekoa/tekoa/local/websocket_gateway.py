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
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from tekoa.local.scheduler import LOCAL_ACCOUNT, LocalLambdaContext
from tekoa.observability import logger
from tekoa.realtime.messages import ROUTES
from tekoa.settings import Settings, get_settings

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

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method, path = scope["method"], scope["path"]
        if path == "/health":
            await _respond(send, 200, {"status": "ok", "connections": len(self.connections)})
            return
        _, marker, connection_id = path.rpartition("/@connections/")
        if not marker or not connection_id:
            await _respond(send, 404, {"message": "Not Found"})
            return
        connection = self.connections.get(unquote(connection_id))
        if connection is None:
            await _respond(send, 410, {"message": None}, error_type="GoneException")
            return
        if method == "POST":
            delivered = await self._send_text(connection, body.decode("utf-8", errors="replace"))
            await (
                _respond(send, 200, None)
                if delivered
                else _respond(send, 410, {"message": None}, "GoneException")
            )
        elif method == "DELETE":
            await self._close(connection)
            await _respond(send, 204, None)
        elif method == "GET":
            await _respond(
                send,
                200,
                {
                    "connectedAt": datetime.fromtimestamp(connection.connected_at, UTC).isoformat(),
                    "lastActiveAt": datetime.fromtimestamp(connection.last_active, UTC).isoformat(),
                    "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                },
            )
        else:
            await _respond(send, 405, {"message": "Method Not Allowed"})


def _route_key(text: str | None) -> str:
    """`$request.body.action` when it names a route, else `$default` (as API Gateway selects)."""
    if text is None:
        return "$default"
    try:
        action = json.loads(text).get("action")
    except (ValueError, AttributeError):
        return "$default"
    return action if action in ROUTES else "$default"


async def _respond(send: Send, status: int, document: Any, error_type: str | None = None) -> None:
    payload = b"" if document is None else json.dumps(document).encode()
    headers = [(b"content-length", str(len(payload)).encode())]
    if document is not None:
        headers.append((b"content-type", b"application/json"))
    if error_type:
        headers.append((b"x-amzn-errortype", error_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
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
    config = uvicorn.Config(
        gateway,
        host=settings.ws_host,
        port=settings.ws_port,
        ws="websockets-sansio",
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws_ping_interval=None,  # API Gateway does not ping either; clients send `ping` actions
        # API Gateway offers no permessage-deflate; compressing each small push cost more CPU
        # than the rest of the push.
        ws_per_message_deflate=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()  # until SIGTERM/SIGINT

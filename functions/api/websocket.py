"""Lambda entry point of the WebSocket API's routes (API Gateway WebSocket events; not Mangum,
which does not take them).

Routes (the route selection expression is `$request.body.action`):

* `$connect`: the token comes as `?token=<token>`, or as a subprotocol `bearer.<token>` offered
  beside `tekoa.v1` (browsers cannot set headers on a WebSocket); `tekoa.v1` is then selected.
  A missing or bad token answers 401 and API Gateway refuses the connection.
* `$disconnect`: forgets the connection.
* `subscribe`, `unsubscribe`, `ping`, and `$default` (any other action): each answers with one
  message (API Gateway's route response), `subscribed` / `unsubscribed` / `pong` or `error`.

Locally the `ws-gateway` part of `tekoa up` calls this same handler with the same events.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tekoa.auth.service import Accounts
from tekoa.aws.secrets import database_conninfo
from tekoa.db.connection import LambdaDatabase
from tekoa.errors import AuthenticationFailed, TekoaError
from tekoa.observability import logger, tracer
from tekoa.realtime.connections import WebSocketRoutes
from tekoa.realtime.messages import (
    CLIENT_REQUEST,
    ROUTES,
    MessageType,
    PingRequest,
    error_text,
    message_text,
    subscriptions_view,
)
from tekoa.settings import get_settings

PROTOCOL = "tekoa.v1"
_BEARER_PROTOCOL = "bearer."


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _error_response(status: int, exc: TekoaError) -> dict[str, Any]:
    return {"statusCode": status, "body": error_text(exc.code, exc.message, exc.field)}


def _connect(routes: WebSocketRoutes, connection_id: str, event: dict[str, Any]) -> dict[str, Any]:
    offered = [p.strip() for p in (_header(event, "sec-websocket-protocol") or "").split(",") if p.strip()]
    bearer = (event.get("queryStringParameters") or {}).get("token")
    for protocol in offered:
        if protocol.startswith(_BEARER_PROTOCOL):
            bearer = protocol.removeprefix(_BEARER_PROTOCOL)
    if offered and PROTOCOL not in offered:
        message = f"offer the {PROTOCOL} subprotocol (beside bearer.<token>)"
        return {"statusCode": 400, "body": error_text("BAD_REQUEST", message, "Sec-WebSocket-Protocol")}
    try:
        principal = routes.connect(connection_id, bearer)
    except AuthenticationFailed as exc:
        logger.info("websocket refused", extra={"connection_id": connection_id, "reason": exc.message})
        return _error_response(401, exc)
    logger.info(
        "websocket connected", extra={"connection_id": connection_id, "user_id": str(principal.user_id)}
    )
    response: dict[str, Any] = {"statusCode": 200}
    if offered:
        response["headers"] = {"Sec-WebSocket-Protocol": PROTOCOL}
    return response


def _message(routes: WebSocketRoutes, connection_id: str, body: str | None) -> str:
    try:
        request = CLIENT_REQUEST.validate_json(body or "")
    except ValidationError as exc:
        first = exc.errors()[0]
        location = [str(part) for part in first.get("loc", ())]
        if location and location[0] in ROUTES:  # the union's tag leads the location
            location = location[1:]
        field = ".".join(location) or None
        if first.get("type") in {"union_tag_invalid", "union_tag_not_found"}:
            return error_text("VALIDATION_ERROR", "action must be subscribe, unsubscribe or ping", "action")
        return error_text("VALIDATION_ERROR", f"{field}: {first['msg']}" if field else first["msg"], field)
    if isinstance(request, PingRequest):
        return message_text(MessageType.PONG, {})
    try:
        if request.action == "subscribe":
            channels = routes.subscribe(connection_id, request)
            return message_text(MessageType.SUBSCRIBED, subscriptions_view(channels))
        channels = routes.unsubscribe(connection_id, request)
        return message_text(MessageType.UNSUBSCRIBED, subscriptions_view(channels))
    except TekoaError as exc:
        return error_text(exc.code, exc.message, exc.field)


def route(routes: WebSocketRoutes, event: dict[str, Any]) -> dict[str, Any]:
    """Answer one API Gateway WebSocket event (see the module docstring)."""
    context = event.get("requestContext") or {}
    route_key, connection_id = context.get("routeKey"), context.get("connectionId")
    if not isinstance(connection_id, str) or not connection_id:
        return {"statusCode": 400, "body": error_text("BAD_REQUEST", "no connection id", None)}
    if route_key == "$connect":
        return _connect(routes, connection_id, event)
    if route_key == "$disconnect":
        routes.disconnect(connection_id)
        logger.info("websocket disconnected", extra={"connection_id": connection_id})
        return {"statusCode": 200}
    if event.get("isBase64Encoded"):
        return {"statusCode": 200, "body": error_text("BAD_REQUEST", "send JSON text frames", None)}
    return {"statusCode": 200, "body": _message(routes, connection_id, event.get("body"))}


settings = get_settings()
_routes = WebSocketRoutes(
    LambdaDatabase(partial(database_conninfo, settings), timeout_s=settings.db_connect_timeout_s),
    Accounts.from_settings(settings),
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one WebSocket route invocation."""
    return route(_routes, event)

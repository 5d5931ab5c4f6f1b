"""ASGI middleware (plain ASGI: no per-request task): request ids and the last-resort 500,
request size limits, and parameters PostgreSQL cannot store."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tekoa.observability import logger

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Takes the caller's X-Request-Id (or API Gateway's request id), else makes one.

    The id is added to every log line of the request (a context variable, so concurrent
    requests never share one) and echoed in the response. An exception no handler mapped is
    logged here, with the id, and answered as a 500 in the error shape that carries it too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        logger.thread_safe_append_keys(request_id=request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
            if not started:
                await send_error(send_with_id, 500, "INTERNAL_ERROR", "internal error")
        finally:
            logger.thread_safe_remove_keys(["request_id"])


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _SAFE_ID.match(candidate):
                return candidate
    event: dict[str, Any] = scope.get("aws.event") or {}
    aws_id = (event.get("requestContext") or {}).get("requestId")
    if isinstance(aws_id, str) and _SAFE_ID.match(aws_id):
        return str(aws_id)
    return uuid.uuid4().hex


class BodySizeLimitMiddleware:
    """Answers 413 to bodies over `max_bytes`, declared (Content-Length) or streamed (chunked).

    A streamed body is counted as it arrives; once past the limit the app is told the client
    left (so it stops reading) and whatever it answers is dropped in favour of the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(send)
                return
        received = 0
        too_large = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    await answer_too_large()
                    return {"type": "http.disconnect"}
            return message

        async def answer_too_large() -> None:
            nonlocal answered
            if not answered:
                answered = True
                await self._too_large(send)

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if too_large:
                return  # the 413 went out instead
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await answer_too_large()

    async def _too_large(self, send: Send) -> None:
        await send_error(send, 413, "PAYLOAD_TOO_LARGE", f"request body exceeds {self.max_bytes} bytes")


class StorableParametersMiddleware:
    """Refuses a NUL character in the path or a query parameter (422, naming the parameter).

    PostgreSQL text cannot hold NUL, so such a value could only fail later, deep in a query.
    Bodies are checked by their models (`tekoa.domain.text`); headers cannot carry NUL.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            field = _nul_parameter(scope)
            if field is not None:
                message = f"{field}: must not contain the NUL character"
                await send_error(send, 422, "VALIDATION_ERROR", message, field)
                return
        await self.app(scope, receive, send)


def _nul_parameter(scope: Scope) -> str | None:
    if "\x00" in scope.get("path", ""):
        return "path"
    query = bytes(scope.get("query_string", b""))
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in value or "\x00" in name:
            return name.replace("\x00", "") or "query"
    return None


async def send_error(send: Send, status: int, code: str, message: str, field: str | None = None) -> None:
    """Answer with the platform's error shape, straight from ASGI."""
    body = json.dumps({"detail": {"code": code, "message": message, "field": field}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})

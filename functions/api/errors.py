"""One place that turns exceptions into the REST error shape.

Every error answers `{"detail": {"code": ..., "message": ..., "field": ...}}`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tekoa.errors import TekoaError

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    428: "PRECONDITION_REQUIRED",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The error document every endpoint answers with."""
    return {"detail": {"code": code, "message": message, "field": field, **extra}}


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)


def _field_of(location: tuple[Any, ...] | list[Any]) -> str | None:
    # ("body", "params", "levels") -> "params.levels"; the leading source adds nothing.
    parts = [str(part) for part in location]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or None


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_of(error.get("loc", ())), "message": str(error.get("msg", "invalid"))}
        for error in exc.errors()
    ]
    first = errors[0] if errors else {"field": None, "message": "invalid request"}
    field = first["field"]
    message = f"{field}: {first['message']}" if field else str(first["message"])
    body = error_body("VALIDATION_ERROR", message, field, errors=errors)
    return JSONResponse(body, status_code=422)


async def _on_domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TekoaError)
    headers = getattr(exc, "headers", None)
    return error_response(exc.status, exc.code, exc.message, exc.field, headers=headers)


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "ERROR")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception type to the error shape, once. Unexpected exceptions become a 500
    in `functions.api.middleware.RequestIdMiddleware`, which knows the request id."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(TekoaError, _on_domain_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)


# --- documented error responses --------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. VALIDATION_ERROR.")
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error: `{"detail": {"code", "message", "field"}}`."""

    detail: ErrorDetail


_ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "Not allowed for these credentials",
    404: "Not found (also another user's resource)",
    409: "Conflict",
    412: "The resource changed since it was read",
    422: "Invalid input",
    428: "If-Match or version required",
    429: "Too many requests; see Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error statuses a route can answer."""
    return {
        status: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS.get(status, "Error")}
        for status in statuses
    }

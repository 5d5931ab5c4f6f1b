"""Domain exceptions. Handlers map them to HTTP in one place (functions/api/errors.py).

Each carries a stable machine-readable `code`; the API puts it in
`{"detail": {"code": ..., "message": ..., "field": ...}}`.
"""

from __future__ import annotations


class TekoaError(Exception):
    """Base of every error the platform raises on purpose."""

    code = "INTERNAL_ERROR"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(TekoaError):
    code = "VALIDATION_ERROR"
    status = 422


class BadRequest(TekoaError):
    code = "BAD_REQUEST"
    status = 400


class NotFound(TekoaError):
    """Also what another tenant's resource looks like: never 403, never data."""

    code = "NOT_FOUND"
    status = 404


class Conflict(TekoaError):
    code = "CONFLICT"
    status = 409


class PreconditionFailed(TekoaError):
    code = "PRECONDITION_FAILED"
    status = 412


class Unauthorized(TekoaError):
    code = "UNAUTHORIZED"
    status = 401


class Forbidden(TekoaError):
    code = "FORBIDDEN"
    status = 403


class RateLimited(TekoaError):
    code = "RATE_LIMITED"
    status = 429


class ServiceUnavailable(TekoaError):
    code = "SERVICE_UNAVAILABLE"
    status = 503

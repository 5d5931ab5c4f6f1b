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


class AuthenticationFailed(Unauthorized):
    """No credentials, or credentials that are invalid, expired or revoked.

    Carries the `WWW-Authenticate` challenge RFC 6750 asks a 401 to answer with.
    """

    def __init__(
        self, message: str = "invalid or missing credentials", *, challenge: str | None = None
    ) -> None:
        super().__init__(message)
        self.headers = {"WWW-Authenticate": challenge or 'Bearer realm="tekoa", error="invalid_token"'}


class InvalidCredentials(AuthenticationFailed):
    """Sign-in refused: the same answer for an unknown email and a wrong password."""

    code = "INVALID_CREDENTIALS"

    def __init__(self, message: str = "email or password is incorrect") -> None:
        super().__init__(message, challenge='Bearer realm="tekoa"')


class InsufficientScope(Forbidden):
    """The credentials are valid but not allowed to do this (e.g. a read-only API token)."""

    code = "INSUFFICIENT_SCOPE"


class PreconditionRequired(TekoaError):
    """An update came without `If-Match` or a version: it could overwrite someone else's change."""

    code = "PRECONDITION_REQUIRED"
    status = 428


class IdempotencyKeyReused(ValidationFailed):
    """An `Idempotency-Key` was sent again with a different request."""

    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyKeyInProgress(Conflict):
    """The first request with this `Idempotency-Key` has not finished yet."""

    code = "IDEMPOTENCY_KEY_IN_PROGRESS"


class TooManyAttempts(RateLimited):
    """Throttled; `retry_after_s` tells the client when to try again."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)
        self.headers = {"Retry-After": str(self.retry_after_s)}

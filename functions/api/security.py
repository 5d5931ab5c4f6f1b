"""Who is calling: bearer authentication and scope checks, as FastAPI dependencies.

Use one of these as a parameter type in a route; FastAPI resolves it before the handler runs:

    @router.get("/v1/things")
    def list_things(principal: CurrentUser, context: Context) -> ...:
        ...  # principal.user_id is the caller; query with tenant_transaction(conn, principal.user_id)

- `CurrentUser`: any valid access token (from sign-in) or personal API token, sent as
  `Authorization: Bearer <token>`. Missing or invalid → 401 with the error shape and a
  `WWW-Authenticate: Bearer ...` header.
- `TradingUser`: like `CurrentUser`, but a read-only API token → 403 `INSUFFICIENT_SCOPE`.
  Use it for everything that changes state or trades.
- `SessionUser`: a signed-in session only; every API token → 403 `INSUFFICIENT_SCOPE`
  (for managing credentials, e.g. minting API tokens).

Sessions from sign-in carry both scopes ("read", "trading"); an API token carries "read"
or both. An access token is verified by its signature and the account's token generation
(read at most once per `token_state_cache_s` per process); an API token costs one indexed
look-up.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from functions.api.context import Context
from tekoa.auth.models import READ, TRADING, Principal
from tekoa.errors import AuthenticationFailed, InsufficientScope

__all__ = [
    "READ",
    "TRADING",
    "CurrentUser",
    "Principal",
    "SessionUser",
    "TradingUser",
    "authenticate",
    "require_session",
    "require_trading",
]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An access token from /v1/auth/login, or a personal API token (`tk_...`).",
)


async def authenticate(
    context: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller, or 401 when the bearer credential is missing or not valid.

    On the event loop when no I/O is needed (an access token whose account state is cached:
    most requests), in a worker thread otherwise.
    """
    if credentials is None or not credentials.credentials:
        raise AuthenticationFailed("missing bearer token", challenge='Bearer realm="tekoa"')
    accounts, bearer = context.accounts, credentials.credentials
    principal = accounts.authenticate_from_cache(bearer)
    if principal is None:
        principal = await run_in_threadpool(accounts.authenticate, context.database, bearer)
    return principal


CurrentUser = Annotated[Principal, Depends(authenticate)]


async def require_trading(principal: CurrentUser) -> Principal:
    """The caller, when allowed to change state and trade (not a read-only API token)."""
    if TRADING not in principal.scopes:
        raise InsufficientScope("this API token is read-only; this action needs the trading scope")
    return principal


async def require_session(principal: CurrentUser) -> Principal:
    """The caller, when signed in with a session (API tokens cannot manage credentials)."""
    if principal.via != "session":
        raise InsufficientScope("this action needs a signed-in session, not an API token")
    return principal


TradingUser = Annotated[Principal, Depends(require_trading)]
SessionUser = Annotated[Principal, Depends(require_session)]

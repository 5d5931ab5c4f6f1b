"""Personal API tokens for scripts: create (secret shown once), list, revoke.

Creating needs a signed-in session (a token cannot mint tokens); revoking needs the trading
scope; listing works with any credential. Another user's token id answers 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from functions.api.conventions import (
    IdempotencyKey,
    Page,
    PageParams,
    error_responses,
    idempotent,
    invalid_cursor,
)
from functions.api.deps import Context, request_id
from functions.api.security import CurrentUser, SessionUser, TradingUser, get_accounts
from tekoa.auth.models import ApiToken, ApiTokenScope
from tekoa.auth.service import Accounts

router = APIRouter(prefix="/v1/api-tokens", tags=["api-tokens"])
Accounts_ = Annotated[Accounts, Depends(get_accounts)]


class CreateApiTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$"
        ),
    ]
    scope: ApiTokenScope = Field(
        "read", description="`read`: GET only; `trading`: may change state and trade."
    )
    expires_at: AwareDatetime | None = Field(None, description="Optional expiry (must be in the future).")


class CreatedApiTokenResponse(BaseModel):
    token: ApiToken
    secret: str = Field(description="`tk_<prefix>_<secret>`: shown only in this response. Store it now.")


@router.post(
    "",
    status_code=201,
    response_model=CreatedApiTokenResponse,
    responses=error_responses(401, 403, 409, 422),
)
def create_api_token(
    body: CreateApiTokenRequest,
    request: Request,
    principal: SessionUser,
    context: Context,
    accounts: Accounts_,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Mint a token; honours `Idempotency-Key` (a replay returns the same token and secret)."""

    def create() -> tuple[int, CreatedApiTokenResponse]:
        with context.database.connection() as conn:
            created = accounts.create_api_token(
                conn,
                principal,
                name=body.name,
                scope=body.scope,
                expires_at=body.expires_at,
                request_id=request_id(request),
            )
        return 201, CreatedApiTokenResponse(token=created.token, secret=created.secret)

    response = idempotent(context, principal, idempotency_key, request.method, request.url.path, body, create)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("", response_model=Page[ApiToken], responses=error_responses(401, 422))
def list_api_tokens(
    principal: CurrentUser, page: PageParams, context: Context, accounts: Accounts_
) -> Page[ApiToken]:
    """The caller's tokens, newest first (revoked ones included, marked by `revoked_at`)."""
    position = page.after("created_at", "id")
    try:
        after = (datetime.fromisoformat(position[0]), UUID(position[1])) if position else None
    except (TypeError, ValueError) as exc:
        raise invalid_cursor() from exc
    with context.database.connection() as conn:
        rows = accounts.list_api_tokens(conn, principal, limit=page.limit + 1, after=after)
    return Page[ApiToken].build(
        rows, page.limit, lambda t: {"created_at": t.created_at.isoformat(), "id": str(t.id)}
    )


@router.delete(
    "/{token_id}", status_code=204, response_class=Response, responses=error_responses(401, 403, 404, 422)
)
def revoke_api_token(
    token_id: UUID, request: Request, principal: TradingUser, context: Context, accounts: Accounts_
) -> Response:
    """Revoke a token at once: requests bearing it answer 401 from now on."""
    with context.database.connection() as conn:
        accounts.revoke_api_token(conn, principal, token_id, request_id=request_id(request))
    return Response(status_code=204)

"""Personal API tokens for scripts: create (secret shown once), list, revoke.

Creating needs a signed-in session (a token cannot mint tokens); revoking needs the trading
scope; listing works with any credential. Another user's token id answers 404.

The secret exists only in the response to the request that created the token. A replay of
that request (same `Idempotency-Key` and body) answers the same token with `secret: null`:
only a hash of the secret is ever stored. A client that lost the first response revokes the
token and creates another.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions.api.context import Context, request_id
from functions.api.errors import error_responses
from functions.api.idempotency import Created, IdempotencyKey, idempotent
from functions.api.pagination import Page, PageParams, after_created, created_position
from functions.api.security import CurrentUser, SessionUser, TradingUser
from tekoa.auth.models import ApiToken, ApiTokenScope, CreatedApiToken
from tekoa.domain.wire import EpochMillisInput

router = APIRouter(prefix="/v1/api-tokens", tags=["api-tokens"])

_NO_STORE = {"Cache-Control": "no-store"}


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
    expires_at: EpochMillisInput | None = Field(
        None, description="Optional expiry, UTC ms since the epoch (must be in the future)."
    )


class CreatedApiTokenResponse(BaseModel):
    token: ApiToken
    secret: str | None = Field(
        description="`tk_<prefix>_<secret>`: shown only in the response that created the token; "
        "null when an `Idempotency-Key` replays that response. Store it now."
    )


def _created(created: CreatedApiToken) -> Created:
    return Created(
        201,
        CreatedApiTokenResponse(token=created.token, secret=created.secret),
        _NO_STORE,
        replay_body=CreatedApiTokenResponse(token=created.token, secret=None),
    )


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
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Mint a token; honours `Idempotency-Key` (a replay answers the token without its secret)."""
    return idempotent(
        context,
        principal,
        idempotency_key,
        request,
        body,
        create=lambda before_commit: context.accounts.create_api_token(
            context.database,
            principal,
            name=body.name,
            scope=body.scope,
            expires_at=body.expires_at,
            request_id=request_id(request),
            before_commit=before_commit,
        ),
        respond=_created,
    )


@router.get("", response_model=Page[ApiToken], responses=error_responses(401, 422))
def list_api_tokens(principal: CurrentUser, page: PageParams, context: Context) -> Page[ApiToken]:
    """The caller's tokens, newest first (revoked ones included, marked by `revoked_at`)."""
    rows = context.accounts.list_api_tokens(
        context.database, principal, limit=page.limit + 1, after=after_created(page)
    )
    return Page[ApiToken].build(rows, page, created_position)


@router.delete(
    "/{token_id}", status_code=204, response_class=Response, responses=error_responses(401, 403, 404, 422)
)
def revoke_api_token(token_id: UUID, request: Request, principal: TradingUser, context: Context) -> Response:
    """Revoke a token at once: requests bearing it answer 401 from now on."""
    context.accounts.revoke_api_token(context.database, principal, token_id, request_id=request_id(request))
    return Response(status_code=204)

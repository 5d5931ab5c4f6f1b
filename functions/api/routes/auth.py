"""Accounts and sessions: register, login, refresh, logout, and the caller's own account.

`POST /v1/auth/register` answers 201 with the new user *and* a signed-in session (the same
tokens `login` gives), so a client needs no second round trip. Token responses are
`Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from functions.api.context import Context, request_id
from functions.api.errors import error_responses
from functions.api.security import CurrentUser
from tekoa.auth.models import TokenPair, User
from tekoa.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from tekoa.auth.service import ClientInfo

router = APIRouter(prefix="/v1", tags=["auth"])

# email-validator is not part of the slim API layer: a deliberately plain shape check; the
# address is proven only by use. Normalised (trimmed, lower case) by the service.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
"""No control characters (PostgreSQL text cannot hold NUL; names are shown to people)."""
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=3,
        max_length=320,
        pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$",
    ),
]
NewPassword = Annotated[
    str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
OpaqueToken = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: NewPassword = Field(description=f"At least {MIN_PASSWORD_LENGTH} characters.")
    display_name: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_PRINTABLE)
        ]
        | None
    ) = None


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320, pattern=_PRINTABLE)
    ]
    password: Password


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: OpaqueToken


class Registered(BaseModel):
    user: User
    tokens: TokenPair


def _client(request: Request) -> ClientInfo:
    # The socket peer (API Gateway's sourceIp under Mangum), never X-Forwarded-For: a header
    # the caller controls must not choose which throttling bucket they land in.
    address = request.client.host if request.client else "unknown"
    return ClientInfo(address=address, user_agent=request.headers.get("user-agent"))


@router.post(
    "/auth/register", status_code=201, response_model=Registered, responses=error_responses(409, 422, 429)
)
def register(body: RegisterRequest, request: Request, response: Response, context: Context) -> Registered:
    """Create an account (email unique, case-insensitive) and sign it in. Sign-ups are
    throttled per client address (429 with Retry-After)."""
    user, tokens = context.accounts.register(
        context.database,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        client=_client(request),
        request_id=request_id(request),
    )
    response.headers["Cache-Control"] = "no-store"
    return Registered(user=user, tokens=tokens)


@router.post("/auth/login", response_model=TokenPair, responses=error_responses(401, 422, 429))
def login(body: LoginRequest, request: Request, response: Response, context: Context) -> TokenPair:
    """Exchange email and password for an access token (15 min) and a refresh token."""
    tokens = context.accounts.login(
        context.database,
        email=body.email,
        password=body.password,
        client=_client(request),
        request_id=request_id(request),
    )
    response.headers["Cache-Control"] = "no-store"
    return tokens


@router.post("/auth/refresh", response_model=TokenPair, responses=error_responses(401, 422))
def refresh(body: RefreshRequest, request: Request, response: Response, context: Context) -> TokenPair:
    """Swap a refresh token for a new pair; the old one is spent (presenting it again signs
    out every session descended from the same sign-in)."""
    tokens = context.accounts.refresh(
        context.database,
        refresh_token=body.refresh_token,
        client=_client(request),
        request_id=request_id(request),
    )
    response.headers["Cache-Control"] = "no-store"
    return tokens


@router.post("/auth/logout", status_code=204, response_class=Response, responses=error_responses(422))
def logout(body: RefreshRequest, request: Request, context: Context) -> Response:
    """Sign out: revoke the refresh token and every token rotated from the same sign-in, and
    end every access token of the account issued so far (idempotent)."""
    context.accounts.logout(
        context.database, refresh_token=body.refresh_token, request_id=request_id(request)
    )
    return Response(status_code=204)


@router.get("/me", response_model=User, responses=error_responses(401))
async def me(principal: CurrentUser, context: Context) -> User:
    """The caller's account."""
    accounts = context.accounts
    # Usually known from authenticating this very request: no I/O, no worker thread.
    user = accounts.me_from_cache(principal)
    return user if user is not None else await run_in_threadpool(accounts.me, context.database, principal)

"""Models of accounts and credentials as the rest of the platform sees them (never a secret)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from tekoa.domain.wire import EpochMillis

READ = "read"
TRADING = "trading"
ApiTokenScope = Literal["read", "trading"]
SESSION_SCOPES: frozenset[str] = frozenset({READ, TRADING})


def scopes_of(scope: ApiTokenScope) -> frozenset[str]:
    """What an API token of `scope` may do: `trading` implies `read`."""
    return SESSION_SCOPES if scope == TRADING else frozenset({READ})


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may do.

    `via` tells a sign-in session (both scopes) from a personal API token (its own scope);
    `token_id` is the API token's id when `via == "api_token"`; `generation` is the account's
    token generation the access token was issued under (None for API tokens and external
    issuers' tokens).
    """

    user_id: UUID
    scopes: frozenset[str]
    via: Literal["session", "api_token"]
    token_id: UUID | None = field(default=None, compare=False)
    generation: int | None = field(default=None, compare=False)


class User(BaseModel):
    """An account as shown to its owner."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    email: str
    display_name: str | None
    created_at: EpochMillis


class UserCredentials(BaseModel):
    """An account with its password hash: for sign-in only, never serialised to a client."""

    model_config = ConfigDict(frozen=True)

    user: User
    password_hash: str
    disabled: bool
    token_generation: int


class TokenPair(BaseModel):
    """What a successful sign-in or refresh hands out."""

    model_config = ConfigDict(frozen=True)

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type
    expires_in: int


class RefreshTokenRecord(BaseModel):
    """A stored refresh token (its hash stays in the database)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    user_id: UUID
    family_id: UUID
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class ApiToken(BaseModel):
    """A personal API token as listed: never the secret."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str
    prefix: str
    scope: ApiTokenScope
    created_at: EpochMillis
    last_used_at: EpochMillis | None
    expires_at: EpochMillis | None
    revoked_at: EpochMillis | None


class ApiTokenCredential(BaseModel):
    """An API token's stored hash with its owner's state, for authenticating a request."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    user_id: UUID
    token_hash: bytes
    scope: ApiTokenScope
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    user_disabled: bool


class CreatedApiToken(BaseModel):
    """A new API token with its secret: shown once, at creation."""

    model_config = ConfigDict(frozen=True)

    token: ApiToken
    secret: str

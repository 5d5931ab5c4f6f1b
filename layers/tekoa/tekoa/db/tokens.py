"""Repository of refresh tokens and personal API tokens (hashes only, never the secrets)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from tekoa.auth.models import ApiToken, ApiTokenCredential, ApiTokenScope, RefreshTokenRecord


def insert_refresh_token(
    conn: psycopg.Connection[Any],
    *,
    user_id: UUID,
    family_id: UUID,
    parent_id: UUID | None,
    token_hash: bytes,
    expires_at: datetime,
    user_agent: str | None,
    client_address: str | None,
) -> UUID:
    """Store one refresh token of a family; returns its id."""
    row = conn.execute(
        "INSERT INTO refresh_tokens"
        " (user_id, family_id, parent_id, token_hash, expires_at, user_agent, client_address)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (user_id, family_id, parent_id, token_hash, expires_at, user_agent, client_address),
    ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def lock_refresh_token(conn: psycopg.Connection[Any], token_hash: bytes) -> RefreshTokenRecord | None:
    """The refresh token with `token_hash`, locked until the transaction ends."""
    row = conn.execute(
        "SELECT id, user_id, family_id, expires_at, used_at, revoked_at FROM refresh_tokens"
        " WHERE token_hash = %s FOR UPDATE",
        (token_hash,),
    ).fetchone()
    if row is None:
        return None
    return RefreshTokenRecord(
        id=row[0], user_id=row[1], family_id=row[2], expires_at=row[3], used_at=row[4], revoked_at=row[5]
    )


def mark_refresh_token_used(conn: psycopg.Connection[Any], token_id: UUID) -> None:
    """Spend a refresh token: presenting it again is reuse."""
    conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = %s", (token_id,))


def revoke_refresh_family(conn: psycopg.Connection[Any], family_id: UUID) -> int:
    """Revoke every live token of a family; returns how many were live."""
    return conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = %s AND revoked_at IS NULL",
        (family_id,),
    ).rowcount


def insert_api_token(
    conn: psycopg.Connection[Any],
    *,
    user_id: UUID,
    name: str,
    prefix: str,
    token_hash: bytes,
    scope: ApiTokenScope,
    expires_at: datetime | None,
) -> ApiToken:
    """Store a new API token's hash; returns what its owner may see of it."""
    row = conn.execute(
        "INSERT INTO api_tokens (user_id, name, prefix, token_hash, scope, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " RETURNING id, name, prefix, scope, created_at, last_used_at, expires_at, revoked_at",
        (user_id, name, prefix, token_hash, scope, expires_at),
    ).fetchone()
    assert row is not None
    return _api_token(row)


def find_api_token_credential(conn: psycopg.Connection[Any], prefix: str) -> ApiTokenCredential | None:
    """The API token with `prefix` and its owner's state (service role: the owner is unknown)."""
    row = conn.execute(
        "SELECT t.id, t.user_id, t.token_hash, t.scope, t.expires_at, t.revoked_at, t.last_used_at,"
        " u.disabled_at IS NOT NULL FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.prefix = %s",
        (prefix,),
    ).fetchone()
    if row is None:
        return None
    return ApiTokenCredential(
        id=row[0],
        user_id=row[1],
        token_hash=bytes(row[2]),
        scope=row[3],
        expires_at=row[4],
        revoked_at=row[5],
        last_used_at=row[6],
        user_disabled=row[7],
    )


def touch_api_token(conn: psycopg.Connection[Any], token_id: UUID) -> None:
    """Record that the token was used (at most once a minute, to spare writes)."""
    conn.execute(
        "UPDATE api_tokens SET last_used_at = now() WHERE id = %s"
        " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        (token_id,),
    )


def list_api_tokens(
    conn: psycopg.Connection[Any], user_id: UUID, *, limit: int, after: tuple[datetime, UUID] | None
) -> list[ApiToken]:
    """A page of the user's tokens, newest first, after the (created_at, id) position `after`."""
    if after is None:
        rows = conn.execute(
            "SELECT id, name, prefix, scope, created_at, last_used_at, expires_at, revoked_at"
            " FROM api_tokens WHERE user_id = %s"
            " ORDER BY created_at DESC, id DESC LIMIT %s",
            (user_id, limit),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT id, name, prefix, scope, created_at, last_used_at, expires_at, revoked_at"
            " FROM api_tokens WHERE user_id = %s AND (created_at, id) < (%s, %s)"
            " ORDER BY created_at DESC, id DESC LIMIT %s",
            (user_id, after[0], after[1], limit),
        ).fetchall()
    return [_api_token(row) for row in rows]


def revoke_api_token(conn: psycopg.Connection[Any], user_id: UUID, token_id: UUID) -> ApiToken | None:
    """Revoke one of the user's tokens (already revoked stays as it was); None when not theirs."""
    row = conn.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s AND user_id = %s"
        " RETURNING id, name, prefix, scope, created_at, last_used_at, expires_at, revoked_at",
        (token_id, user_id),
    ).fetchone()
    return _api_token(row) if row else None


def _api_token(row: tuple[Any, ...]) -> ApiToken:
    return ApiToken(
        id=row[0],
        name=row[1],
        prefix=row[2],
        scope=row[3],
        created_at=row[4],
        last_used_at=row[5],
        expires_at=row[6],
        revoked_at=row[7],
    )

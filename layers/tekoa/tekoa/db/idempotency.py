"""Repository of idempotency keys: the first request's fingerprint and, once done, its response."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict


class IdempotencyRecord(BaseModel):
    """One key's state: in progress while `response_status` is None."""

    model_config = ConfigDict(frozen=True)

    request_method: str
    request_path: str
    request_hash: bytes
    response_status: int | None
    response_body: Any
    response_headers: dict[str, str] | None
    created_at: datetime
    expires_at: datetime


def claim_idempotency_key(
    conn: psycopg.Connection[Any],
    *,
    user_id: UUID,
    key: str,
    method: str,
    path: str,
    request_hash: bytes,
    expires_at: datetime,
    claim_id: UUID,
) -> bool:
    """Insert the key as in progress; False when the key already exists (the unique lock)."""
    return (
        conn.execute(
            "INSERT INTO idempotency_keys"
            " (user_id, key, request_method, request_path, request_hash, expires_at, claim_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, key) DO NOTHING",
            (user_id, key, method, path, request_hash, expires_at, claim_id),
        ).rowcount
        == 1
    )


def lock_idempotency_key(conn: psycopg.Connection[Any], user_id: UUID, key: str) -> IdempotencyRecord | None:
    """The key's row, locked until the transaction ends."""
    row = conn.execute(
        "SELECT request_method, request_path, request_hash, response_status, response_body,"
        " response_headers, created_at, expires_at FROM idempotency_keys"
        " WHERE user_id = %s AND key = %s FOR UPDATE",
        (user_id, key),
    ).fetchone()
    if row is None:
        return None
    return IdempotencyRecord(
        request_method=row[0],
        request_path=row[1],
        request_hash=bytes(row[2]),
        response_status=row[3],
        response_body=row[4],
        response_headers=row[5],
        created_at=row[6],
        expires_at=row[7],
    )


def reclaim_idempotency_key(
    conn: psycopg.Connection[Any],
    *,
    user_id: UUID,
    key: str,
    method: str,
    path: str,
    request_hash: bytes,
    expires_at: datetime,
    claim_id: UUID,
) -> None:
    """Start the key afresh for a new claim (its previous use expired or was abandoned)."""
    conn.execute(
        "UPDATE idempotency_keys SET request_method = %s, request_path = %s, request_hash = %s,"
        " response_status = NULL, response_body = NULL, response_headers = NULL, completed_at = NULL,"
        " created_at = now(), expires_at = %s, claim_id = %s WHERE user_id = %s AND key = %s",
        (method, path, request_hash, expires_at, claim_id, user_id, key),
    )


def complete_idempotency_key(
    conn: psycopg.Connection[Any],
    *,
    user_id: UUID,
    key: str,
    claim_id: UUID,
    status: int,
    body: Any,
    headers: dict[str, str],
) -> bool:
    """Store the response to replay for later requests with the key; False when `claim_id` no
    longer holds the key (it was taken over)."""
    return (
        conn.execute(
            "UPDATE idempotency_keys SET response_status = %s, response_body = %s, response_headers = %s,"
            " completed_at = now() WHERE user_id = %s AND key = %s AND claim_id = %s"
            " AND response_status IS NULL",
            (status, Jsonb(body), Jsonb(headers), user_id, key, claim_id),
        ).rowcount
        == 1
    )


def release_idempotency_key(conn: psycopg.Connection[Any], user_id: UUID, key: str, claim_id: UUID) -> None:
    """Forget an in-progress key whose request failed, so it can be retried."""
    conn.execute(
        "DELETE FROM idempotency_keys WHERE user_id = %s AND key = %s AND claim_id = %s"
        " AND response_status IS NULL",
        (user_id, key, claim_id),
    )


def purge_expired_idempotency_keys(conn: psycopg.Connection[Any]) -> int:
    """Delete keys past their expiry (service role housekeeping); returns how many."""
    return conn.execute("DELETE FROM idempotency_keys WHERE expires_at < now()").rowcount

"""Idempotent creation: the first request with a key runs, later ones get its stored response.

`begin` either hands the key to the caller (None: run the request, then `complete` or
`release`) or returns the stored response to replay. The (user, key) primary key is the lock:
of two concurrent requests with one key, exactly one claims it; the other sees it in progress.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from tekoa.db import idempotency as repository
from tekoa.db.connection import tenant_transaction
from tekoa.errors import IdempotencyKeyInProgress, IdempotencyKeyReused

RETENTION = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=2)
"""An in-progress key this old belongs to a request that died: a retry may take it over."""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str]


def request_fingerprint(method: str, path: str, body: Any) -> bytes:
    """SHA-256 of the request's method, path and canonical JSON body."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).digest()


def begin(
    conn: psycopg.Connection[Any], *, user_id: UUID, key: str, method: str, path: str, fingerprint: bytes
) -> StoredResponse | None:
    """Claim `key` for this request (None) or return the response stored for it.

    IdempotencyKeyReused when the key was used for a different request;
    IdempotencyKeyInProgress while the first request with the key is still running.
    """
    now = datetime.now(UTC)
    expires_at = now + RETENTION

    def claim() -> bool:
        return repository.claim_idempotency_key(
            conn,
            user_id=user_id,
            key=key,
            method=method,
            path=path,
            request_hash=fingerprint,
            expires_at=expires_at,
        )

    with tenant_transaction(conn, user_id):
        if claim():
            return None
        record = repository.lock_idempotency_key(conn, user_id, key)
        if record is None:  # deleted (released) between our insert and select: claim again
            if claim():
                return None
            raise IdempotencyKeyInProgress("a request with this Idempotency-Key is in progress")
        abandoned = record.response_status is None and record.created_at < now - ABANDONED_AFTER
        if record.expires_at <= now or abandoned:
            repository.reclaim_idempotency_key(
                conn,
                user_id=user_id,
                key=key,
                method=method,
                path=path,
                request_hash=fingerprint,
                expires_at=expires_at,
            )
            return None
        same_request = (record.request_method, record.request_path, record.request_hash) == (
            method,
            path,
            fingerprint,
        )
        if not same_request:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request", field="Idempotency-Key"
            )
        if record.response_status is None:
            raise IdempotencyKeyInProgress("a request with this Idempotency-Key is in progress")
        return StoredResponse(record.response_status, record.response_body, record.response_headers or {})


def complete(conn: psycopg.Connection[Any], *, user_id: UUID, key: str, response: StoredResponse) -> None:
    """Store the response of the request that claimed `key`."""
    with tenant_transaction(conn, user_id):
        repository.complete_idempotency_key(
            conn,
            user_id=user_id,
            key=key,
            status=response.status,
            body=response.body,
            headers=response.headers,
        )


def release(conn: psycopg.Connection[Any], *, user_id: UUID, key: str) -> None:
    """Give the key back after the request failed, so a retry runs it again."""
    with tenant_transaction(conn, user_id):
        repository.release_idempotency_key(conn, user_id, key)

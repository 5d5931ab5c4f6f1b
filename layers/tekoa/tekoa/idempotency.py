"""Idempotent creation: the first request with a key runs, later ones get its stored response.

`begin` either claims the key for the caller (a `Claim`: run the request) or returns the stored
response to replay. The (user, key) primary key is the lock: of two concurrent requests with
one key, exactly one claims it; the other sees it in progress.

The claiming request stores its response with `record_response` *inside the transaction that
creates the resource*, so the resource and the key's response commit together or not at all:
a crash at any line leaves either both (a retry replays) or neither (the claim is abandoned
and a retry, after `ABANDONED_AFTER`, runs again). A request that fails gives the key back
with `release`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

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


@dataclass(frozen=True)
class Claim:
    """A key this request holds: complete it with `record_response`, or `release` it."""

    user_id: UUID
    key: str
    claim_id: UUID


def request_fingerprint(method: str, path: str, body: Any) -> bytes:
    """SHA-256 of the request's method, path and canonical JSON body."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).digest()


def begin(
    conn: psycopg.Connection[Any], *, user_id: UUID, key: str, method: str, path: str, fingerprint: bytes
) -> Claim | StoredResponse:
    """Claim `key` for this request, or return the response stored for it.

    IdempotencyKeyReused when the key was used for a different request;
    IdempotencyKeyInProgress while the first request with the key is still running.
    """
    now = datetime.now(UTC)
    claim = Claim(user_id, key, uuid4())
    expires_at = now + RETENTION

    def take(write: Callable[..., Any]) -> Any:
        return write(
            conn,
            user_id=user_id,
            key=key,
            method=method,
            path=path,
            request_hash=fingerprint,
            expires_at=expires_at,
            claim_id=claim.claim_id,
        )

    with tenant_transaction(conn, user_id):
        if take(repository.claim_idempotency_key):
            return claim
        record = repository.lock_idempotency_key(conn, user_id, key)
        if record is None:  # deleted (released) between our insert and select: claim again
            if take(repository.claim_idempotency_key):
                return claim
            raise IdempotencyKeyInProgress("a request with this Idempotency-Key is in progress")
        abandoned = record.response_status is None and record.created_at < now - ABANDONED_AFTER
        if record.expires_at <= now or abandoned:
            take(repository.reclaim_idempotency_key)
            return claim
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


def record_response(conn: psycopg.Connection[Any], claim: Claim, response: StoredResponse) -> None:
    """Store the response for replays, in the caller's open transaction (the creating one).

    IdempotencyKeyInProgress when the claim was taken over meanwhile: the caller's transaction
    must then roll back, so the resource is not created twice.
    """
    stored = repository.complete_idempotency_key(
        conn,
        user_id=claim.user_id,
        key=claim.key,
        claim_id=claim.claim_id,
        status=response.status,
        body=response.body,
        headers=response.headers,
    )
    if not stored:
        raise IdempotencyKeyInProgress("another request with this Idempotency-Key took it over")


def release(conn: psycopg.Connection[Any], claim: Claim) -> None:
    """Give the key back after the request failed, so a retry runs it again."""
    with tenant_transaction(conn, claim.user_id):
        repository.release_idempotency_key(conn, claim.user_id, claim.key, claim.claim_id)

"""The audit log: an append-only record of security-relevant actions, never of secret values."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb


def record_audit(
    conn: psycopg.Connection[Any],
    *,
    user_id: UUID,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    detail: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> None:
    """Append one entry (`action` is `noun.verb`, e.g. `broker_credential.used`).

    Call it inside the transaction that does the audited work, so both commit or neither.
    """
    conn.execute(
        "INSERT INTO audit_log (user_id, action, target_type, target_id, detail, request_id)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (user_id, action, target_type, target_id, Jsonb(detail or {}), request_id),
    )


def list_audit(conn: psycopg.Connection[Any], user_id: UUID, limit: int = 100) -> list[dict[str, Any]]:
    """The newest entries of one user (scoped explicitly, and by row-level security)."""
    rows = conn.execute(
        "SELECT action, target_type, target_id, detail, request_id, created_at FROM audit_log"
        " WHERE user_id = %s ORDER BY id DESC LIMIT %s",
        (user_id, limit),
    ).fetchall()
    keys = ("action", "target_type", "target_id", "detail", "request_id", "created_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]

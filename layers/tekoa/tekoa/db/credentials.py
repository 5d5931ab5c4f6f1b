"""Broker credentials: the sealed (envelope-encrypted) secret and what may be shown of it.

Only `get_sealed_credential` reads the encrypted columns; every other query returns the
shown fields alone, so a listing cannot leak ciphertext by accident.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tekoa.domain.resources import BrokerCredential, ResourceInUse
from tekoa.security.envelope import SealedSecret

_SHOWN = sql.SQL(
    "id, exchange, label, hint, verified_at IS NOT NULL AS verified, verified_at, last_used_at, created_at"
)


def insert_credential(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    credential_id: UUID,
    exchange: str,
    label: str,
    hint: str,
    sealed: SealedSecret,
) -> BrokerCredential:
    """Store a sealed credential under the id its encryption context names."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO broker_credentials (id, user_id, exchange, label, hint,"
                " key_provider, key_id, wrapped_key, nonce, ciphertext) VALUES (%s, %s, %s, %s,"
                " %s, %s, %s, %s, %s, %s) RETURNING {}"
            ).format(_SHOWN),
            (
                credential_id,
                user_id,
                exchange,
                label,
                hint,
                sealed.key_provider,
                sealed.key_id,
                sealed.wrapped_key,
                sealed.nonce,
                sealed.ciphertext,
            ),
        )
        row = cur.fetchone()
    assert row is not None
    return BrokerCredential.model_validate(row)


def get_credential(
    conn: psycopg.Connection[Any], user_id: UUID, credential_id: UUID, *, for_share: bool = False
) -> BrokerCredential | None:
    """The owner's credential as shown (no secret material).

    `for_share` keeps it from being deleted until the transaction ends (a bot is bound to it).
    """
    lock = sql.SQL(" FOR SHARE" if for_share else "")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM broker_credentials WHERE user_id = %s AND id = %s{}").format(
                _SHOWN, lock
            ),
            (user_id, credential_id),
        )
        row = cur.fetchone()
    return None if row is None else BrokerCredential.model_validate(row)


def get_sealed_credential(
    conn: psycopg.Connection[Any], user_id: UUID, credential_id: UUID
) -> tuple[BrokerCredential, SealedSecret] | None:
    """The owner's credential with its sealed secret, for decryption."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {}, key_provider, key_id, wrapped_key, nonce, ciphertext FROM"
                " broker_credentials WHERE user_id = %s AND id = %s"
            ).format(_SHOWN),
            (user_id, credential_id),
        )
        row = cur.fetchone()
    if row is None:
        return None
    sealed = SealedSecret(
        key_provider=row.pop("key_provider"),
        key_id=row.pop("key_id"),
        wrapped_key=bytes(row.pop("wrapped_key")),
        nonce=bytes(row.pop("nonce")),
        ciphertext=bytes(row.pop("ciphertext")),
    )
    return BrokerCredential.model_validate(row), sealed


def list_credentials(
    conn: psycopg.Connection[Any], user_id: UUID, *, after: tuple[datetime, UUID] | None, limit: int
) -> list[BrokerCredential]:
    """The owner's credentials, newest first, after the (created_at, id) cursor."""
    after_time, after_id = after if after is not None else (None, None)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM broker_credentials WHERE user_id = %(user_id)s"
                " AND (%(after_time)s::timestamptz IS NULL"
                " OR (created_at, id) < (%(after_time)s, %(after_id)s))"
                " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
            ).format(_SHOWN),
            {"user_id": user_id, "after_time": after_time, "after_id": after_id, "limit": limit},
        )
        return [BrokerCredential.model_validate(row) for row in cur.fetchall()]


def mark_verified(
    conn: psycopg.Connection[Any], user_id: UUID, credential_id: UUID
) -> BrokerCredential | None:
    """Record that the exchange accepted the credential just now."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "UPDATE broker_credentials SET verified_at = now() WHERE user_id = %s AND id = %s"
                " RETURNING {}"
            ).format(_SHOWN),
            (user_id, credential_id),
        )
        row = cur.fetchone()
    return None if row is None else BrokerCredential.model_validate(row)


def touch_last_used(conn: psycopg.Connection[Any], user_id: UUID, credential_id: UUID) -> None:
    """Record that the secret was decrypted for use just now."""
    conn.execute(
        "UPDATE broker_credentials SET last_used_at = now() WHERE user_id = %s AND id = %s",
        (user_id, credential_id),
    )


def delete_credential(conn: psycopg.Connection[Any], user_id: UUID, credential_id: UUID) -> bool:
    """Delete a credential and its ciphertext; ResourceInUse while a bot references it."""
    try:
        with conn.transaction():
            cur = conn.execute(
                "DELETE FROM broker_credentials WHERE user_id = %s AND id = %s", (user_id, credential_id)
            )
    except psycopg.errors.ForeignKeyViolation:
        raise ResourceInUse(
            "bots use this credential; delete them or point them at another credential first",
            field="credential_id",
        ) from None
    return cur.rowcount == 1

"""Notification channels: the sealed secret (Telegram bot token, webhook signing key) and what
may be shown. Only `get_sealed_channel` reads the encrypted columns."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tekoa.notify.models import NotificationChannel, NotifyEvent
from tekoa.security.envelope import SealedSecret

_SHOWN = sql.SQL("id, kind, name, target, events, enabled, hint, created_at, updated_at")


def insert_channel(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    channel_id: UUID,
    kind: str,
    name: str,
    target: str,
    events: list[NotifyEvent],
    hint: str,
    sealed: SealedSecret,
) -> NotificationChannel:
    """Store a channel under the id its encryption context names."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO notification_channels (id, user_id, kind, name, target, events, hint,"
                " key_provider, key_id, wrapped_key, nonce, ciphertext)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {}"
            ).format(_SHOWN),
            (
                channel_id,
                user_id,
                kind,
                name,
                target,
                [event.value for event in events],
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
    return NotificationChannel.model_validate(row)


def list_channels(conn: psycopg.Connection[Any], user_id: UUID) -> list[NotificationChannel]:
    """The user's channels, newest first (a user has a handful)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM notification_channels WHERE user_id = %s ORDER BY created_at DESC, id DESC"
            ).format(_SHOWN),
            (user_id,),
        )
        return [NotificationChannel.model_validate(row) for row in cur.fetchall()]


def get_channel(conn: psycopg.Connection[Any], user_id: UUID, channel_id: UUID) -> NotificationChannel | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM notification_channels WHERE user_id = %s AND id = %s").format(_SHOWN),
            (user_id, channel_id),
        )
        row = cur.fetchone()
    return None if row is None else NotificationChannel.model_validate(row)


def update_channel(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    channel_id: UUID,
    *,
    name: str | None,
    events: list[NotifyEvent] | None,
    enabled: bool | None,
) -> NotificationChannel | None:
    """Change what is given (None keeps it)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "UPDATE notification_channels SET name = coalesce(%s, name),"
                " events = coalesce(%s, events), enabled = coalesce(%s, enabled), updated_at = now(),"
                " version = version + 1 WHERE user_id = %s AND id = %s RETURNING {}"
            ).format(_SHOWN),
            (name, None if events is None else [e.value for e in events], enabled, user_id, channel_id),
        )
        row = cur.fetchone()
    return None if row is None else NotificationChannel.model_validate(row)


def delete_channel(conn: psycopg.Connection[Any], user_id: UUID, channel_id: UUID) -> bool:
    return (
        conn.execute(
            "DELETE FROM notification_channels WHERE user_id = %s AND id = %s", (user_id, channel_id)
        ).rowcount
        == 1
    )


def channels_for(
    conn: psycopg.Connection[Any], user_id: UUID, events: list[NotifyEvent]
) -> list[NotificationChannel]:
    """The user's enabled channels told about any of `events`."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM notification_channels WHERE user_id = %s AND enabled AND events && %s::text[]"
                " ORDER BY created_at"
            ).format(_SHOWN),
            (user_id, [event.value for event in events]),
        )
        return [NotificationChannel.model_validate(row) for row in cur.fetchall()]


def get_sealed_channel(
    conn: psycopg.Connection[Any], user_id: UUID, channel_id: UUID
) -> tuple[NotificationChannel, SealedSecret] | None:
    """A channel with its sealed secret (delivery only)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {}, key_provider, key_id, wrapped_key, nonce, ciphertext FROM notification_channels"
                " WHERE user_id = %s AND id = %s"
            ).format(_SHOWN),
            (user_id, channel_id),
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
    return NotificationChannel.model_validate(row), sealed


def owners_told_of(conn: psycopg.Connection[Any], event: NotifyEvent) -> list[UUID]:
    """Every user with an enabled channel told of `event` (service role)."""
    rows = conn.execute(
        "SELECT DISTINCT user_id FROM notification_channels WHERE enabled AND %s = ANY(events)"
        " ORDER BY user_id",
        (event.value,),
    ).fetchall()
    return [UUID(str(row[0])) for row in rows]

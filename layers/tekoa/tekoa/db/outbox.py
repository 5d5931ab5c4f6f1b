"""The transactional outbox: events stored with the change they announce, published after commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from tekoa.aws.events import BusEvent
from tekoa.db import bulk


def add_events(conn: psycopg.Connection[Any], events: Sequence[tuple[UUID, UUID, BusEvent]]) -> None:
    """Store (owner, id, event) rows in the caller's transaction, to publish after its commit."""
    bulk.insert_rows(
        conn,
        "event_outbox",
        (("id", "uuid"), ("user_id", "uuid"), ("detail_type", "text"), ("detail", "jsonb")),
        [(event_id, user_id, event.detail_type, Jsonb(event.detail)) for user_id, event_id, event in events],
    )


def delete_events(conn: psycopg.Connection[Any], ids: Sequence[UUID]) -> None:
    """Forget published events (service role: they may be anyone's)."""
    if ids:
        conn.execute("DELETE FROM event_outbox WHERE id = ANY(%s)", (list(ids),))


def take_stale_events(
    conn: psycopg.Connection[Any], *, older_than_s: float, limit: int = 500
) -> list[tuple[UUID, BusEvent]]:
    """Events left behind by a crash between commit and publish, locked so one sweeper takes them."""
    rows = conn.execute(
        "SELECT id, detail_type, detail FROM event_outbox WHERE created_at <= now() - make_interval(secs =>"
        " %s)"
        " ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (older_than_s, limit),
    ).fetchall()
    return [(row[0], BusEvent(detail_type=row[1], detail=row[2])) for row in rows]

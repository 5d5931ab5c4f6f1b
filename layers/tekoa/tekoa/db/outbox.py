"""The transactional outbox: events stored with the change they announce, published after commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from tekoa.aws.events import BusEvent


def add_events(conn: psycopg.Connection[Any], user_id: UUID, events: Sequence[BusEvent]) -> list[int]:
    """Store events in the caller's transaction; their ids, to delete once published."""
    if not events:
        return []
    placeholders = ", ".join(["(%s, %s, %s)"] * len(events))
    rows = conn.execute(
        f"INSERT INTO event_outbox (user_id, detail_type, detail) VALUES {placeholders} RETURNING id",  # noqa: S608
        [value for event in events for value in (user_id, event.detail_type, Jsonb(event.detail))],
    ).fetchall()
    return [int(row[0]) for row in rows]


def delete_events(conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
    """Forget published events (service role: they may be anyone's)."""
    if ids:
        conn.execute("DELETE FROM event_outbox WHERE id = ANY(%s)", (list(ids),))


def take_stale_events(
    conn: psycopg.Connection[Any], *, older_than_s: float, limit: int = 500
) -> list[tuple[int, BusEvent]]:
    """Events left behind by a crash between commit and publish, locked so one sweeper takes them."""
    rows = conn.execute(
        "SELECT id, detail_type, detail FROM event_outbox WHERE created_at <= now() - make_interval(secs => %s)"
        " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (older_than_s, limit),
    ).fetchall()
    return [(int(row[0]), BusEvent(detail_type=row[1], detail=row[2])) for row in rows]

"""The activity feed: what happened to a user's bots, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tekoa.db import bulk
from tekoa.domain.resources import ActivityEntry, ActivityLevel

_COLUMNS = sql.SQL("id, bot_id, level, message, data, created_at")


@dataclass(frozen=True, slots=True)
class NewActivity:
    user_id: UUID
    level: ActivityLevel
    message: str
    bot_id: UUID | None
    data: dict[str, Any]


def insert_activity(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    level: ActivityLevel,
    message: str,
    bot_id: UUID | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one entry (call inside the transaction of the change it reports)."""
    insert_activities(conn, [NewActivity(user_id, level, message, bot_id, data or {})])


def insert_activities(conn: psycopg.Connection[Any], entries: Sequence[NewActivity]) -> None:
    """Append entries in one statement, returning nothing (no round trip in a pipeline)."""
    bulk.insert_rows(
        conn,
        "activity",
        (("user_id", "uuid"), ("bot_id", "uuid"), ("level", "text"), ("message", "text"), ("data", "jsonb")),
        [(e.user_id, e.bot_id, e.level.value, e.message, Jsonb(e.data)) for e in entries],
    )


def list_activity(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    bot_id: UUID | None,
    level: ActivityLevel | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[ActivityEntry]:
    """The owner's entries, newest first (by id), filtered, below the `before_id` cursor."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM activity WHERE user_id = %(user_id)s"
                " AND (%(bot_id)s::uuid IS NULL OR bot_id = %(bot_id)s)"
                " AND (%(level)s::text IS NULL OR level = %(level)s)"
                " AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)"
                " AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)"
                " AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s)"
                " ORDER BY id DESC LIMIT %(limit)s"
            ).format(_COLUMNS),
            {
                "user_id": user_id,
                "bot_id": bot_id,
                "level": level.value if level is not None else None,
                "since": since,
                "until": until,
                "before_id": before_id,
                "limit": limit,
            },
        )
        return [ActivityEntry.model_validate(row) for row in cur.fetchall()]


def clear_activity(conn: psycopg.Connection[Any], user_id: UUID, *, bot_id: UUID | None) -> int:
    """Delete the owner's entries (only one bot's when `bot_id` is given); returns how many."""
    if bot_id is None:
        return conn.execute("DELETE FROM activity WHERE user_id = %s", (user_id,)).rowcount
    return conn.execute("DELETE FROM activity WHERE user_id = %s AND bot_id = %s", (user_id, bot_id)).rowcount

"""The activity feed: listing with filters, and clearing."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from tekoa.db import activity as rows
from tekoa.db.connection import Database, tenant_transaction
from tekoa.domain.resources import ActivityEntry, ActivityLevel
from tekoa.errors import ValidationFailed


def list_activity(
    database: Database,
    user_id: UUID,
    *,
    bot_id: UUID | None = None,
    level: ActivityLevel | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int,
) -> list[ActivityEntry]:
    """The caller's entries, newest first, in [since, until) when given."""
    if since is not None and until is not None and since >= until:
        raise ValidationFailed("since must be before until", field="since")
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return rows.list_activity(
            conn,
            user_id,
            bot_id=bot_id,
            level=level,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit,
        )


def clear_activity(database: Database, user_id: UUID, *, bot_id: UUID | None = None) -> int:
    """Delete the caller's entries (one bot's only, when `bot_id` is given); how many went."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return rows.clear_activity(conn, user_id, bot_id=bot_id)

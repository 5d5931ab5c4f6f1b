"""WebSocket connections and their subscriptions (`ws_connections`).

Route handlers write a user's own rows (tenant role); fan-out reads everyone's (service role).
Every recipient query also says whether the connection is still *live*: its account enabled,
not signed out since it connected (token generation), its API token neither revoked nor
expired, and the connection not past its expiry. A dead connection receives nothing; its
caller closes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from tekoa.realtime.messages import ALL_BOTS, bot_channel

_LIVE = (
    "c.expires_at > now() AND u.disabled_at IS NULL"
    " AND (c.token_generation IS NULL OR c.token_generation = u.token_generation)"
    " AND (c.api_token_id IS NULL"
    " OR (t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())))"
)
_JOINS = "ws_connections c JOIN users u ON u.id = c.user_id LEFT JOIN api_tokens t ON t.id = c.api_token_id"


@dataclass(frozen=True, slots=True)
class Recipient:
    """A connection to push to, or (not `live`) to close."""

    connection_id: str
    live: bool


def insert_connection(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    connection_id: str,
    *,
    token_generation: int | None,
    api_token_id: UUID | None,
    expires_at: datetime,
) -> None:
    """Record a connection API Gateway accepted (a reused id replaces the old row)."""
    conn.execute(
        "INSERT INTO ws_connections (connection_id, user_id, token_generation, api_token_id, expires_at)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (connection_id) DO UPDATE SET"
        " user_id = EXCLUDED.user_id, token_generation = EXCLUDED.token_generation,"
        " api_token_id = EXCLUDED.api_token_id, channels = '{}', connected_at = now(),"
        " expires_at = EXCLUDED.expires_at",
        (connection_id, user_id, token_generation, api_token_id, expires_at),
    )


def owner_of(conn: psycopg.Connection[Any], connection_id: str) -> UUID | None:
    """Whose connection this is (service role; the route handler knows only the id)."""
    row = conn.execute(
        f"SELECT c.user_id FROM {_JOINS} WHERE c.connection_id = %s AND {_LIVE}",  # noqa: S608 - fixed SQL
        (connection_id,),
    ).fetchone()
    return None if row is None else UUID(str(row[0]))


def add_channels(
    conn: psycopg.Connection[Any], user_id: UUID, connection_id: str, channels: Sequence[str]
) -> list[str] | None:
    """Subscribe; the connection's channels after it (None: no such connection)."""
    row = conn.execute(
        "UPDATE ws_connections SET channels = ARRAY("
        " SELECT ch FROM unnest(channels || %s::text[]) WITH ORDINALITY AS t(ch, i)"
        " GROUP BY ch ORDER BY min(i))"
        " WHERE connection_id = %s AND user_id = %s RETURNING channels",
        (list(channels), connection_id, user_id),
    ).fetchone()
    return None if row is None else list(row[0])


def remove_channels(
    conn: psycopg.Connection[Any], user_id: UUID, connection_id: str, channels: Sequence[str]
) -> list[str] | None:
    """Unsubscribe; the connection's channels after it (None: no such connection)."""
    row = conn.execute(
        "UPDATE ws_connections SET channels = ARRAY("
        " SELECT ch FROM unnest(channels) WITH ORDINALITY AS t(ch, i) WHERE ch <> ALL(%s::text[]) ORDER BY i)"
        " WHERE connection_id = %s AND user_id = %s RETURNING channels",
        (list(channels), connection_id, user_id),
    ).fetchone()
    return None if row is None else list(row[0])


def delete_connections(conn: psycopg.Connection[Any], connection_ids: Sequence[str]) -> int:
    """Forget connections that are gone (service role)."""
    if not connection_ids:
        return 0
    return conn.execute(
        "DELETE FROM ws_connections WHERE connection_id = ANY(%s)", (list(connection_ids),)
    ).rowcount


def market_recipients(conn: psycopg.Connection[Any], channels: Sequence[str]) -> dict[str, list[Recipient]]:
    """The connections subscribed to each of `channels` (market channels are public)."""
    rows = conn.execute(
        f"SELECT ch, c.connection_id, {_LIVE} FROM {_JOINS}, unnest(c.channels) AS ch"  # noqa: S608 - fixed SQL
        " WHERE c.channels && %(channels)s::text[] AND ch = ANY(%(channels)s::text[])",
        {"channels": list(channels)},
    ).fetchall()
    found: dict[str, list[Recipient]] = {}
    for channel, connection_id, live in rows:
        found.setdefault(channel, []).append(Recipient(connection_id, bool(live)))
    return found


def subscribed_markets(conn: psycopg.Connection[Any], exchange: str) -> dict[str, list[Recipient]]:
    """Every market channel of `exchange` someone subscribed to, with its connections."""
    rows = conn.execute(
        f"SELECT ch, c.connection_id, {_LIVE} FROM {_JOINS}, unnest(c.channels) AS ch"  # noqa: S608 - fixed SQL
        " WHERE starts_with(ch, %s)",
        (f"market:{exchange}:",),
    ).fetchall()
    found: dict[str, list[Recipient]] = {}
    for channel, connection_id, live in rows:
        found.setdefault(channel, []).append(Recipient(connection_id, bool(live)))
    return found


def owner_recipients(
    conn: psycopg.Connection[Any], user_id: UUID, *, bot_id: UUID | None = None
) -> list[Recipient]:
    """The user's connections an event of theirs goes to: all of them, or for a bot's event
    those subscribed to that bot (or to all bots)."""
    bot_filter = "" if bot_id is None else " AND c.channels && %(bots)s::text[]"
    rows = conn.execute(
        f"SELECT c.connection_id, {_LIVE} FROM {_JOINS} WHERE c.user_id = %(user_id)s{bot_filter}",  # noqa: S608
        {"user_id": user_id, "bots": [bot_channel(bot_id), ALL_BOTS] if bot_id else None},
    ).fetchall()
    return [Recipient(connection_id, bool(live)) for connection_id, live in rows]


def live_recipients(conn: psycopg.Connection[Any]) -> list[Recipient]:
    """Every connection (a platform-wide alert reaches them all)."""
    rows = conn.execute(f"SELECT c.connection_id, {_LIVE} FROM {_JOINS}").fetchall()  # noqa: S608
    return [Recipient(connection_id, bool(live)) for connection_id, live in rows]


def purge_expired_connections(conn: psycopg.Connection[Any]) -> int:
    """Drop connections past their expiry (API Gateway has closed them; a $disconnect was missed)."""
    return conn.execute("DELETE FROM ws_connections WHERE expires_at <= now()").rowcount

"""Bots and their append-only status history. Every query names its owner; RLS backs it up."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tekoa.domain.bots import BotAction, BotStatus, RiskSettings, TradingMode
from tekoa.domain.resources import Bot, BotNotFound, BotStatusChange, NameTaken
from tekoa.domain.timeframes import Timeframe
from tekoa.errors import ValidationFailed

_COLUMNS = sql.SQL(
    "id, name, strategy_id, credential_id, exchange, symbol, timeframe, mode, risk, status,"
    " live_confirmed_at, version, created_at, updated_at, archived_at"
)


def insert_bot(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    name: str,
    strategy_id: UUID,
    credential_id: UUID | None,
    exchange: str,
    symbol: str,
    timeframe: Timeframe,
    mode: TradingMode,
    risk: RiskSettings,
) -> Bot:
    """Store a new, stopped bot; NameTaken if the owner already uses the name.

    A live bot is stored with `live_confirmed_at = now()`: the caller has checked the
    confirmation, the database insists on it.
    """
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                sql.SQL(
                    "INSERT INTO bots (user_id, name, strategy_id, credential_id, exchange, symbol,"
                    " timeframe, mode, risk, live_confirmed_at) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s, CASE WHEN %s = 'live' THEN now() END) RETURNING {}"
                ).format(_COLUMNS),
                (
                    user_id,
                    name,
                    strategy_id,
                    credential_id,
                    exchange,
                    symbol,
                    timeframe.value,
                    mode.value,
                    Jsonb(risk.model_dump(mode="json")),
                    mode.value,
                ),
            )
            row = cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise NameTaken("bot", name) from None
    except psycopg.errors.ForeignKeyViolation:
        # The service locks both first; this only answers a caller that skipped that check.
        raise ValidationFailed("the strategy or credential does not exist", field="strategy_id") from None
    assert row is not None
    return Bot.model_validate(row)


def get_bot(
    conn: psycopg.Connection[Any], user_id: UUID, bot_id: UUID, *, for_update: bool = False
) -> Bot | None:
    """The owner's bot, locked for the transaction when `for_update` (status changes)."""
    lock = " FOR UPDATE" if for_update else ""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM bots WHERE user_id = %s AND id = %s{}").format(_COLUMNS, sql.SQL(lock)),
            (user_id, bot_id),
        )
        row = cur.fetchone()
    return None if row is None else Bot.model_validate(row)


def list_bots(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    status: BotStatus | None,
    strategy_id: UUID | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
    archived: bool = False,
) -> list[Bot]:
    """The owner's bots (archived ones when `archived`), newest first, after the cursor."""
    after_time, after_id = after if after is not None else (None, None)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM bots WHERE user_id = %(user_id)s"
                " AND (%(status)s::text IS NULL OR status = %(status)s)"
                " AND (%(strategy_id)s::uuid IS NULL OR strategy_id = %(strategy_id)s)"
                " AND (archived_at IS NOT NULL) = %(archived)s"
                " AND (%(after_time)s::timestamptz IS NULL"
                " OR (created_at, id) < (%(after_time)s, %(after_id)s))"
                " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
            ).format(_COLUMNS),
            {
                "user_id": user_id,
                "status": status.value if status is not None else None,
                "strategy_id": strategy_id,
                "archived": archived,
                "after_time": after_time,
                "after_id": after_id,
                "limit": limit,
            },
        )
        return [Bot.model_validate(row) for row in cur.fetchall()]


def lock_bots_in_status(
    conn: psycopg.Connection[Any], user_id: UUID, statuses: Collection[BotStatus]
) -> list[Bot]:
    """The owner's bots in any of `statuses`, locked for the transaction (stop-all)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM bots WHERE user_id = %s AND status = ANY(%s) AND archived_at IS NULL"
                " ORDER BY id FOR UPDATE"
            ).format(_COLUMNS),
            (user_id, [status.value for status in statuses]),
        )
        return [Bot.model_validate(row) for row in cur.fetchall()]


def bots_using_strategy(conn: psycopg.Connection[Any], user_id: UUID, strategy_id: UUID) -> list[Bot]:
    """Every bot of the owner that runs `strategy_id`."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM bots WHERE user_id = %s AND strategy_id = %s ORDER BY id").format(
                _COLUMNS
            ),
            (user_id, strategy_id),
        )
        return [Bot.model_validate(row) for row in cur.fetchall()]


def count_bots_using_credential(conn: psycopg.Connection[Any], user_id: UUID, credential_id: UUID) -> int:
    """How many of the owner's bots trade through `credential_id`."""
    row = conn.execute(
        "SELECT count(*) FROM bots WHERE user_id = %s AND credential_id = %s", (user_id, credential_id)
    ).fetchone()
    return int(row[0]) if row else 0


def update_bot(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    bot_id: UUID,
    *,
    name: str,
    strategy_id: UUID,
    credential_id: UUID | None,
    exchange: str,
    symbol: str,
    timeframe: Timeframe,
    mode: TradingMode,
    risk: RiskSettings,
    live_confirmed_at: datetime | None,
    confirm_live_now: bool,
) -> Bot:
    """Replace a bot's settings and bump its version; NameTaken on a duplicate name.

    `confirm_live_now` stamps `live_confirmed_at = now()`; otherwise the given value is kept.
    """
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                sql.SQL(
                    "UPDATE bots SET name = %s, strategy_id = %s, credential_id = %s, exchange = %s,"
                    " symbol = %s, timeframe = %s, mode = %s, risk = %s, live_confirmed_at = CASE"
                    " WHEN %s THEN now() ELSE %s END, version = version + 1, updated_at = now() WHERE"
                    " user_id = %s AND id = %s RETURNING {}"
                ).format(_COLUMNS),
                (
                    name,
                    strategy_id,
                    credential_id,
                    exchange,
                    symbol,
                    timeframe.value,
                    mode.value,
                    Jsonb(risk.model_dump(mode="json")),
                    confirm_live_now,
                    live_confirmed_at,
                    user_id,
                    bot_id,
                ),
            )
            row = cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise NameTaken("bot", name) from None
    except psycopg.errors.ForeignKeyViolation:
        # The service locks both first; this only answers a caller that skipped that check.
        raise ValidationFailed("the strategy or credential does not exist", field="strategy_id") from None
    if row is None:
        raise BotNotFound()
    return Bot.model_validate(row)


def set_bot_status(conn: psycopg.Connection[Any], user_id: UUID, bot_id: UUID, status: BotStatus) -> Bot:
    """Store a new status (the caller holds the row lock and has checked the transition)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "UPDATE bots SET status = %s, version = version + 1, updated_at = now() WHERE"
                " user_id = %s AND id = %s RETURNING {}"
            ).format(_COLUMNS),
            (status.value, user_id, bot_id),
        )
        row = cur.fetchone()
    if row is None:
        raise BotNotFound()
    return Bot.model_validate(row)


def has_orders(conn: psycopg.Connection[Any], user_id: UUID, bot_id: UUID) -> bool:
    """Whether any order (hence ledger entries) refers to the bot."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM orders WHERE user_id = %s AND bot_id = %s)", (user_id, bot_id)
    ).fetchone()
    return bool(row and row[0])


def archive_bot(conn: psycopg.Connection[Any], user_id: UUID, bot_id: UUID) -> Bot:
    """Keep a bot with a trading history, read-only: its name becomes free for a new bot."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "UPDATE bots SET archived_at = now(), version = version + 1, updated_at = now()"
                " WHERE user_id = %s AND id = %s RETURNING {}"
            ).format(_COLUMNS),
            (user_id, bot_id),
        )
        row = cur.fetchone()
    if row is None:
        raise BotNotFound()
    return Bot.model_validate(row)


def delete_bot(conn: psycopg.Connection[Any], user_id: UUID, bot_id: UUID) -> bool:
    """Delete a bot and its status history; False when the owner has no such bot."""
    return conn.execute("DELETE FROM bots WHERE user_id = %s AND id = %s", (user_id, bot_id)).rowcount == 1


def insert_status_change(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    bot_id: UUID,
    from_status: BotStatus,
    to_status: BotStatus,
    action: BotAction,
    reason: str | None,
    actor: Literal["user", "system"],
) -> BotStatusChange:
    """Append one status change to a bot's history."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "INSERT INTO bot_status_changes (user_id, bot_id, from_status, to_status, action, reason, actor)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id, bot_id, from_status, to_status, action, reason, actor, at",
            (user_id, bot_id, from_status.value, to_status.value, action.value, reason, actor),
        )
        row = cur.fetchone()
    assert row is not None
    return BotStatusChange.model_validate(row)


def list_status_changes(
    conn: psycopg.Connection[Any], user_id: UUID, bot_id: UUID, *, before_id: int | None, limit: int
) -> list[BotStatusChange]:
    """A bot's status history, newest first, below `before_id` when given."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT id, bot_id, from_status, to_status, action, reason, actor, at FROM bot_status_changes"
            " WHERE user_id = %s AND bot_id = %s AND id < %s ORDER BY id DESC LIMIT %s",
            (user_id, bot_id, before_id if before_id is not None else 2**63 - 1, limit),
        )
        return [BotStatusChange.model_validate(row) for row in cur.fetchall()]


def owned_bot_ids(conn: psycopg.Connection[Any], user_id: UUID, bot_ids: Collection[UUID]) -> set[UUID]:
    """Which of `bot_ids` are the owner's."""
    rows = conn.execute(
        "SELECT id FROM bots WHERE user_id = %s AND id = ANY(%s)", (user_id, list(bot_ids))
    ).fetchall()
    return {UUID(str(row[0])) for row in rows}

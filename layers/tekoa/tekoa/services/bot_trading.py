"""What a bot does, seen and steered by its owner: health (last and next evaluation), its
evaluations, its performance, and manual control (force-exit, force-entry; both audited)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tekoa.aws.queues import OrderQueue
from tekoa.db import accounts as account_rows
from tekoa.db import bots as bot_rows
from tekoa.db.audit import record_audit
from tekoa.db.connection import Database, tenant_transaction
from tekoa.domain.bots import BotStatus
from tekoa.domain.execution import Order
from tekoa.domain.orders import OrderSide, OrderType, ProtectionSpec, StopSpec, place
from tekoa.domain.resources import Bot, BotNotFound
from tekoa.domain.wire import DecimalText
from tekoa.errors import Conflict, ValidationFailed
from tekoa.execution.accounts import PaperDefaults, open_account
from tekoa.execution.messages import PlaceMessage
from tekoa.services import positions as position_service
from tekoa.services.trades import overall_stats
from tekoa.settings import Settings


class BotHealth(BaseModel):
    """When the bot was last evaluated and is next due."""

    strategy_version: int | None = Field(description="The strategy version the bot runs (pinned at start).")
    last_evaluation_at: int | None = Field(description="When it was last evaluated (UTC ms).")
    last_candle_open_time: int | None = Field(
        description="Open time of the last candle evaluated or skipped."
    )
    next_evaluation_at: int | None = Field(
        description="When its next candle closes (UTC ms; evaluated then): running bots only."
    )
    consecutive_skips: int = Field(description="Evaluations skipped in a row (no or stale data).")


class Evaluation(BaseModel):
    """One evaluation of a bot on one candle."""

    candle_open_time: int
    timeframe: str
    strategy_version: int | None
    outcome: Literal["decided", "skipped"]
    signal: Literal["buy", "sell", "none"]
    reason: str
    score: float | None
    matched: list[str]
    risk_verdict: str | None = Field(description="approved, resized, rejected, or mixed over the intents.")
    risk: list[dict[str, Any]] = Field(description="Each intent's verdict and why.")
    intents: list[dict[str, Any]] = Field(description="What was sent to the order queue.")
    evaluated_at: int
    sent_at: int | None


class Performance(BaseModel):
    """The bot's results: closed trades, and its open position valued at the last trade."""

    trades: int
    wins: int
    losses: int
    win_rate: DecimalText | None = Field(description="wins / trades (0-1); none without trades.")
    realized_pnl: DecimalText = Field(description="Net of fees, over closed trades.")
    fees: DecimalText
    unrealized_pnl: DecimalText = Field(description="Open position at the last trade, before exit fees.")
    total_pnl: DecimalText
    max_drawdown: DecimalText = Field(description="Largest fall of cumulative realized P&L from its peak.")
    open_position_quantity: DecimalText


class ForceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote_amount: Decimal = Field(gt=0, le=Decimal("1e12"), description="How much quote currency to buy for.")
    stop_loss_pct: Decimal | None = Field(None, gt=0, lt=100, description="A stop this far below the fill.")


class ForcedEntry(BaseModel):
    client_order_id: str
    quantity: DecimalText
    price: DecimalText = Field(description="The last trade the quantity was computed at.")


def health(database: Database, user_id: UUID, bot: Bot) -> BotHealth:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        row = conn.execute(
            "SELECT b.strategy_version, (extract(epoch FROM r.last_evaluated_at) * 1000)::bigint,"
            " r.last_candle, coalesce(r.skips, 0) FROM bots b LEFT JOIN bot_runtime r ON r.bot_id = b.id"
            " WHERE b.user_id = %s AND b.id = %s",
            (user_id, bot.id),
        ).fetchone()
    assert row is not None
    version, evaluated_at, candle, skips = row
    due = None
    if bot.status is BotStatus.RUNNING:
        tf = bot.timeframe.ms
        now = int(time.time() * 1000)
        # The next candle to evaluate closes one timeframe after the last one evaluated; a bot
        # that never ran (or fell behind) is due at the next close from now.
        due = max((now // tf + 1) * tf, (candle + 2 * tf) if candle is not None else 0)
    return BotHealth(
        strategy_version=version,
        last_evaluation_at=evaluated_at,
        last_candle_open_time=candle,
        next_evaluation_at=due,
        consecutive_skips=skips,
    )


def list_evaluations(
    database: Database, user_id: UUID, bot_id: UUID, *, before: int | None, limit: int
) -> list[Evaluation]:
    """The bot's evaluations, newest candle first."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        if bot_rows.get_bot(conn, user_id, bot_id) is None:
            raise BotNotFound()
        rows = conn.execute(
            "SELECT candle_open_time, timeframe, strategy_version, outcome, signal, reason, score, matched,"
            " risk_verdict, risk, intents, (extract(epoch FROM evaluated_at) * 1000)::bigint,"
            " (extract(epoch FROM sent_at) * 1000)::bigint"
            " FROM evaluations WHERE user_id = %s AND bot_id = %s"
            " AND (%s::bigint IS NULL OR candle_open_time < %s) ORDER BY candle_open_time DESC LIMIT %s",
            (user_id, bot_id, before, before, limit),
        ).fetchall()
    keys = list(Evaluation.model_fields)
    return [Evaluation.model_validate(dict(zip(keys, row, strict=True))) for row in rows]


def performance(database: Database, user_id: UUID, bot_id: UUID) -> Performance:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        if bot_rows.get_bot(conn, user_id, bot_id) is None:
            raise BotNotFound()
        row = conn.execute(
            "SELECT p.quantity, p.quantity * (t.price - p.average_entry) FROM positions p"
            " LEFT JOIN market_last_trades t ON (t.exchange, t.symbol) = (p.exchange, p.symbol)"
            " WHERE p.user_id = %s AND p.bot_id = %s AND p.closed_at IS NULL",
            (user_id, bot_id),
        ).fetchone()
    stats = overall_stats(database, user_id, bot_id=bot_id, since=None).total
    quantity = Decimal(0) if row is None else row[0]
    unrealized = Decimal(0) if row is None or row[1] is None else row[1]
    return Performance(
        trades=stats.trades,
        wins=stats.wins,
        losses=stats.losses,
        win_rate=stats.win_rate,
        realized_pnl=stats.pnl,
        fees=stats.fees,
        unrealized_pnl=unrealized,
        total_pnl=stats.pnl + unrealized,
        max_drawdown=stats.max_drawdown,
        open_position_quantity=quantity,
    )


def force_exit(
    database: Database,
    settings: Settings,
    queue: OrderQueue,
    user_id: UUID,
    bot_id: UUID,
    *,
    request_id: str | None,
) -> list[Order]:
    """Close the bot's open position at market now (its resting exits are cancelled first)."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        if bot_rows.get_bot(conn, user_id, bot_id) is None:
            raise BotNotFound()
    orders = position_service.close_all(database, settings, queue, user_id, bot_id=bot_id)
    if not orders:
        raise Conflict("the bot holds no open position", field="bot_id")
    with database.connection() as conn, tenant_transaction(conn, user_id):
        record_audit(
            conn,
            user_id=user_id,
            action="bot.force_exit",
            target_type="bot",
            target_id=str(bot_id),
            detail={"orders": [str(order.id) for order in orders]},
            request_id=request_id,
        )
    return orders


def force_entry(
    database: Database,
    settings: Settings,
    queue: OrderQueue,
    user_id: UUID,
    bot_id: UUID,
    request: ForceEntry,
    *,
    request_id: str | None,
) -> ForcedEntry:
    """Buy for the bot at market now, as if its strategy had decided it; the executor applies
    the trading states and the funds check as for any bot order."""
    now = int(time.time() * 1000)
    with database.connection() as conn, tenant_transaction(conn, user_id):
        bot = bot_rows.get_bot(conn, user_id, bot_id)
        if bot is None or bot.archived_at is not None:
            raise BotNotFound()
        last = conn.execute(
            "SELECT price FROM market_last_trades WHERE exchange = %s AND symbol = %s",
            (bot.exchange, bot.symbol),
        ).fetchone()
        if last is None:
            raise ValidationFailed(
                f"no trade of {bot.symbol} is known yet; try again when it trades", field="bot_id"
            )
        account = account_rows.find_account(conn, user_id, bot.exchange, bot.mode)
        if account is None:
            account = open_account(
                conn,
                user_id,
                exchange=bot.exchange,
                mode=bot.mode,
                paper=PaperDefaults.from_settings(settings),
            )
        price = Decimal(last[0])
        quantity = (request.quote_amount / price).quantize(Decimal("1e-8"))
        if quantity <= 0:
            raise ValidationFailed("the amount buys nothing at the last price", field="quote_amount")
        protection = (
            None
            if request.stop_loss_pct is None
            else ProtectionSpec(stop=StopSpec(kind="percent", value=request.stop_loss_pct))
        )
        intent = place(
            str(bot_id),
            now,
            "force-entry",
            OrderSide.BUY,
            OrderType.MARKET,
            quantity,
            protection=protection,
            reason="force-entry by the owner",
        )
        record_audit(
            conn,
            user_id=user_id,
            action="bot.force_entry",
            target_type="bot",
            target_id=str(bot_id),
            detail={"quote_amount": str(request.quote_amount), "client_order_id": intent.client_order_id},
            request_id=request_id,
        )
    queue.send(
        [
            PlaceMessage(
                user_id=user_id,
                account_id=account.id,
                enqueued_at=now,
                bot_id=bot_id,
                exchange=bot.exchange,
                symbol=bot.symbol,
                intent=intent,
            )
        ]
    )
    return ForcedEntry(client_order_id=intent.client_order_id, quantity=quantity, price=price)

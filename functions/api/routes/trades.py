"""/v1/trades: your closed round trips and their statistics.

A trade is a position from its first entry until it was flat again; its P&L is net of every
fee. Statistics come per UTC day and overall, for you and per bot (`bot_id: null` is your
own trading): trades, wins, losses, win rate, P&L, fees, profit factor (gross profit over
gross loss; null without a loss) and max drawdown of cumulative P&L from its running peak.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from functions.api.context import Context
from functions.api.cursors import invalid_cursor
from functions.api.errors import error_responses
from functions.api.pagination import Page, PageParams, PageRequest
from functions.api.security import CurrentUser
from tekoa.domain.execution import Position
from tekoa.domain.wire import DecimalText, EpochMillisInput, to_millis
from tekoa.services import trades as service
from tekoa.services.trades import Stats

router = APIRouter(prefix="/v1/trades", tags=["trades"])

Since = Query(None, description="Only trades closed at or after this time (UTC ms).")


class TradeOut(BaseModel):
    """One closed round trip."""

    position: Position
    entry_price: DecimalText = Field(description="Average entry price.")
    exit_price: DecimalText | None = Field(description="Average exit price.")
    pnl: DecimalText = Field(description="Realised P&L net of every fee, in quote currency.")
    pnl_pct: DecimalText = Field(description="P&L over the entry cost, in percent.")
    duration_ms: int


class StatsOut(BaseModel):
    trades: int
    wins: int
    losses: int
    win_rate: DecimalText | None = Field(description="Wins over trades (0-1).")
    pnl: DecimalText
    fees: DecimalText
    gross_profit: DecimalText
    gross_loss: DecimalText
    profit_factor: DecimalText | None
    max_drawdown: DecimalText = Field(
        description="Largest fall of cumulative P&L from its peak (quote currency)."
    )

    @classmethod
    def of(cls, stats: Stats) -> StatsOut:
        return cls(
            trades=stats.trades,
            wins=stats.wins,
            losses=stats.losses,
            win_rate=stats.win_rate,
            pnl=stats.pnl,
            fees=stats.fees,
            gross_profit=stats.gross_profit,
            gross_loss=stats.gross_loss,
            profit_factor=stats.profit_factor,
            max_drawdown=stats.max_drawdown,
        )


class DayOut(BaseModel):
    day: date = Field(description="UTC day of the trades' close (YYYY-MM-DD).")
    stats: StatsOut


class BotStatsOut(BaseModel):
    bot_id: UUID | None = Field(description="Null: your own (manual) trading.")
    stats: StatsOut


class OverallOut(BaseModel):
    total: StatsOut
    by_bot: list[BotStatsOut]


def _position(trade: TradeOut) -> dict[str, Any]:
    assert trade.position.closed_at is not None
    return {"closed_at": trade.position.closed_at.isoformat(), "id": str(trade.position.id)}


def _after(page: PageRequest) -> tuple[datetime, UUID] | None:
    position = page.after("closed_at", "id")
    if position is None:
        return None
    try:
        return datetime.fromisoformat(position[0]), UUID(position[1])
    except (TypeError, ValueError) as exc:
        raise invalid_cursor() from exc


@router.get("", response_model=Page[TradeOut], responses=error_responses(401, 422))
def list_trades(
    principal: CurrentUser,
    page: PageParams,
    context: Context,
    bot_id: UUID | None = Query(None, description="Only this bot's trades."),
    account_id: UUID | None = Query(None, description="Only this account's trades."),
) -> Page[TradeOut]:
    """Your closed round trips, newest close first."""
    trades = service.list_trades(
        context.database,
        principal.user_id,
        bot_id=bot_id,
        account_id=account_id,
        after=_after(page),
        limit=page.limit + 1,
    )
    rows = [
        TradeOut(
            position=t.position,
            entry_price=t.entry_price,
            exit_price=t.exit_price,
            pnl=t.position.realized_pnl,
            pnl_pct=t.pnl_pct,
            duration_ms=to_millis(t.position.closed_at or t.position.opened_at)
            - to_millis(t.position.opened_at),
        )
        for t in trades
    ]
    return Page[TradeOut].build(rows, page, _position)


@router.get("/stats/daily", response_model=list[DayOut], responses=error_responses(401, 422))
def daily_stats(
    principal: CurrentUser,
    context: Context,
    bot_id: UUID | None = Query(None, description="Only this bot's trades."),
    since: EpochMillisInput | None = Since,
) -> list[DayOut]:
    """Statistics per UTC day, oldest first."""
    days = service.daily_stats(
        context.database,
        principal.user_id,
        bot_id=bot_id,
        since=since,
    )
    return [DayOut(day=d.day, stats=StatsOut.of(d.stats)) for d in days]


@router.get("/stats/overall", response_model=OverallOut, responses=error_responses(401, 422))
def overall_stats(
    principal: CurrentUser,
    context: Context,
    bot_id: UUID | None = Query(None, description="Only this bot's trades."),
    since: EpochMillisInput | None = Since,
) -> OverallOut:
    """Statistics over all your trades, and per bot."""
    overall = service.overall_stats(
        context.database,
        principal.user_id,
        bot_id=bot_id,
        since=since,
    )
    return OverallOut(
        total=StatsOut.of(overall.total),
        by_bot=[BotStatsOut(bot_id=bot, stats=StatsOut.of(stats)) for bot, stats in overall.by_bot.items()],
    )

"""Trades for the API: closed round trips and their statistics.

A trade is a position from its first entry until it was flat again (a position wiped by a
paper reset made no trade). Its P&L is the position's realised P&L, net of every fee. The
statistics are per UTC day and overall, for the caller and per bot:

* win rate: trades with P&L > 0 over all trades;
* profit factor: gross profit over gross loss (null with no losing trade);
* max drawdown: the largest fall of cumulative P&L from its running peak, in quote currency
  (the curve starts at 0, so a first losing trade is a drawdown).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from tekoa.db import positions as position_rows
from tekoa.db.connection import Database, tenant_transaction
from tekoa.domain.execution import Position

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip."""

    position: Position

    @property
    def entry_price(self) -> Decimal:
        return self.position.average_entry

    @property
    def exit_price(self) -> Decimal | None:
        p = self.position
        return p.exit_value / p.exit_quantity if p.exit_quantity else None

    @property
    def pnl_pct(self) -> Decimal:
        cost = self.position.entry_quantity * self.position.average_entry
        return (self.position.realized_pnl / cost * 100) if cost else ZERO


@dataclass(frozen=True, slots=True)
class Stats:
    """Results of a set of trades."""

    trades: int
    wins: int
    losses: int
    pnl: Decimal
    fees: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    max_drawdown: Decimal

    @property
    def win_rate(self) -> Decimal | None:
        return None if self.trades == 0 else Decimal(self.wins) / self.trades

    @property
    def profit_factor(self) -> Decimal | None:
        return None if self.gross_loss == 0 else self.gross_profit / self.gross_loss


@dataclass(frozen=True, slots=True)
class DailyStats:
    day: date
    stats: Stats


@dataclass(frozen=True, slots=True)
class OverallStats:
    total: Stats
    by_bot: dict[UUID | None, Stats]
    """Per bot; None is your manual trading."""


def stats_of(results: list[tuple[Decimal, Decimal]]) -> Stats:
    """Statistics of (pnl, fees) pairs in close order."""
    peak = cumulative = drawdown = ZERO
    profit = loss = fees = ZERO
    wins = losses = 0
    for pnl, fee in results:
        fees += fee
        if pnl > 0:
            wins += 1
            profit += pnl
        elif pnl < 0:
            losses += 1
            loss -= pnl
        cumulative += pnl
        peak = max(peak, cumulative)
        drawdown = max(drawdown, peak - cumulative)
    return Stats(
        trades=len(results),
        wins=wins,
        losses=losses,
        pnl=profit - loss,
        fees=fees,
        gross_profit=profit,
        gross_loss=loss,
        max_drawdown=drawdown,
    )


def list_trades(
    database: Database,
    user_id: UUID,
    *,
    bot_id: UUID | None,
    account_id: UUID | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Trade]:
    """The caller's closed round trips, newest close first."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        rows = position_rows.list_round_trips(
            conn, user_id, bot_id=bot_id, account_id=account_id, after=after, limit=limit
        )
    return [Trade(position) for position in rows]


def daily_stats(
    database: Database, user_id: UUID, *, bot_id: UUID | None, since: datetime | None
) -> list[DailyStats]:
    """Statistics per UTC day of close, oldest first."""
    days: dict[date, list[tuple[Decimal, Decimal]]] = defaultdict(list)
    for _, closed_at, pnl, fees in _results(database, user_id, bot_id=bot_id, since=since):
        days[closed_at.astimezone(UTC).date()].append((pnl, fees))
    return [DailyStats(day, stats_of(results)) for day, results in sorted(days.items())]


def overall_stats(
    database: Database, user_id: UUID, *, bot_id: UUID | None, since: datetime | None
) -> OverallStats:
    """Statistics over all the caller's trades (or one bot's), and per bot."""
    results = _results(database, user_id, bot_id=bot_id, since=since)
    per_bot: dict[UUID | None, list[tuple[Decimal, Decimal]]] = defaultdict(list)
    for bot, _, pnl, fees in results:
        per_bot[bot].append((pnl, fees))
    return OverallStats(
        total=stats_of([(pnl, fees) for _, _, pnl, fees in results]),
        by_bot={bot: stats_of(trades) for bot, trades in per_bot.items()},
    )


def _results(
    database: Database, user_id: UUID, *, bot_id: UUID | None, since: datetime | None
) -> list[tuple[UUID | None, datetime, Decimal, Decimal]]:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return position_rows.round_trip_results(conn, user_id, bot_id=bot_id, since=since)

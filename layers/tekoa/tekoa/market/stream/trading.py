"""What the market stream does for trading: market rules, each market's last trade, and
paper matching (`StreamTrading` bundles them for the service).

* Each followed market's rules (steps and limits, from the source) are stored when the
  stream starts following it; the executor and the API check every order with them.
* `LastTrades` remembers each market's newest trade from its batches; the clock tick writes the
  changed ones in one statement, so a market costs at most one write per tick (a second).
  Paper market orders fill at this price; the executor refuses it once it is stale.
* `PaperMatcher` keeps the resting paper limit and stop orders of the stream's markets in
  memory, refreshed from the database every `refresh_s`. Every trade batch is checked against
  them: the batch's lowest and highest prices (after each order was placed) decide which
  orders it reaches, and only for those is the first reaching trade looked for. A reached
  order gets a `trigger` message on the order queue with that trade's price and time; the
  executor fills it with the fill model in one transaction. A trigger is sent once per order,
  and again only if a refresh still finds the order resting `resend_after_s` later (the
  message was lost). Reconciliation's candle sweep covers whatever the stream missed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

import numpy as np
import numpy.typing as npt

from tekoa.aws.queues import OrderQueue
from tekoa.db import markets as market_rows
from tekoa.db import orders as order_rows
from tekoa.db.connection import Database, service_transaction
from tekoa.domain.candles import decimal_from_float
from tekoa.domain.execution import OrderStatus
from tekoa.domain.orders import OrderSide, OrderType
from tekoa.exchanges.rules import MarketRules
from tekoa.execution.messages import OrderMessage, TriggerMessage
from tekoa.market.sources import MarketSource, TradeBatch
from tekoa.observability import logger


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class LastTrades:
    """Each market's newest trade, written at most once per flush."""

    def __init__(self, exchange: str, database: Database) -> None:
        self.exchange = exchange
        self.database = database
        self._latest: dict[str, tuple[float, int]] = {}

    def observe(self, batch: TradeBatch) -> None:
        if len(batch):
            self._latest[batch.symbol] = (float(batch.prices[-1]), int(batch.timestamps_ms[-1]))

    async def flush(self) -> None:
        if not self._latest:
            return
        latest, self._latest = self._latest, {}
        trades = [
            market_rows.LastTrade(self.exchange, symbol, decimal_from_float(price), time_ms)
            for symbol, (price, time_ms) in latest.items()
        ]
        try:
            await asyncio.to_thread(self._write, trades)
        except Exception:
            for trade in trades:  # keep what is newer for the next flush
                self._latest.setdefault(trade.symbol, (float(trade.price), trade.trade_time))
            logger.exception("writing last trades failed; retrying on the next tick")

    def _write(self, trades: list[market_rows.LastTrade]) -> None:
        with self.database.connection() as conn, service_transaction(conn):
            market_rows.record_last_trades(conn, trades)


@dataclass(frozen=True, slots=True)
class RestingOrder:
    order_id: UUID
    user_id: UUID
    account_id: UUID
    client_order_id: str
    symbol: str
    side: OrderSide
    type: OrderType
    level: float
    placed_ms: int

    @property
    def rising(self) -> bool:
        """Reached by a price at or above its level (a sell limit, a buy stop)."""
        return (self.side is OrderSide.SELL) == (self.type is OrderType.LIMIT)


class PaperMatcher:
    """See the module docstring."""

    def __init__(
        self,
        exchange: str,
        database: Database,
        queue: OrderQueue,
        *,
        refresh_s: float = 2.0,
        resend_after_s: float = 30.0,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.exchange = exchange
        self.database = database
        self.queue = queue
        self.refresh_s = refresh_s
        self.resend_after_s = resend_after_s
        self.clock_ms = clock_ms
        self.resting: dict[str, list[RestingOrder]] = {}
        self._sent: dict[UUID, float] = {}
        self._pending: list[OrderMessage] = []
        self._refreshed = 0.0
        self.triggers_sent = 0

    async def refresh(self, symbols: Sequence[str], *, force: bool = False) -> None:
        """Reload the resting paper orders of `symbols` (at most every `refresh_s`)."""
        if not force and time.monotonic() - self._refreshed < self.refresh_s:
            return
        self._refreshed = time.monotonic()
        try:
            orders = await asyncio.to_thread(self._load, set(symbols))
        except Exception:
            logger.exception("reading resting paper orders failed; keeping the last set")
            return
        resting: dict[str, list[RestingOrder]] = {}
        for order in orders:
            resting.setdefault(order.symbol, []).append(order)
        now = time.monotonic()
        live = {o.order_id for o in orders}
        # Forget triggers of orders that are gone; resend those still resting long after.
        self._sent = {k: t for k, t in self._sent.items() if k in live and now - t < self.resend_after_s}
        self.resting = resting

    def _load(self, symbols: set[str]) -> list[RestingOrder]:
        with self.database.connection() as conn, service_transaction(conn):
            refs = order_rows.find_working(
                conn,
                statuses=[OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED],
                mode="paper",
                exchange=self.exchange,
                limit=100_000,
            )
        return [
            RestingOrder(
                order_id=ref.order_id,
                user_id=ref.user_id,
                account_id=ref.account_id,
                client_order_id=ref.client_order_id,
                symbol=ref.symbol,
                side=ref.side,
                type=ref.type,
                level=float((ref.limit_price if ref.type is OrderType.LIMIT else ref.stop_price) or 0),
                placed_ms=int(ref.created_at.timestamp() * 1000),
            )
            for ref in refs
            if ref.symbol in symbols and ref.type in (OrderType.LIMIT, OrderType.STOP)
        ]

    def observe(self, batch: TradeBatch) -> None:
        """Check a trade batch against the market's resting orders; queue triggers."""
        orders = self.resting.get(batch.symbol)
        if not orders or len(batch) == 0:
            return
        prices, times = batch.prices, batch.timestamps_ms
        low, high = float(prices.min()), float(prices.max())
        for order in orders:
            if order.order_id in self._sent:
                continue
            if (high < order.level) if order.rising else (low > order.level):
                continue
            index = _first_reaching(order, prices, times)
            if index is None:
                continue
            self._sent[order.order_id] = time.monotonic()
            self._pending.append(
                TriggerMessage(
                    user_id=order.user_id,
                    account_id=order.account_id,
                    order_id=order.order_id,
                    client_order_id=order.client_order_id,
                    trade_id=str(int(batch.trade_ids[index])),
                    trade_time=int(times[index]),
                    price=decimal_from_float(float(prices[index])),
                    enqueued_at=self.clock_ms(),
                )
            )

    async def send(self) -> None:
        """Put the queued triggers on the order queue (kept for the next tick on failure)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        try:
            await asyncio.to_thread(self.queue.send, pending)
        except Exception:
            self._pending = pending + self._pending
            logger.exception("sending paper triggers failed; retrying on the next tick")
            return
        self.triggers_sent += len(pending)


def _first_reaching(
    order: RestingOrder, prices: npt.NDArray[np.float64], times: npt.NDArray[np.int64]
) -> int | None:
    """The first trade after the order was placed whose price reaches its level."""
    after = times > order.placed_ms
    reached = prices >= order.level if order.rising else prices <= order.level
    hits = np.flatnonzero(after & reached)
    return int(hits[0]) if hits.size else None


class StreamTrading:
    """The market stream's part in trading; `queue` None: no paper matching (prices only)."""

    def __init__(self, exchange: str, database: Database, queue: OrderQueue | None) -> None:
        self.database = database
        self.last_trades = LastTrades(exchange, database)
        self.matcher = PaperMatcher(exchange, database, queue) if queue is not None else None
        self._ruled: set[str] = set()

    async def follow(self, source: MarketSource, symbols: Sequence[str]) -> None:
        """Store the rules of the followed markets this process has not stored yet; after a
        failure (the venue unreachable) the next call tries again."""
        missing = [symbol for symbol in symbols if symbol not in self._ruled]
        if not missing:
            return
        try:
            rules = await source.market_rules(missing)
            await asyncio.to_thread(self._store_rules, rules)
        except Exception:
            logger.exception(
                "storing market rules failed; retrying at the next poll", extra={"symbols": missing}
            )
            return
        self._ruled.update(missing)

    def _store_rules(self, rules: Sequence[MarketRules]) -> None:
        with self.database.connection() as conn, service_transaction(conn):
            market_rows.upsert_rules(conn, rules)

    def observe(self, batch: TradeBatch) -> None:
        """A trade batch arrived (on the loop: no I/O)."""
        self.last_trades.observe(batch)
        if self.matcher is not None:
            self.matcher.observe(batch)

    async def tick(self, symbols: Sequence[str]) -> None:
        """The clock tick: write last trades, refresh the resting orders, send triggers."""
        await self.last_trades.flush()
        if self.matcher is not None:
            await self.matcher.refresh(symbols)
            await self.matcher.send()

    @property
    def triggers_sent(self) -> int:
        return self.matcher.triggers_sent if self.matcher is not None else 0

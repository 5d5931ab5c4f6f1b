"""The position manager: protective exits (stop loss, take-profit ladder with partial exits,
breakeven after the first target, trailing stop) checked on every trade of the stream.

The stream keeps the protection of every open bot position on its markets in memory as rows of
one float matrix per market (`tekoa.engine.protection` vectors), reloaded from the database
every `refresh_s`. Each trade batch runs through every row in one compiled call
(`protection.on_trades`); an exit becomes a reduce-only market sell on the order queue whose
client order id is derived from (bot, position, exit leg), so a repeat — after a refresh, a
restart, or the evaluator's candle-close fallback — names the same order and the executor
places it once. The moved protection (targets hit, the trailing anchor, a stop lifted to
breakeven) is written back to the position, so a reload continues where the stream was.

Native stops: a live account on an exchange whose capability table says `native_stop_orders`
keeps its stop on the exchange instead. On each reload the guard compares the stop each such
position wants (`native_stop_intent`: its level and quantity are in the client order id) with the
native stops working in the database, and queues a place for a missing one and a cancel for one
no position wants any more (moved, resized, or its position closed). While a position's stop
works on the exchange, trades never fire its stop leg here (until then, or after a rejection,
the stop is emulated); targets and trailing still run, and a moved stop is replaced on the next
reload. The executor lifts a native stop before another exit sells the same position.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
from psycopg.rows import dict_row

from tekoa.aws.queues import OrderQueue
from tekoa.db.connection import Database, service_transaction
from tekoa.domain.bots import TradingMode
from tekoa.domain.candles import decimal_from_float
from tekoa.domain.execution import WORKING_STATUSES, OrderStatus
from tekoa.domain.orders import NATIVE_STOP_LEG, OrderIntent, OrderSide, OrderType, place
from tekoa.domain.trading import PositionSide, ProtectionState
from tekoa.engine import protection as pr
from tekoa.exchanges.capabilities import capabilities
from tekoa.execution.messages import CancelMessage, OrderMessage, PlaceMessage
from tekoa.market.sources import TradeBatch
from tekoa.observability import logger

_MINUTE = 60_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Guarded:
    """One open bot position whose protection the stream watches."""

    position_id: UUID
    user_id: UUID
    account_id: UUID
    bot_id: UUID
    exchange: str
    symbol: str
    quantity: Decimal
    entry_quantity: Decimal
    opened_ms: int
    native: bool = False
    """Its stop rests on the exchange (a working native stop order): trades do not fire it."""


def natively_stopped(exchange: str, mode: str) -> bool:
    """Whether a position's stop rests on the exchange: live accounts where the table says so."""
    return mode == TradingMode.LIVE.value and capabilities(exchange).native_stop_orders


def native_stop_intent(guarded: Guarded, stop: Decimal) -> OrderIntent:
    """The native stop a position wants; its id changes when its level or quantity does, so a
    moved stop is a new order and the same one is placed at most once."""
    version = hashlib.sha256(f"{stop:f}|{guarded.quantity:f}".encode()).hexdigest()[:8]
    return place(
        str(guarded.bot_id),
        guarded.opened_ms // _MINUTE * _MINUTE,
        f"{NATIVE_STOP_LEG}{guarded.position_id.hex[:12]}-{version}",
        OrderSide.SELL,
        OrderType.STOP,
        guarded.quantity,
        price=stop,
        reduce_only=True,
        reason=f"native stop at {stop}",
    )


def exit_intent(guarded: Guarded, leg: str, fraction: float, reference: float) -> OrderIntent:
    """The exit a trigger asks for; its id depends only on the bot, the position and the leg."""
    quantity = (
        guarded.quantity
        if leg == "stop"
        else min(guarded.quantity, guarded.entry_quantity * Decimal(repr(fraction)))
    )
    return place(
        str(guarded.bot_id),
        guarded.opened_ms // _MINUTE * _MINUTE,
        f"{leg}-{guarded.position_id.hex[:12]}",
        OrderSide.SELL,
        OrderType.MARKET,
        quantity,
        reduce_only=True,
        reason=f"{leg} reached at {decimal_from_float(reference)}",
    )


@dataclass
class _Market:
    rows: list[Guarded] = field(default_factory=list)
    states: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty((0, pr.SIZE)))


class PositionGuard:
    """See the module docstring."""

    def __init__(
        self,
        exchange: str,
        database: Database,
        queue: OrderQueue,
        *,
        refresh_s: float = 2.0,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.exchange = exchange
        self.database = database
        self.queue = queue
        self.refresh_s = refresh_s
        self.clock_ms = clock_ms
        self.markets: dict[str, _Market] = {}
        self._pending: list[OrderMessage] = []
        self._moved: dict[UUID, ProtectionState] = {}
        self._refreshed = 0.0
        self.exits_sent = 0

    async def refresh(self, symbols: Sequence[str], *, force: bool = False) -> None:
        """Reload the open positions' protection (at most every `refresh_s`), after writing
        back what moved since the last write."""
        if not force and time.monotonic() - self._refreshed < self.refresh_s:
            return
        self._refreshed = time.monotonic()
        try:
            await asyncio.to_thread(self._write_moved)
            self.markets = await asyncio.to_thread(self._load, set(symbols))
        except Exception:
            logger.exception("reading open positions failed; keeping the last set")

    def _load(self, symbols: set[str]) -> dict[str, _Market]:
        with (
            self.database.connection() as conn,
            service_transaction(conn),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            cur.execute(
                "SELECT p.id, p.user_id, p.account_id, p.bot_id, p.symbol, p.quantity, p.entry_quantity,"
                " a.mode, p.protection::text AS protection,"
                " (extract(epoch FROM p.opened_at) * 1000)::bigint AS opened_ms"
                " FROM positions p JOIN accounts a ON a.id = p.account_id"
                " WHERE p.exchange = %s AND p.symbol = ANY(%s) AND p.closed_at IS NULL"
                " AND p.bot_id IS NOT NULL AND p.protection IS NOT NULL AND p.quantity > 0",
                (self.exchange, sorted(symbols)),
            )
            found = cur.fetchall()
            markets: dict[str, _Market] = {}
            capable: set[UUID] = set()
            for row in found:
                state = ProtectionState.model_validate_json(row["protection"])
                market = markets.setdefault(row["symbol"], _Market())
                market.rows.append(
                    Guarded(
                        position_id=row["id"],
                        user_id=row["user_id"],
                        account_id=row["account_id"],
                        bot_id=row["bot_id"],
                        exchange=self.exchange,
                        symbol=row["symbol"],
                        quantity=row["quantity"],
                        entry_quantity=row["entry_quantity"],
                        opened_ms=row["opened_ms"],
                    )
                )
                market.states = np.vstack([market.states, pr.from_state(state, PositionSide.LONG)])
                if natively_stopped(self.exchange, row["mode"]):
                    capable.add(row["id"])
            if capabilities(self.exchange).native_stop_orders:
                self._reconcile_native_stops(cur, markets, capable, sorted(symbols))
        return markets

    def _reconcile_native_stops(
        self, cur: Any, markets: dict[str, _Market], capable: set[UUID], symbols: list[str]
    ) -> None:
        """Queue a place for each native stop a position wants and the database does not hold,
        and a cancel for each working one no position wants (see the module docstring). A
        position counts as natively protected (its stop leg is not emulated) only while the stop
        it wants is working: until then, and after a rejection, the stream emulates it."""
        wanted: dict[str, tuple[Guarded, OrderIntent]] = {}
        for market in markets.values():
            for guarded, vector in zip(market.rows, market.states, strict=True):
                level = pr.stop_level(vector)
                if guarded.position_id in capable and math.isfinite(level):
                    intent = native_stop_intent(guarded, decimal_from_float(level))
                    wanted[intent.client_order_id] = (guarded, intent)
        cur.execute(
            "SELECT user_id, account_id, client_order_id, status FROM orders"
            " WHERE exchange = %s AND symbol = ANY(%s)"
            " AND (client_order_id = ANY(%s) OR (intent->>'leg' LIKE %s AND status = ANY(%s)))",
            (
                self.exchange,
                symbols,
                list(wanted),
                NATIVE_STOP_LEG + "%",
                sorted(s.value for s in WORKING_STATUSES),
            ),
        )
        known = {row["client_order_id"]: row for row in cur.fetchall()}
        now = self.clock_ms()
        working = {cid for cid, row in known.items() if OrderStatus(row["status"]) in WORKING_STATUSES}
        for client_order_id in sorted(working - wanted.keys()):
            row = known[client_order_id]
            self._pending.append(
                CancelMessage(
                    user_id=row["user_id"],
                    account_id=row["account_id"],
                    enqueued_at=now,
                    target_client_order_id=client_order_id,
                    reason="the native stop moved or its position closed",
                )
            )
        resting = {guarded.position_id for cid, (guarded, _) in wanted.items() if cid in working}
        for market in markets.values():
            market.rows = [
                dataclasses.replace(g, native=True) if g.position_id in resting else g for g in market.rows
            ]
        for client_order_id, (guarded, intent) in wanted.items():
            if client_order_id not in known:
                self._pending.append(
                    PlaceMessage(
                        user_id=guarded.user_id,
                        account_id=guarded.account_id,
                        enqueued_at=now,
                        bot_id=guarded.bot_id,
                        exchange=guarded.exchange,
                        symbol=guarded.symbol,
                        intent=intent,
                    )
                )

    def observe(self, batch: TradeBatch) -> None:
        """Run a trade batch through the market's protections; queue the exits (no I/O)."""
        market = self.markets.get(batch.symbol)
        if market is None or not market.rows or len(batch) == 0:
            return
        states = market.states
        before = states.copy()
        size = states.shape[0] * (pr.MAX_TARGETS + 1)
        rows = np.zeros(size, dtype=np.int64)
        kinds = np.zeros(size, dtype=np.int64)
        refs = np.zeros(size, dtype=np.float64)
        fractions = np.zeros(size, dtype=np.float64)
        trades = np.zeros(size, dtype=np.int64)
        written = pr.on_trades(states, batch.prices.astype(np.float64), rows, kinds, refs, fractions, trades)
        now = self.clock_ms()
        for k in range(written):
            guarded = market.rows[int(rows[k])]
            leg = pr.exit_leg(int(kinds[k]))
            if guarded.native and leg == "stop":
                continue  # it rests on the exchange; its fill is booked from there
            intent = exit_intent(guarded, leg, float(fractions[k]), float(refs[k]))
            self._pending.append(
                PlaceMessage(
                    user_id=guarded.user_id,
                    account_id=guarded.account_id,
                    enqueued_at=now,
                    bot_id=guarded.bot_id,
                    exchange=guarded.exchange,
                    symbol=guarded.symbol,
                    intent=intent,
                )
            )
        changed = np.flatnonzero(~np.all((states == before) | (np.isnan(states) & np.isnan(before)), axis=1))
        for row in changed:
            vector = states[int(row)]
            self._moved[market.rows[int(row)].position_id] = pr.to_state(vector)

    async def send(self) -> None:
        """Put the queued exits on the order queue (kept for the next tick on failure)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        try:
            await asyncio.to_thread(self.queue.send, pending)
        except Exception:
            self._pending = pending + self._pending
            logger.exception("sending protective exits failed; retrying on the next tick")
            return
        self.exits_sent += len(pending)

    def _write_moved(self) -> None:
        """Store the protection that trades moved. (A stop that fired reloads armed until its exit
        closes the position; firing again names the same order, which the executor ignores.)"""
        if not self._moved:
            return
        moved, self._moved = self._moved, {}
        ids: list[Any] = list(moved)
        texts = [state.model_dump_json() for state in moved.values()]
        with self.database.connection() as conn, service_transaction(conn):
            conn.execute(
                "UPDATE positions p SET protection = m.protection, updated_at = now()"
                " FROM unnest(%s::uuid[], %s::jsonb[]) AS m(id, protection)"
                " WHERE p.id = m.id AND p.closed_at IS NULL",
                (ids, texts),
            )

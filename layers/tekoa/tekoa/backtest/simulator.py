"""The exchange and the position manager of a backtest: resting orders, the fill model along
each candle's path, the protective exits of the open position, and the account.

A decision on bar t sends its intents here; they arrive at bar t+1's open and never see a
price of bar t or before. On each bar the simulator walks the candle path of
`tekoa.execution.fills.candle_path`:

1. market orders fill at the open, in the order they were decided;
2. the open is a jump from the previous close: protective exits, then resting and newly
   arrived limit and stop orders, execute there if it reaches them;
3. each straight leg of the path (open -> nearer extreme -> farther extreme -> close) is walked
   from order level to order level: protective exits the price passes on the way fire first
   (`tekoa.engine.protection.on_price`), then the order at the level, and so on to the leg's end.

An entry carrying a `ProtectionSpec` arms it at its fill price when it opens the position;
fills that add to a position keep the position's protection. Opening fills are clamped to
what the account can pay (`affordable_quantity`); reduce-only fills to the open position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from tekoa.backtest import book as bk
from tekoa.backtest.trades import Trade
from tekoa.domain.orders import (
    CancelIntent,
    Intent,
    OrderIntent,
    OrderSide,
    OrderType,
    place,
)
from tekoa.domain.trading import BotMemory, BotState, Fill, Position, PositionSide, RestingOrder
from tekoa.engine import protection as pr
from tekoa.engine.decision import to_decimal
from tekoa.execution.fills import (
    LIMIT,
    MARKET,
    Costs,
    affordable_quantity,
    candle_path,
    execution,
    market_price,
    reaches,
    type_code,
)
from tekoa.market.frame import CandleFrame


@dataclass(slots=True)
class _Order:
    intent: OrderIntent
    side: int
    code: int
    level: float
    arriving: bool = True


class Simulator:
    """One bot's orders, position and cash over one primary frame (see the module doc)."""

    def __init__(self, frame: CandleFrame, costs: Costs, cash: float, bot_id: str) -> None:
        self.frame = frame
        self.costs = costs
        self.bot_id = bot_id
        self.book = bk.new_book(cash)
        self.protection: pr.F64 | None = None
        self.orders: dict[str, _Order] = {}
        self.fills: list[Fill] = []
        self.trades: list[Trade] = []
        self.protective_exits: list[tuple[int, OrderIntent]] = []
        self._closed = np.zeros(bk.CLOSED_SIZE, dtype=np.float64)
        self._kinds = np.zeros(pr.MAX_TARGETS + 1, dtype=np.int64)
        self._refs = np.zeros(pr.MAX_TARGETS + 1, dtype=np.float64)
        self._fractions = np.zeros(pr.MAX_TARGETS + 1, dtype=np.float64)

    # ---------------------------------------------------------------- decisions in, state out

    def submit(self, intents: tuple[Intent, ...] | list[Intent]) -> None:
        """Take a decision's intents: cancels now, orders from the next bar's open on."""
        for intent in intents:
            if isinstance(intent, CancelIntent):
                self.orders.pop(intent.target_client_order_id, None)
                continue
            level = math.nan if intent.price is None else float(intent.price)
            self.orders[intent.client_order_id] = _Order(
                intent, intent.side.sign, type_code(intent.type), level
            )

    @property
    def position_quantity(self) -> float:
        """Signed open quantity."""
        return float(self.book[bk.QUANTITY])

    @property
    def cash(self) -> float:
        return float(self.book[bk.CASH])

    def equity_at(self, bar: int) -> float:
        """Equity marked at the bar's close."""
        return float(bk.equity(self.book, float(self.frame.close[bar])))

    def in_market(self) -> bool:
        """A position or resting orders exist."""
        return self.position_quantity != 0.0 or bool(self.orders)

    def state(self, bar: int, memory: BotMemory) -> BotState:
        """The bot's state at bar `bar`'s close, as `decide` sees it; consumes the fills."""
        close = float(self.frame.close[bar])
        equity = bk.equity(self.book, close)
        holds = sum(
            (
                o.intent.quantity * o.intent.price
                for o in self.orders.values()
                if o.side > 0 and o.intent.price is not None and not o.intent.reduce_only
            ),
            Decimal(0),
        )
        available = min(self.cash, equity) - float(holds)
        state = BotState(
            bot_id=self.bot_id,
            cash=to_decimal(available),
            equity=to_decimal(equity),
            position=self._position(),
            orders=tuple(self._resting(o) for o in self.orders.values()),
            fills=tuple(self.fills),
            memory=memory,
        )
        self.fills = []
        return state

    def _position(self) -> Position | None:
        held = self.position_quantity
        if held == 0.0:
            return None
        side = PositionSide.LONG if held > 0 else PositionSide.SHORT
        opened = int(self.book[bk.OPENED_BAR])
        return Position(
            side=side,
            quantity=to_decimal(abs(held)),
            average_entry=to_decimal(float(self.book[bk.AVERAGE])),
            entry_quantity=to_decimal(float(self.book[bk.ENTRY_QUANTITY])),
            opened_at=int(self.frame.open_time[opened]),
            protection=None if self.protection is None else pr.to_state(self.protection),
        )

    @staticmethod
    def _resting(order: _Order) -> RestingOrder:
        intent = order.intent
        return RestingOrder(
            client_order_id=intent.client_order_id,
            leg=intent.leg,
            side=intent.side,
            type=intent.type,
            price=intent.price,
            quantity=intent.quantity,
            reduce_only=intent.reduce_only,
            placed_at=intent.candle_open_time,
        )

    # ---------------------------------------------------------------- skipping quiet bars

    def has_arriving(self) -> bool:
        """Orders that have not seen a price yet (they arrive at the next open)."""
        return any(o.arriving for o in self.orders.values())

    def next_event_bar(self, start: int, end: int) -> int:
        """The first bar in [start, end) on which an order could execute or a protective exit
        fire; `end` if none. The protection's anchor is advanced over the bars skipped."""
        if self.has_arriving():
            return start
        low_reaches, high_reaches = -math.inf, math.inf
        for order in self.orders.values():
            if (order.code == LIMIT) == (order.side > 0):  # buy limit, sell stop: from above
                low_reaches = max(low_reaches, order.level)
            else:
                high_reaches = min(high_reaches, order.level)
        frame = self.frame
        end = bk.next_touch_bar(frame.high, frame.low, start, end, low_reaches, high_reaches)
        if self.protection is not None:
            end = pr.next_trigger_bar(self.protection, frame.high, frame.low, start, end)
        return end

    # ---------------------------------------------------------------- one bar

    def process_bar(self, bar: int) -> None:
        """Run bar `bar`'s path through the orders and the protection."""
        frame = self.frame
        open_ = float(frame.open[bar])
        for key, order in list(self.orders.items()):
            if order.code == MARKET:
                del self.orders[key]
                self._execute(order, open_, False, bar)
        self._protect(open_, False, bar)
        for key, order in list(self.orders.items()):
            if key in self.orders and reaches(order.side, order.code, order.level, open_):
                del self.orders[key]
                self._execute(order, open_, False, bar)
        for order in self.orders.values():
            order.arriving = False
        points = candle_path(open_, float(frame.high[bar]), float(frame.low[bar]), float(frame.close[bar]))
        for leg in range(1, 4):
            self._walk(points[leg - 1], points[leg], bar)

    def _walk(self, start: float, end: float, bar: int) -> None:
        falling = end < start
        while True:
            chosen: str | None = None
            level = end
            for key, order in self.orders.items():
                if not reaches(order.side, order.code, order.level, end):
                    continue
                if chosen is None or (order.level > level if falling else order.level < level):
                    chosen, level = key, order.level
            self._protect(level, True, bar)
            if chosen is None:
                return
            order = self.orders.pop(chosen)
            self._execute(order, level, True, bar)

    def _protect(self, price: float, continuous: bool, bar: int) -> None:
        state = self.protection
        if state is None:
            return
        count = pr.on_price(state, price, continuous, self._kinds, self._refs, self._fractions)
        for k in range(count):
            held = abs(self.position_quantity)
            if held == 0.0:
                break
            kind = int(self._kinds[k])
            quantity = (
                held
                if kind == pr.EXIT_STOP
                else bk.target_quantity(float(self._fractions[k]), float(self.book[bk.ENTRY_QUANTITY]), held)
            )
            side = -1 if self.position_quantity > 0 else 1
            fill_price = market_price(side, float(self._refs[k]), self.costs.slippage)
            leg = pr.exit_leg(kind)
            opened_at = int(self.frame.open_time[int(self.book[bk.OPENED_BAR])])
            intent = place(
                self.bot_id,
                opened_at,
                leg,
                OrderSide.BUY if side > 0 else OrderSide.SELL,
                OrderType.MARKET,
                to_decimal(quantity),
                reduce_only=True,
                reason="stop loss" if kind == pr.EXIT_STOP else f"take-profit target {kind}",
            )
            self.protective_exits.append((bar, intent))
            self._book(intent, side, quantity, fill_price, self.costs.taker_fee, bar)
        if self.position_quantity == 0.0:
            self.protection = None

    def _execute(self, order: _Order, price: float, continuous: bool, bar: int) -> None:
        fill_price, maker = execution(
            order.side, order.code, order.level, price, continuous, order.arriving, self.costs.slippage
        )
        intent = order.intent
        quantity = float(intent.quantity)
        held = self.position_quantity
        opposite = held != 0.0 and (held > 0) != (order.side > 0)
        rate = self.costs.fee_rate(maker)
        if intent.reduce_only:
            quantity = min(quantity, abs(held)) if opposite else 0.0
        elif not opposite:
            capacity = bk.opening_capacity(self.book, fill_price)
            quantity = min(quantity, affordable_quantity(capacity, fill_price, rate))
        if quantity <= 0.0:
            return
        was_flat = held == 0.0
        self._book(intent, order.side, quantity, fill_price, rate, bar)
        if was_flat and self.position_quantity != 0.0 and intent.protection is not None:
            side = PositionSide.LONG if order.side > 0 else PositionSide.SHORT
            self.protection = pr.arm(intent.protection, side, fill_price)
        if self.position_quantity == 0.0:
            self.protection = None

    def _book(
        self, intent: OrderIntent, side: int, quantity: float, price: float, rate: float, bar: int
    ) -> None:
        fee = price * quantity * rate
        closed = bk.book_fill(self.book, side, quantity, price, fee, bar, self._closed)
        time = int(self.frame.open_time[bar])
        self.fills.append(
            Fill(
                client_order_id=intent.client_order_id,
                leg=intent.leg,
                side=intent.side,
                quantity=to_decimal(quantity),
                price=to_decimal(price),
                fee=to_decimal(fee),
                time=time,
            )
        )
        if closed:
            c = self._closed
            opened = int(c[bk.CLOSED_OPENED_BAR])
            self.trades.append(
                Trade(
                    side=PositionSide.LONG if side < 0 else PositionSide.SHORT,
                    entry_bar=opened,
                    exit_bar=bar,
                    entry_time=int(self.frame.open_time[opened]),
                    exit_time=time,
                    quantity=float(c[bk.CLOSED_QUANTITY]),
                    entry_price=float(c[bk.CLOSED_ENTRY]),
                    exit_price=price,
                    pnl=float(c[bk.CLOSED_PNL]),
                    fees=float(c[bk.CLOSED_FEES]),
                    reason=intent.leg,
                )
            )

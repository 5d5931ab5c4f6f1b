"""The fill model: how market, limit and stop orders execute against a candle or a trade price.

One model for the backtester (now) and the paper broker (next): both call these functions, so
a paper account and a backtest over the same prices fill the same orders at the same prices.
Everything here is float64 and compiled (numba) so the backtester's loops can call it; the
paper broker books the result as Decimal at the edge (`booked_price`, `booked_quantity`,
`booked_fee`; see docs/DECISIONS.md).

**The market's path.** A trade price is a point: the market jumps there. A candle is the path
open -> nearer extreme -> farther extreme -> close, straight lines between the points, the
open itself a jump from wherever the market was. "Nearer" is measured from the open; on a tie
(open equally far from high and low) a candle that closes at or above its open visits the low
first (it dipped, then rallied) and one that closes below visits the high first.

**Executions.** Prices only ever move against the trader through slippage:

* market: at the first price it sees (the next open in a backtest, the next trade live),
  moved by `slippage` against the trader; taker.
* stop (buy stops above the market, sell stops below): once the market reaches the trigger, a
  market order at the trigger (or at the price the market jumped to, if it jumped through it),
  plus slippage; taker.
* limit: a limit that is marketable when it arrives executes at once as a taker, at the
  arrival price plus slippage but never worse than its limit. A resting limit executes when
  the market reaches it, at exactly its limit price, as a maker (a market that jumps through
  it fills it at the limit, not at the better price: the conservative choice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from numba import njit

from tekoa.domain.candles import decimal_from_float
from tekoa.domain.orders import OrderSide, OrderType

BUY = 1
SELL = -1
MARKET = 0
LIMIT = 1
STOP = 2

_TYPE_CODES = {OrderType.MARKET: MARKET, OrderType.LIMIT: LIMIT, OrderType.STOP: STOP}


def type_code(order_type: OrderType) -> int:
    """The integer the kernels use for an order type."""
    return _TYPE_CODES[order_type]


@dataclass(frozen=True, slots=True)
class Costs:
    """Fees and slippage as fractions (0.001 = 0.1 %) of the traded notional / price."""

    maker_fee: float = 0.0
    taker_fee: float = 0.0
    slippage: float = 0.0

    def __post_init__(self) -> None:
        for name in ("maker_fee", "taker_fee", "slippage"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 1):
                raise ValueError(f"{name} must be a fraction in [0, 1), got {value}")

    @classmethod
    def from_pct(cls, fee_pct: float, *, maker_pct: float | None = None, slippage_pct: float = 0.0) -> Costs:
        """From percentages; the maker fee defaults to the taker fee."""
        maker = fee_pct if maker_pct is None else maker_pct
        return cls(maker_fee=maker / 100, taker_fee=fee_pct / 100, slippage=slippage_pct / 100)

    def fee_rate(self, maker: bool) -> float:
        """The fee fraction of a maker or taker execution."""
        return self.maker_fee if maker else self.taker_fee


@njit(cache=True)
def candle_path(open_: float, high: float, low: float, close: float) -> tuple[float, float, float, float]:
    """The four points of a candle's assumed path: open, nearer extreme, farther extreme, close."""
    to_low = open_ - low
    to_high = high - open_
    if to_low < to_high or (to_low == to_high and close >= open_):
        return open_, low, high, close
    return open_, high, low, close


@njit(cache=True)
def reaches(side: int, order_type: int, level: float, price: float) -> bool:
    """Whether the market at `price` executes an order of `side` and `order_type` at `level`.

    A market order always executes; a buy limit at or below its level, a sell limit at or
    above; a buy stop at or above its trigger, a sell stop at or below.
    """
    if order_type == MARKET:
        return True
    if order_type == LIMIT:
        return side * (price - level) <= 0.0
    return side * (price - level) >= 0.0


@njit(cache=True)
def execution(
    side: int, order_type: int, level: float, price: float, continuous: bool, arriving: bool, slippage: float
) -> tuple[float, bool]:
    """(fill price, maker) of an order the market at `price` executes (see `reaches`).

    `continuous`: the market moved here in a straight line from the order's other side, so a
    stop triggers exactly at its level; otherwise it jumped here (a trade, an open) and a stop
    fills at `price`. `arriving`: this is the first price the order sees (it was just placed),
    so a marketable limit is a taker at `price`; a resting limit fills at its level as a maker.
    """
    if order_type == MARKET:
        return price * (1.0 + side * slippage), False
    if order_type == STOP:
        reference = level if continuous else price
        return reference * (1.0 + side * slippage), False
    if arriving:
        slipped = price * (1.0 + side * slippage)
        if side * (slipped - level) > 0.0:
            slipped = level
        return slipped, False
    return level, True


@njit(cache=True)
def market_price(side: int, reference: float, slippage: float) -> float:
    """Fill price of a market order at `reference` (a protective exit's trigger, an open)."""
    return reference * (1.0 + side * slippage)


@njit(cache=True)
def affordable_quantity(cash: float, price: float, fee_rate: float) -> float:
    """The most a buy at `price` can take when it must pay its fee from `cash` too."""
    if cash <= 0.0 or price <= 0.0:
        return 0.0
    return cash / (price * (1.0 + fee_rate))


@dataclass(frozen=True, slots=True)
class Execution:
    """Where and how an order executed: the fill price, maker or taker, and the fee."""

    price: float
    maker: bool
    fee: float
    point: int
    """Index of the path point at which it executed (0 = the open, 3 = the close)."""


def fill_on_trade(
    side: OrderSide,
    order_type: OrderType,
    level: float | None,
    price: float,
    quantity: float,
    costs: Costs,
    *,
    arriving: bool,
) -> Execution | None:
    """Execute an order against one trade at `price`, or None if the trade does not reach it."""
    code = type_code(order_type)
    lvl = math.nan if level is None else level
    if not reaches(side.sign, code, lvl, price):
        return None
    fill, maker = execution(side.sign, code, lvl, price, False, arriving, costs.slippage)
    return Execution(fill, maker, fill * quantity * costs.fee_rate(maker), 0)


def fill_on_candle(
    side: OrderSide,
    order_type: OrderType,
    level: float | None,
    candle: tuple[float, float, float, float],
    quantity: float,
    costs: Costs,
    *,
    arriving: bool,
) -> Execution | None:
    """Execute an order against one candle's path (open, high, low, close), or None.

    `arriving`: the order was placed after the previous candle closed, so the open is the first
    price it sees; otherwise it rested through the open.
    """
    code = type_code(order_type)
    lvl = math.nan if level is None else level
    points = candle_path(*candle)
    for index, price in enumerate(points):
        if reaches(side.sign, code, lvl, price):
            fill, maker = execution(
                side.sign, code, lvl, price, index > 0, arriving and index == 0, costs.slippage
            )
            return Execution(fill, maker, fill * quantity * costs.fee_rate(maker), index)
    return None


# --------------------------------------------------------------------------- the Decimal edge


def booked_price(price: float, tick: Decimal, side: OrderSide) -> Decimal:
    """A model price as booked: the decimal it stands for (15 significant digits, as every
    float becomes a decimal here), then onto the market's tick against the trader — a buy
    rounds up, a sell down — so rounding never makes a fill look better than the model."""
    exact = decimal_from_float(price)
    steps = (exact / tick).to_integral_value(rounding=ROUND_CEILING if side is OrderSide.BUY else ROUND_FLOOR)
    return steps * tick


def booked_quantity(quantity: float | Decimal, step: Decimal) -> Decimal:
    """A quantity as booked: down to the market's amount step (never more than was afforded)."""
    exact = quantity if isinstance(quantity, Decimal) else decimal_from_float(quantity)
    return (exact / step).to_integral_value(rounding=ROUND_FLOOR) * step


def booked_fee(fee: float, step: Decimal) -> Decimal:
    """A fee as booked: up to the quote currency's precision (never less than the model's)."""
    exact = decimal_from_float(fee)
    return (exact / step).to_integral_value(rounding=ROUND_CEILING) * step

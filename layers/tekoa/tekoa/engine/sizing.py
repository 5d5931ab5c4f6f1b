"""How big an entry is: fixed quote, percent of equity, or risk-based (risk ÷ stop distance).

Compiled so that `decide` and the backtester's vectorised path compute the same number with
the same code. Quantities are base currency, float64 here; `decide` turns them into the
intent's Decimal (15 significant digits) and the order layer rounds to the market's step.
"""

from __future__ import annotations

import math

from numba import njit

from tekoa.engine.protection import STOP_DISTANCE, STOP_NONE, STOP_PERCENT, STOP_PRICE, STOP_TRAILING
from tekoa.strategies.rules import FixedQuoteSizing, PercentEquitySizing, PositionSizing
from tekoa.strategies.units import OrderSize

FIXED_QUOTE = 1
PERCENT_EQUITY = 2
RISK = 3
FIXED_BASE = 4


def sizing_code(sizing: PositionSizing | OrderSize) -> tuple[int, float]:
    """(kind, value) of a rule set's sizing or a bot's order size, for `entry_quantity`."""
    if isinstance(sizing, OrderSize):
        return (FIXED_QUOTE if sizing.unit == "quote" else FIXED_BASE), float(sizing.amount)
    if isinstance(sizing, FixedQuoteSizing):
        return FIXED_QUOTE, float(sizing.amount)
    if isinstance(sizing, PercentEquitySizing):
        return PERCENT_EQUITY, float(sizing.pct)
    return RISK, float(sizing.risk_pct)


@njit(cache=True)
def stop_distance(stop_kind: int, stop_value: float, direction: float, price: float) -> float:
    """Distance from `price` to the stop a spec would set there, in quote units; NaN without a
    stop, and NaN when a fixed stop is not on the losing side of `price` (no sane entry)."""
    if stop_kind == STOP_NONE:
        return math.nan
    if stop_kind == STOP_PRICE:
        distance = direction * (price - stop_value)
        return distance if distance > 0.0 else math.nan
    if stop_kind == STOP_DISTANCE:
        return stop_value if stop_value > 0.0 else math.nan
    if stop_kind in (STOP_PERCENT, STOP_TRAILING):
        return price * stop_value / 100.0
    return math.nan


@njit(cache=True)
def entry_quantity(
    kind: int, value: float, equity: float, cash: float, price: float, distance: float
) -> float:
    """Base quantity of an entry at `price`, at most what `cash` buys; 0 when it cannot be sized.

    * fixed quote: `value` quote currency;
    * percent of equity: `value` % of `equity`;
    * risk: losing `value` % of `equity` if the stop (`distance` away) is hit;
    * fixed base: `value` base currency.
    """
    if not (price > 0.0) or not (cash > 0.0):
        return 0.0
    if kind == FIXED_QUOTE:
        quantity = value / price
    elif kind == PERCENT_EQUITY:
        quantity = equity * value / 100.0 / price
    elif kind == RISK:
        if not (distance > 0.0):
            return 0.0
        quantity = equity * value / 100.0 / distance
    else:
        quantity = value
    return max(0.0, min(quantity, cash / price))

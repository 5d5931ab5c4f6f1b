"""The vectorised path for rule-language strategies: one compiled pass over the bars.

A rule strategy's decision on a bar depends only on its compiled arrays and on whether a
position is open, so the whole history can run in one numba loop instead of calling `decide`
bar by bar. That loop holds no strategy logic of its own: what to do on a bar is read from the
`CompiledRules` arrays `decide` reads (entry, exit, stop parameter, targets, sizing) and
computed with the same compiled kernels — sizing (`tekoa.engine.sizing`), protection
(`tekoa.engine.protection`), the fill model (`tekoa.execution.fills`) and the account
(`tekoa.backtest.book`). A test runs random rule strategies both ways and requires the same
trades.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from tekoa.backtest import book as bk
from tekoa.backtest.trades import (
    T_COLUMNS,
    T_DIRECTION,
    T_ENTRY,
    T_ENTRY_BAR,
    T_EXIT,
    T_EXIT_BAR,
    T_FEES,
    T_PNL,
    T_QUANTITY,
    T_REASON,
)
from tekoa.engine import protection as pr
from tekoa.engine.rule_strategy import CompiledRules
from tekoa.engine.sizing import entry_quantity, stop_distance
from tekoa.execution.fills import Costs, affordable_quantity, candle_path, market_price

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

SIGNAL_EXIT = -1
REASONS = ("exit", "stop", *(f"target-{k}" for k in range(1, pr.MAX_TARGETS + 1)))
"""Reason names of the vectorised path's trades: a signal exit, the stop, target k."""


@njit(cache=True)
def _record(
    trades: F64, count: int, closed: F64, bar: int, price: float, reason: int, direction: float
) -> int:
    if count < trades.shape[0]:
        trades[count, T_ENTRY_BAR] = closed[bk.CLOSED_OPENED_BAR]
        trades[count, T_EXIT_BAR] = bar
        trades[count, T_QUANTITY] = closed[bk.CLOSED_QUANTITY]
        trades[count, T_ENTRY] = closed[bk.CLOSED_ENTRY]
        trades[count, T_EXIT] = price
        trades[count, T_PNL] = closed[bk.CLOSED_PNL]
        trades[count, T_FEES] = closed[bk.CLOSED_FEES]
        trades[count, T_REASON] = reason + 1  # index into REASONS
        trades[count, T_DIRECTION] = direction
    return count + 1


@njit(cache=True)
def _next_true(mask: Bools) -> I64:
    """For each bar, the first bar at or after it where `mask` holds (len(mask) if none)."""
    size = mask.shape[0]
    out = np.empty(size + 1, dtype=np.int64)
    out[size] = size
    for bar in range(size - 1, -1, -1):
        out[bar] = bar if mask[bar] else out[bar + 1]
    return out


@njit(cache=True)
def run_rules(
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    entry: Bools,
    exit_: Bools,
    has_exit: bool,
    direction: float,
    stop_kind: int,
    stop_value: F64,
    activation: float,
    target_kinds: I64,
    target_values: F64,
    target_fractions: F64,
    breakeven: bool,
    sizing_kind: int,
    sizing_value: float,
    cash: float,
    taker_fee: float,
    slippage: float,
    equity_out: F64,
    in_market_out: Bools,
    trades: F64,
    book: F64,
) -> int:
    """Run the strategy over every bar; fill the equity curve and the trade table (as many
    rows as fit) and return the number of trades (rerun with a larger table if it exceeds it).

    The protection runs along a bar's path only on bars `next_trigger_bar` names (it advances
    the best price over the others), up to the bar at which the next exit signal closes the
    position anyway — the general path's rule for skipping quiet bars, so the same results."""
    size = open_.shape[0]
    side = 1 if direction > 0 else -1
    book[:] = 0.0
    book[bk.CASH] = cash
    book[bk.OPENED_BAR] = -1.0
    protection = np.empty(pr.SIZE, dtype=np.float64)
    protected = False
    check = size  # next bar whose path runs through the protection
    next_exit = _next_true(exit_) if has_exit else np.full(size + 1, size, dtype=np.int64)
    kinds = np.zeros(pr.MAX_TARGETS + 1, dtype=np.int64)
    refs = np.zeros(pr.MAX_TARGETS + 1, dtype=np.float64)
    fractions = np.zeros(pr.MAX_TARGETS + 1, dtype=np.float64)
    closed = np.zeros(bk.CLOSED_SIZE, dtype=np.float64)
    pending = 0  # 1: an entry arrives at this open, -1: an exit does
    pending_quantity = 0.0
    pending_bar = -1
    count = 0
    held = 0.0
    money = cash
    for bar in range(size):
        if pending == 1:
            price = market_price(side, open_[bar], slippage)
            capacity = bk.opening_capacity(book, price)
            quantity = min(pending_quantity, affordable_quantity(capacity, price, taker_fee))
            if quantity > 0.0:
                bk.book_fill(book, side, quantity, price, price * quantity * taker_fee, bar, closed)
                pr.arm_kernel(
                    protection,
                    direction,
                    price,
                    stop_kind,
                    stop_value[pending_bar],
                    activation,
                    target_kinds,
                    target_values,
                    target_fractions,
                    breakeven,
                )
                protected = True
                check = pr.next_trigger_bar(protection, high, low, bar, min(size, next_exit[bar] + 1))
        elif pending == -1 and book[bk.QUANTITY] != 0.0:
            quantity = abs(book[bk.QUANTITY])
            price = market_price(-side, open_[bar], slippage)
            bk.book_fill(book, -side, quantity, price, price * quantity * taker_fee, bar, closed)
            count = _record(trades, count, closed, bar, price, SIGNAL_EXIT, direction)
            protected = False
        pending = 0
        if protected and bar == check:
            path = candle_path(open_[bar], high[bar], low[bar], close[bar])
            for point in range(4):
                written = pr.on_price(protection, path[point], point > 0, kinds, refs, fractions)
                for k in range(written):
                    left = abs(book[bk.QUANTITY])
                    if left == 0.0:
                        break
                    quantity = (
                        left
                        if kinds[k] == pr.EXIT_STOP
                        else bk.target_quantity(fractions[k], book[bk.ENTRY_QUANTITY], left)
                    )
                    price = market_price(-side, refs[k], slippage)
                    bk.book_fill(book, -side, quantity, price, price * quantity * taker_fee, bar, closed)
                    count = _record(trades, count, closed, bar, price, kinds[k], direction)
                if book[bk.QUANTITY] == 0.0:
                    protected = False
                    break
            if protected:
                check = pr.next_trigger_bar(protection, high, low, bar + 1, min(size, next_exit[bar] + 1))
        held = book[bk.QUANTITY]
        money = book[bk.CASH]
        price_close = close[bar]
        if held == 0.0:
            if entry[bar]:
                distance = stop_distance(stop_kind, stop_value[bar], direction, price_close)
                if stop_kind == pr.STOP_NONE or not math.isnan(distance):
                    equity = money + held * price_close
                    available = min(money, equity)
                    quantity = entry_quantity(
                        sizing_kind, sizing_value, equity, available, price_close, distance
                    )
                    if quantity > 0.0:
                        pending, pending_quantity, pending_bar = 1, quantity, bar
        elif has_exit and exit_[bar]:
            pending = -1
        equity_out[bar] = money + held * price_close
        in_market_out[bar] = held != 0.0
    return count


def run_compiled_rules(rules: CompiledRules, cash: float, costs: Costs) -> tuple[F64, Bools, F64, F64]:
    """(equity per bar, position open per bar, trade table, final account) of a compiled rule
    strategy; the trade table's columns are the `T_*` constants."""
    frame = rules.data.frame(rules.timeframe)
    size = len(frame)
    equity = np.empty(size, dtype=np.float64)
    in_market = np.zeros(size, dtype=np.bool_)
    exit_mask = rules.exit.true if rules.exit is not None else np.zeros(size, dtype=np.bool_)
    book = np.zeros(bk.SIZE, dtype=np.float64)
    capacity = max(256, size // 16)
    while True:
        trades = np.empty((capacity, T_COLUMNS), dtype=np.float64)
        count = run_rules(
            frame.open,
            frame.high,
            frame.low,
            frame.close,
            rules.entry.true,
            exit_mask,
            rules.exit is not None,
            float(rules.side.sign),
            rules.stop_kind,
            rules.stop_value,
            rules.activation_pct,
            rules.target_kinds,
            rules.target_values,
            rules.target_fractions,
            rules.breakeven,
            rules.sizing_kind,
            rules.sizing_value,
            cash,
            costs.taker_fee,
            costs.slippage,
            equity,
            in_market,
            trades,
            book,
        )
        if count <= capacity:
            return equity, in_market, trades[:count], book
        capacity = count

"""The backtester's account: cash and one position, as a float64 vector changed by compiled
kernels. The general path (Python, bar by bar) and the vectorised path (numba) both book
every fill through `book_fill`, so they compute the same cash, P&L and fees to the bit.

Accounting is linear: a buy pays quantity × price plus its fee from cash, a sell receives
quantity × price less its fee (a short's proceeds are cash too), and equity is cash plus the
signed position valued at the price. Fees paid to open a position are carried and charged to
its closing fills in proportion to the quantity each closes, so a trade's P&L is net of both.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

F64 = npt.NDArray[np.float64]

CASH = 0
QUANTITY = 1  # signed: > 0 long, < 0 short
AVERAGE = 2  # average entry price
ENTRY_QUANTITY = 3  # quantity of the opening fill
OPEN_FEES = 4  # entry fees not yet charged to a closing fill
OPENED_BAR = 5  # bar of the opening fill
FEES_PAID = 6  # every fee so far
SIZE = 7

# What `book_fill` writes about the part of a position a fill closes.
CLOSED_QUANTITY = 0
CLOSED_ENTRY = 1
CLOSED_PNL = 2
CLOSED_FEES = 3
CLOSED_OPENED_BAR = 4
CLOSED_SIZE = 5

DUST = 1e-9
"""A remainder below this fraction of the entry quantity closes with the fill that leaves it."""


def new_book(cash: float) -> F64:
    """An account holding `cash` and no position."""
    book = np.zeros(SIZE, dtype=np.float64)
    book[CASH] = cash
    book[OPENED_BAR] = -1.0
    return book


@njit(cache=True)
def equity(book: F64, price: float) -> float:
    """Cash plus the position valued at `price`."""
    return float(book[CASH] + book[QUANTITY] * price)


@njit(cache=True)
def opening_capacity(book: F64, price: float) -> float:
    """Money an opening order may use: the lesser of cash and equity (a short's proceeds are
    not free money)."""
    return float(max(0.0, min(book[CASH], book[CASH] + book[QUANTITY] * price)))


@njit(cache=True)
def target_quantity(fraction: float, entry_quantity: float, open_quantity: float) -> float:
    """What a take-profit target closing `fraction` of the entry sells from `open_quantity`:
    everything left when it would leave only dust."""
    quantity = fraction * entry_quantity
    if quantity >= open_quantity or open_quantity - quantity <= DUST * entry_quantity:
        return open_quantity
    return quantity


@njit(cache=True)
def book_fill(book: F64, side: int, quantity: float, price: float, fee: float, bar: int, closed: F64) -> bool:
    """Book one fill (`side` +1 buy / -1 sell). When it closes part of a position, write that
    part to `closed` (quantity, entry price, net P&L, fees charged, opening bar) and return True.
    A fill larger than an opposite position closes it and opens the rest the other way."""
    book[CASH] -= side * quantity * price + fee
    book[FEES_PAID] += fee
    held = book[QUANTITY]
    if held == 0.0 or (held > 0.0) == (side > 0):
        size = abs(held)
        if held == 0.0:
            book[AVERAGE] = price
            book[ENTRY_QUANTITY] = quantity
            book[OPEN_FEES] = fee
            book[OPENED_BAR] = bar
        else:
            book[AVERAGE] = (size * book[AVERAGE] + quantity * price) / (size + quantity)
            book[OPEN_FEES] += fee
        book[QUANTITY] = held + side * quantity
        return False
    size = abs(held)
    closing = min(quantity, size)
    direction = 1.0 if held > 0.0 else -1.0
    entry_share = book[OPEN_FEES] * closing / size
    exit_share = fee * closing / quantity
    closed[CLOSED_QUANTITY] = closing
    closed[CLOSED_ENTRY] = book[AVERAGE]
    closed[CLOSED_PNL] = direction * (price - book[AVERAGE]) * closing - entry_share - exit_share
    closed[CLOSED_FEES] = entry_share + exit_share
    closed[CLOSED_OPENED_BAR] = book[OPENED_BAR]
    book[OPEN_FEES] -= entry_share
    left = size - closing
    if left <= DUST * book[ENTRY_QUANTITY]:
        book[QUANTITY] = 0.0
        book[OPEN_FEES] = 0.0
        rest = quantity - closing
        if rest > DUST * quantity:
            book[QUANTITY] = side * rest
            book[AVERAGE] = price
            book[ENTRY_QUANTITY] = rest
            book[OPEN_FEES] = fee - exit_share
            book[OPENED_BAR] = bar
    else:
        book[QUANTITY] = direction * left
    return True


@njit(cache=True)
def next_touch_bar(high: F64, low: F64, start: int, end: int, low_reaches: float, high_reaches: float) -> int:
    """The first bar in [start, end) whose low is at or below `low_reaches` or whose high is at or
    above `high_reaches` (where a resting order could execute); `end` if none."""
    if low_reaches == -math.inf and high_reaches == math.inf:
        return end
    for bar in range(start, end):
        if low[bar] <= low_reaches or high[bar] >= high_reaches:
            return bar
    return end

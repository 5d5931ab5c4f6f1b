"""Closed trades: a table of columns (what the backtester produces and the metrics read) and,
on demand, one `Trade` object per row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tekoa.domain.trading import PositionSide

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# Columns of the trade table.
T_ENTRY_BAR = 0
T_EXIT_BAR = 1
T_QUANTITY = 2
T_ENTRY = 3
T_EXIT = 4
T_PNL = 5
T_FEES = 6
T_REASON = 7  # index into the table's reason names
T_DIRECTION = 8  # +1 long, -1 short
T_COLUMNS = 9


@dataclass(frozen=True, slots=True)
class Trade:
    """A closing fill matched against the position it reduced: one round trip (or part of one)."""

    side: PositionSide
    entry_bar: int
    exit_bar: int
    entry_time: int
    exit_time: int
    quantity: float
    entry_price: float
    exit_price: float
    pnl: float
    fees: float
    reason: str

    @property
    def return_pct(self) -> float:
        """P&L as a percentage of the entry notional."""
        return 100.0 * self.pnl / (self.entry_price * self.quantity)


def table_of(trades: Sequence[Trade]) -> tuple[F64, tuple[str, ...]]:
    """The table and reason names of `trades`."""
    names = tuple(dict.fromkeys(t.reason for t in trades))
    code = {name: index for index, name in enumerate(names)}
    rows = np.array(
        [
            (
                t.entry_bar,
                t.exit_bar,
                t.quantity,
                t.entry_price,
                t.exit_price,
                t.pnl,
                t.fees,
                code[t.reason],
                t.side.sign,
            )
            for t in trades
        ],
        dtype=np.float64,
    ).reshape(-1, T_COLUMNS)
    return rows, names


def trades_of(rows: F64, names: Sequence[str], open_time: I64) -> list[Trade]:
    """One `Trade` per row of the table."""
    return [
        Trade(
            side=PositionSide.LONG if row[T_DIRECTION] > 0 else PositionSide.SHORT,
            entry_bar=int(row[T_ENTRY_BAR]),
            exit_bar=int(row[T_EXIT_BAR]),
            entry_time=int(open_time[int(row[T_ENTRY_BAR])]),
            exit_time=int(open_time[int(row[T_EXIT_BAR])]),
            quantity=float(row[T_QUANTITY]),
            entry_price=float(row[T_ENTRY]),
            exit_price=float(row[T_EXIT]),
            pnl=float(row[T_PNL]),
            fees=float(row[T_FEES]),
            reason=names[int(row[T_REASON])],
        )
        for row in rows
    ]

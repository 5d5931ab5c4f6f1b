"""Performance metrics of a backtest, from its equity curve and its trades.

Conventions:

* the equity curve has one value per bar of the primary timeframe, marked at the bar's close;
  the value before the first bar is the starting cash;
* per-bar returns are `r_i = E_i / E_(i-1) - 1`, starting from the cash;
* a year is 365 days (markets that trade around the clock), so a timeframe has
  `periods_per_year = 365 days / timeframe` bars (365 daily, 8760 hourly, 525600 one-minute);
* percentages are percent (5.0 = 5 %); a metric that does not exist for the run (no trades,
  no losing trade, a flat curve) is None.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from tekoa.backtest.trades import T_ENTRY_BAR, T_EXIT_BAR, T_PNL
from tekoa.domain.timeframes import Timeframe

YEAR_MS = 365 * 86_400_000


@dataclass(frozen=True, slots=True)
class Metrics:
    """What a backtest achieved. Each field's definition:

    * `total_return_pct`: 100 × (final equity / starting cash − 1).
    * `cagr_pct`: compound annual growth, 100 × ((final / start)^(1 / years) − 1), years being
      the calendar time from the first bar's open to the last bar's close; −100 once equity is
      gone.
    * `max_drawdown_pct`: the largest fall of equity from a previous peak (the starting cash
      counts as one), 100 × max(1 − E_i / max(E_0..E_i)).
    * `sharpe`: mean(r) / stdev(r) × √periods_per_year (sample stdev, risk-free rate 0).
    * `sortino`: mean(r) / downside deviation × √periods_per_year, downside deviation being
      √(mean(min(r, 0)²)) over all bars.
    * `calmar`: CAGR / max drawdown (both in percent).
    * `win_rate_pct`: 100 × winning trades / trades; a trade wins when its net P&L is above 0.
    * `profit_factor`: gross profit of winners / gross loss of losers.
    * `expectancy`: mean net P&L per trade, in quote currency.
    * `exposure_pct`: 100 × bars whose close finds a position open / bars.
    * `trades`: closing fills (a position closed in parts counts each part).
    * `average_duration_bars` / `average_duration_ms`: mean time from a trade's opening fill to
      its closing fill (bars of the primary timeframe; milliseconds).
    * `fees`: every fee paid, open position included, in quote currency.
    """

    total_return_pct: float
    cagr_pct: float | None
    max_drawdown_pct: float
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    win_rate_pct: float | None
    profit_factor: float | None
    expectancy: float | None
    exposure_pct: float
    trades: int
    average_duration_bars: float | None
    average_duration_ms: float | None
    fees: float
    final_equity: float

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


@njit(cache=True)
def _curve_stats(equity: npt.NDArray[np.float64], start: float) -> tuple[float, float, float, float]:
    """(max drawdown as a fraction, mean, sample stdev and downside deviation of the per-bar
    returns) of an equity curve starting from `start`, in one pass (Welford for the stdev)."""
    peak = start
    previous = start
    drawdown = 0.0
    mean = 0.0
    squares = 0.0
    downside = 0.0
    count = equity.shape[0]
    for i in range(count):
        value = equity[i]
        peak = max(peak, value)
        if peak > 0.0:
            drawdown = max(drawdown, 1.0 - value / peak)
        change = value / previous - 1.0
        previous = value
        delta = change - mean
        mean += delta / (i + 1)
        squares += delta * (change - mean)
        if change < 0.0:
            downside += change * change
    spread = math.sqrt(squares / (count - 1)) if count > 1 else 0.0
    return drawdown, mean, spread, math.sqrt(downside / count) if count else 0.0


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compute_metrics(
    open_time: npt.NDArray[np.int64],
    equity: npt.NDArray[np.float64],
    in_market: npt.NDArray[np.bool_],
    trades: npt.NDArray[np.float64],
    starting_cash: float,
    timeframe: Timeframe,
    fees: float,
) -> Metrics:
    """The metrics of one run (see `Metrics` for each definition); `trades` is the trade table
    (`tekoa.backtest.trades`)."""
    bars = equity.shape[0]
    final = float(equity[-1]) if bars else starting_cash
    total = final / starting_cash - 1.0
    cagr: float | None = None
    if bars:
        years = (int(open_time[-1]) + timeframe.ms - int(open_time[0])) / YEAR_MS
        cagr = -100.0 if final <= 0 else 100.0 * ((final / starting_cash) ** (1.0 / years) - 1.0)
    drawdown, mean, spread, downside = _curve_stats(equity, starting_cash)
    per_year = math.sqrt(YEAR_MS / timeframe.ms)
    sharpe = sortino = None
    if bars > 1 and math.isfinite(mean):
        sharpe = _finite(mean / spread * per_year) if spread > 0 else None
        sortino = _finite(mean / downside * per_year) if downside > 0 else None
    calmar = None if cagr is None or drawdown <= 0 else _finite(cagr / (100.0 * drawdown))
    pnl = trades[:, T_PNL]
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    loss = -float(losses.sum())
    entry_bars, exit_bars = trades[:, T_ENTRY_BAR].astype(np.int64), trades[:, T_EXIT_BAR].astype(np.int64)
    count = pnl.shape[0]
    return Metrics(
        total_return_pct=100.0 * total,
        cagr_pct=None if cagr is None else _finite(cagr),
        max_drawdown_pct=100.0 * drawdown,
        sharpe=sharpe,
        sortino=sortino,
        calmar=calmar,
        win_rate_pct=100.0 * wins.size / pnl.size if pnl.size else None,
        profit_factor=float(wins.sum()) / loss if loss > 0 else None,
        expectancy=float(pnl.mean()) if pnl.size else None,
        exposure_pct=100.0 * float(np.count_nonzero(in_market)) / bars if bars else 0.0,
        trades=count,
        average_duration_bars=float(np.mean(exit_bars - entry_bars)) if count else None,
        average_duration_ms=float(np.mean(open_time[exit_bars] - open_time[entry_bars])) if count else None,
        fees=fees,
        final_equity=final,
    )

"""Metrics by their definitions, on curves and trades small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tekoa.backtest.metrics import YEAR_MS, compute_metrics
from tekoa.backtest.trades import Trade, table_of
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import PositionSide

DAY = Timeframe.D1.ms


def _trade(pnl: float, bars: int) -> Trade:
    return Trade(PositionSide.LONG, 0, bars, 0, bars * DAY, 1.0, 100.0, 100.0 + pnl, pnl, 0.5, "exit")


def test_metrics_follow_their_definitions() -> None:
    times = np.arange(4, dtype=np.int64) * DAY
    equity = np.array([110.0, 99.0, 99.0, 121.0])
    in_market = np.array([True, True, False, False])
    trades = [_trade(20.0, 2), _trade(-10.0, 3), _trade(15.0, 1)]

    m = compute_metrics(times, equity, in_market, table_of(trades)[0], 100.0, Timeframe.D1, fees=1.5)

    returns = np.array([0.1, -0.1, 0.0, 121 / 99 - 1])
    per_year = math.sqrt(365)
    assert m.total_return_pct == pytest.approx(21.0)
    assert m.cagr_pct == pytest.approx(100 * (1.21 ** (YEAR_MS / (4 * DAY)) - 1))
    assert m.max_drawdown_pct == pytest.approx(10.0)  # 110 -> 99
    assert m.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1) * per_year)
    assert m.sortino == pytest.approx(
        returns.mean() / math.sqrt(np.mean(np.minimum(returns, 0) ** 2)) * per_year
    )
    assert m.calmar == pytest.approx(m.cagr_pct / 10.0)
    assert m.win_rate_pct == pytest.approx(200 / 3)
    assert m.profit_factor == pytest.approx(35 / 10)
    assert m.expectancy == pytest.approx(25 / 3)
    assert m.exposure_pct == 50.0
    assert (m.trades, m.average_duration_bars, m.average_duration_ms) == (3, 2.0, 2.0 * DAY)
    assert m.fees == 1.5 and m.final_equity == 121.0


def test_metrics_that_do_not_exist_are_none() -> None:
    times = np.arange(3, dtype=np.int64) * DAY
    flat = compute_metrics(
        times, np.full(3, 100.0), np.zeros(3, bool), table_of([])[0], 100.0, Timeframe.D1, 0.0
    )
    winners = compute_metrics(
        times,
        np.array([100.0, 101, 102]),
        np.ones(3, bool),
        table_of([_trade(2, 1)])[0],
        100.0,
        Timeframe.D1,
        0.0,
    )

    assert (flat.sharpe, flat.sortino, flat.calmar, flat.win_rate_pct, flat.profit_factor) == (None,) * 5
    assert flat.max_drawdown_pct == 0.0 and flat.total_return_pct == 0.0
    assert winners.profit_factor is None and winners.sortino is None and winners.win_rate_pct == 100.0

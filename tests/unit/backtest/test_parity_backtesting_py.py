"""Parity with backtesting.py on the GOOG daily fixture: SMA(10) crossing above SMA(20) to
enter and below to exit, long only, 100 % of equity, no fees, fills at the next open."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from tekoa.backtest.data import market_data
from tekoa.backtest.runner import run_backtest
from tekoa.domain.timeframes import Timeframe
from tekoa.market.frame import CandleFrame
from tests.conftest import DATA_DIR
from tests.unit.engine.support import strategy

GOOG = DATA_DIR / "goog_1d_backtesting.csv"


def _sma(period: int) -> dict[str, object]:
    return {"type": "indicator", "name": "sma", "params": {"period": period}}


SMA_CROSS = {
    "kind": "rules",
    "rules": {
        "timeframe": "1d",
        "entry": {"type": "compare", "left": _sma(10), "op": "crosses_above", "right": _sma(20)},
        "exit": {"type": "compare", "left": _sma(10), "op": "crosses_below", "right": _sma(20)},
        "position_sizing": {"type": "percent_equity", "pct": "100"},
    },
}


def _reference_trades() -> list[tuple[int, int, float, float]]:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    table = pd.read_csv(GOOG)
    table.index = pd.to_datetime(table.timestamp, unit="ms")
    table = table.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]

    def sma(values: pd.Series, period: int) -> pd.Series:
        return pd.Series(values).rolling(period).mean()

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 20)

        def next(self) -> None:
            if crossover(self.fast, self.slow) and not self.position:
                self.buy(size=0.9999)
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(table, SmaCross, cash=10_000, commission=0, finalize_trades=True).run()
    trades = stats._trades
    return [
        (int(t.EntryBar), int(t.ExitBar), float(t.EntryPrice), float(t.ExitPrice))
        for t in trades.itertuples()
    ]


@pytest.mark.parametrize("vectorised", [False, True])
def test_sma_cross_trades_like_backtesting_py(vectorised: bool) -> None:
    # Given the GOOG daily candles and the SMA(10/20) cross strategy
    frame = CandleFrame.from_csv(GOOG, Timeframe.D1)
    definition = strategy(SMA_CROSS)

    # When Tekoa backtests it (no fees) and backtesting.py runs the same strategy
    result = run_backtest(definition, market_data(definition, {Timeframe.D1: frame}), vectorised=vectorised)
    reference = _reference_trades()

    # Then the closed trades are the same: entry and exit bars and prices
    ours = [(t.entry_bar, t.exit_bar, t.entry_price, t.exit_price) for t in result.trades]
    assert len(ours) == 46
    assert ours == reference[:-1]
    # and the trade still open at the end (backtesting.py closes it at the last close)
    last_entry_bar, _, last_entry_price, _ = reference[-1]
    assert result.open_position is not None
    assert result.open_position["opened_at"] == int(frame.open_time[last_entry_bar])
    assert float(result.open_position["average_entry"]) == last_entry_price

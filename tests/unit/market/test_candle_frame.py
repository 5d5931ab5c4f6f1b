"""The candle frame: the two ways in (stored candles, CSV) and the checks that keep it sane."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import Timeframe
from tekoa.market.frame import CandleFrame, FrameError
from tests.conftest import DATA_DIR


def _candle(open_time: int, close: str) -> Candle:
    price = Decimal(close)
    return Candle("simulated", "BTC/USDT", Timeframe.M1, open_time, price, price, price, price, Decimal(1), 3)


def test_goog_fixture_reads_every_row_as_float64_columns() -> None:
    frame = CandleFrame.from_csv(DATA_DIR / "goog_1d_backtesting.csv", Timeframe.D1)

    assert len(frame) == 2148
    assert frame.open_time[0] == 1092873600000
    assert (frame.open[0], frame.high[0], frame.low[0], frame.close[0]) == (100.0, 104.06, 95.96, 100.34)
    assert frame.volume.dtype == np.float64


def test_stored_candles_become_the_same_columns() -> None:
    frame = CandleFrame.from_candles(Timeframe.M1, [_candle(0, "1.5"), _candle(60_000, "2.25")])

    assert frame.open_time.tolist() == [0, 60_000]
    assert frame.close.tolist() == [1.5, 2.25]


def test_a_candle_of_another_timeframe_is_refused() -> None:
    with pytest.raises(FrameError, match="cannot join"):
        CandleFrame.from_candles(Timeframe.M5, [_candle(0, "1")])


@pytest.mark.parametrize(
    ("times", "message"),
    [([0, 30_000], "not aligned"), ([60_000, 0], "strictly ascending"), ([0, 0], "strictly ascending")],
)
def test_times_must_be_aligned_and_ascending(times: list[int], message: str) -> None:
    ones = [1.0] * len(times)
    with pytest.raises(FrameError, match=message):
        CandleFrame.from_arrays(Timeframe.M1, times, ones, ones, ones, ones, ones)


def test_high_below_close_is_refused() -> None:
    with pytest.raises(FrameError, match="inconsistent OHLC"):
        CandleFrame.from_arrays(Timeframe.M1, [0], [1.0], [1.0], [0.5], [2.0], [1.0])


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,open,high,low,close,volume\n0,1,1,1,1,1\n60000,1,x,1,1,1\n")

    with pytest.raises(FrameError, match=r"bad.csv:3"):
        CandleFrame.from_csv(path, Timeframe.M1)


def test_until_keeps_only_candles_closed_by_then() -> None:
    ones = [1.0] * 3
    frame = CandleFrame.from_arrays(Timeframe.M1, [0, 60_000, 120_000], ones, ones, ones, ones, ones)

    assert frame.until(120_000).open_time.tolist() == [0, 60_000]
    assert frame.until(119_999).open_time.tolist() == [0]
    assert frame.tail(2).open_time.tolist() == [60_000, 120_000]

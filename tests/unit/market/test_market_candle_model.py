"""The domain Candle: exact decimals from floats and consistent OHLC."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import Timeframe

T0 = 1_717_200_000_000


def test_floats_become_the_decimal_they_stand_for() -> None:
    # Given float64 values (one a numpy scalar) / When a candle is built from them
    candle = Candle.from_floats(
        "binance", "BTC/USDT", Timeframe.M1, T0, (0.1, float(np.float64(0.3)), 0.1, 0.2, 1e-05), 3
    )

    # Then money is the decimal the float stands for, not its binary expansion
    assert (candle.open, candle.high, candle.close) == (Decimal("0.1"), Decimal("0.3"), Decimal("0.2"))
    assert candle.volume == Decimal("0.00001")
    assert candle.close_time == T0 + 60_000


def test_an_inconsistent_candle_is_rejected() -> None:
    # Given a high below the close / When built / Then it is refused
    with pytest.raises(ValueError, match="OHLC"):
        Candle.from_floats("binance", "BTC/USDT", Timeframe.M1, T0, (1.0, 1.5, 1.0, 2.0, 1.0), 1)


def test_a_misaligned_open_time_is_rejected() -> None:
    # Given an open time inside a minute / When built / Then it is refused
    with pytest.raises(ValueError, match="aligned"):
        Candle.from_floats("binance", "BTC/USDT", Timeframe.M1, T0 + 1, (1.0, 1.0, 1.0, 1.0, 1.0), 1)


def test_non_finite_money_is_rejected() -> None:
    # Given a NaN volume / When built / Then it is refused
    with pytest.raises(ValueError, match="finite"):
        Candle.from_floats("binance", "BTC/USDT", Timeframe.M1, T0, (1.0, 1.0, 1.0, 1.0, float("nan")), 1)

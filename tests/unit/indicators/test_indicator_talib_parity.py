"""Every indicator TA-Lib has equals TA-Lib (1e-9 relative, NaN at the same bars); vwap and
volume_sma equal a plain numpy reference. Checked through `compute`, the engine's entry point."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from tekoa.domain.timeframes import Timeframe
from tekoa.indicators.catalogue import (
    INDICATORS,
    BollingerParams,
    MacdParams,
    NoParams,
    PeriodParams,
    PriceField,
    SourcedPeriodParams,
    StochasticParams,
)
from tekoa.indicators.compute import compute, price_column
from tekoa.market.frame import CandleFrame
from tests.unit.indicators.series import eurusd, goog, random_walk

F64 = npt.NDArray[np.float64]


def _bands(frame: CandleFrame, p: BollingerParams) -> dict[str, F64]:
    std = float(p.std)
    upper, middle, lower = talib.BBANDS(frame.close, p.period, std, std, 0)
    spread = upper - lower
    with np.errstate(invalid="ignore", divide="ignore"):
        percent_b = np.where(spread == 0, 0.5, (frame.close - lower) / spread)
        width = spread / middle
    return {"upper": upper, "middle": middle, "lower": lower, "width": width, "percent_b": percent_b}


def _window_mean(values: F64, period: int) -> F64:
    out = np.full(values.shape, np.nan)
    if values.size >= period:
        out[period - 1 :] = sliding_window_view(values, period).mean(axis=1)
    return out


def _vwap(frame: CandleFrame, p: PeriodParams) -> dict[str, F64]:
    out = np.full(len(frame), np.nan)
    if len(frame) >= p.period:
        typical = (frame.high + frame.low + frame.close) / 3.0
        weighted = sliding_window_view(typical * frame.volume, p.period).sum(axis=1)
        traded = sliding_window_view(frame.volume, p.period).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[p.period - 1 :] = np.where(traded > 0, weighted / traded, np.nan)
    return {"value": out}


REFERENCES: dict[str, Callable[[CandleFrame, Any], dict[str, F64]]] = {
    "sma": lambda f, p: {"value": talib.SMA(price_column(f, p.source), p.period)},
    "ema": lambda f, p: {"value": talib.EMA(price_column(f, p.source), p.period)},
    "wma": lambda f, p: {"value": talib.WMA(price_column(f, p.source), p.period)},
    "rsi": lambda f, p: {"value": talib.RSI(f.close, p.period)},
    "macd": lambda f, p: dict(
        zip(("line", "signal", "hist"), talib.MACD(f.close, p.fast, p.slow, p.signal), strict=True)
    ),
    "bollinger": _bands,
    "atr": lambda f, p: {"value": talib.ATR(f.high, f.low, f.close, p.period)},
    "stochastic": lambda f, p: dict(
        zip(
            ("k", "d"),
            talib.STOCH(f.high, f.low, f.close, p.k_period, p.smooth, 0, p.d_period, 0),
            strict=True,
        )
    ),
    "adx": lambda f, p: {"value": talib.ADX(f.high, f.low, f.close, p.period)},
    "obv": lambda f, p: {"value": talib.OBV(f.close, f.volume)},
    "vwap": _vwap,
    "roc": lambda f, p: {"value": talib.ROC(f.close, p.period)},
    "cci": lambda f, p: {"value": talib.CCI(f.high, f.low, f.close, p.period)},
    "williams_r": lambda f, p: {"value": talib.WILLR(f.high, f.low, f.close, p.period)},
    "mfi": lambda f, p: {"value": talib.MFI(f.high, f.low, f.close, f.volume, p.period)},
    "volume_sma": lambda f, p: {"value": _window_mean(f.volume, p.period)},
    "highest": lambda f, p: {"value": talib.MAX(price_column(f, p.source), p.period)},
    "lowest": lambda f, p: {"value": talib.MIN(price_column(f, p.source), p.period)},
}

PARAMS: dict[str, list[object]] = {
    "sma": [SourcedPeriodParams(period=p, source=s) for p, s in ((2, "close"), (20, "hlc3"), (50, "volume"))],
    "ema": [SourcedPeriodParams(period=p, source=s) for p, s in ((2, "close"), (20, "hl2"), (50, "ohlc4"))],
    "wma": [SourcedPeriodParams(period=p, source=s) for p, s in ((2, "close"), (9, "open"), (30, "low"))],
    "rsi": [PeriodParams(period=p) for p in (2, 14, 50)],
    "macd": [MacdParams(), MacdParams(fast=5, slow=35, signal=5), MacdParams(fast=2, slow=3, signal=2)],
    "bollinger": [
        BollingerParams(),
        BollingerParams(period=2, std=Decimal(1)),
        BollingerParams(period=50, std=Decimal("2.5")),
    ],
    "atr": [PeriodParams(period=p) for p in (1, 14, 50)],
    "stochastic": [
        StochasticParams(),
        StochasticParams(k_period=5, smooth=1, d_period=1),
        StochasticParams(k_period=21, smooth=5, d_period=4),
    ],
    "adx": [PeriodParams(period=p) for p in (2, 14, 40)],
    "obv": [NoParams()],
    "vwap": [PeriodParams(period=p) for p in (1, 20, 60)],
    "roc": [PeriodParams(period=p) for p in (1, 10, 40)],
    "cci": [PeriodParams(period=p) for p in (2, 20, 40)],
    "williams_r": [PeriodParams(period=p) for p in (2, 14, 40)],
    "mfi": [PeriodParams(period=p) for p in (2, 14, 40)],
    "volume_sma": [PeriodParams(period=p) for p in (1, 20, 60)],
    "highest": [
        SourcedPeriodParams(period=p, source=s) for p, s in ((2, "high"), (20, "close"), (55, "high"))
    ],
    "lowest": [SourcedPeriodParams(period=p, source=s) for p, s in ((2, "low"), (20, "close"), (55, "low"))],
}

FRAMES: dict[str, Callable[[], CandleFrame]] = {
    "goog": goog,
    "eurusd": eurusd,
    "walk": lambda: random_walk(3000, seed=7),
    "walk-micro": lambda: random_walk(3000, seed=8, price=1e-6),
    "walk-large": lambda: random_walk(3000, seed=9, price=1e5),
}


def assert_same_series(ours: F64, reference: F64) -> None:
    assert ours.shape == reference.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference), err_msg="NaN positions differ")
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=0, equal_nan=True)


def test_every_catalogue_indicator_has_a_reference_and_parameter_sets() -> None:
    assert set(REFERENCES) == set(INDICATORS) == set(PARAMS)


@pytest.mark.parametrize("frame_name", FRAMES)
@pytest.mark.parametrize(
    ("name", "params"), [(name, params) for name, sets in PARAMS.items() for params in sets], ids=str
)
def test_indicator_matches_reference(name: str, params: object, frame_name: str) -> None:
    frame = FRAMES[frame_name]()
    ours = compute(name, params, frame)
    reference = REFERENCES[name](frame, params)
    assert set(ours) == set(INDICATORS[name].outputs)
    for output in ours:
        assert_same_series(ours[output], reference[output])


@st.composite
def short_frames(draw: st.DrawFn) -> CandleFrame:
    """Short random candles (0-80 bars), including runs of identical prices."""
    n = draw(st.integers(0, 80))
    prices = draw(
        st.lists(
            st.sampled_from([1.0, 1.0001, 1.0002, 0.9999, 1.5, 0.5, 1.25]), min_size=4 * n, max_size=4 * n
        )
    )
    volumes = draw(st.lists(st.sampled_from([0.0, 1.0, 250.5, 1e6]), min_size=n, max_size=n))
    quads = np.array(prices, dtype=np.float64).reshape(n, 4)
    open_, close = quads[:, 0], quads[:, 1]
    high = np.maximum(quads.max(axis=1), np.maximum(open_, close))
    low = np.minimum(quads.min(axis=1), np.minimum(open_, close))
    times = np.arange(n, dtype=np.int64) * Timeframe.M1.ms
    return CandleFrame.from_arrays(Timeframe.M1, times, open_, high, low, close, volumes)


@pytest.mark.parametrize("name", list(PARAMS))
@settings(max_examples=30, deadline=None)
@given(frame=short_frames(), pick=st.integers(0, 2))
def test_indicator_matches_reference_on_short_and_degenerate_series(
    name: str, frame: CandleFrame, pick: int
) -> None:
    params = PARAMS[name][pick % len(PARAMS[name])]
    ours = compute(name, params, frame)
    reference = REFERENCES[name](frame, params)
    for output in ours:
        assert_same_series(ours[output], reference[output])


def test_sourced_indicators_read_the_chosen_price_field() -> None:
    frame = goog()
    on_hl2 = compute("sma", SourcedPeriodParams(period=5, source=PriceField.HL2), frame)["value"]
    assert_same_series(on_hl2, talib.SMA((frame.high + frame.low) / 2.0, 5))
    assert not np.allclose(on_hl2[4:], talib.SMA(frame.close, 5)[4:])

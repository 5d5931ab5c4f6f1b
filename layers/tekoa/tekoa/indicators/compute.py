"""The dispatcher: one indicator series of a candle frame, by catalogue name and params.

`compute(name, params, frame)` returns every output the rule language can read for that
indicator (`INDICATORS[name].outputs`), each aligned with the frame's rows. The engine keys
the result by `IndicatorKey(timeframe, name, params)` and computes it once per market.
Kernels read the frame's columns in place; the only copies are the outputs and, for the
derived price fields (hl2, hlc3, ohlc4), the averaged column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from tekoa.indicators import kernels as k
from tekoa.indicators.catalogue import (
    BollingerParams,
    MacdParams,
    NoParams,
    PeriodParams,
    PriceField,
    SourcedPeriodParams,
    StochasticParams,
    indicator_spec,
)
from tekoa.market.frame import F64, CandleFrame
from tekoa.strategies.units import StrictModel


def price_column(frame: CandleFrame, field: PriceField) -> F64:
    """The frame's column for `field`: a raw OHLCV column itself (no copy) or a new array of
    hl2 = (high+low)/2, hlc3 = (high+low+close)/3, ohlc4 = (open+high+low+close)/4."""
    match field:
        case PriceField.OPEN:
            return frame.open
        case PriceField.HIGH:
            return frame.high
        case PriceField.LOW:
            return frame.low
        case PriceField.CLOSE:
            return frame.close
        case PriceField.VOLUME:
            return frame.volume
        case PriceField.HL2:
            return (frame.high + frame.low) / 2.0
        case PriceField.HLC3:
            return (frame.high + frame.low + frame.close) / 3.0
        case PriceField.OHLC4:
            return (frame.open + frame.high + frame.low + frame.close) / 4.0


@njit(cache=True)
def _band_ratios(close: F64, upper: F64, middle: F64, lower: F64) -> tuple[F64, F64]:
    """Band width (upper-lower)/middle and %B (close-lower)/(upper-lower). Where the bands have
    collapsed onto the middle (no spread), %B is 0.5, its limit as the spread vanishes."""
    n = close.shape[0]
    width = np.empty(n, dtype=np.float64)
    percent_b = np.empty(n, dtype=np.float64)
    for i in range(n):
        spread = upper[i] - lower[i]
        width[i] = spread / middle[i] if middle[i] != 0.0 else np.nan
        percent_b[i] = (close[i] - lower[i]) / spread if spread != 0.0 else 0.5
    return width, percent_b


_Run = Callable[[Any, CandleFrame], dict[str, F64]]


def _sourced(kernel: Callable[[F64, int], F64]) -> _Run:
    def run(p: SourcedPeriodParams, frame: CandleFrame) -> dict[str, F64]:
        return {"value": kernel(price_column(frame, p.source), p.period)}

    return run


def _hlc(kernel: Callable[[F64, F64, F64, int], F64]) -> _Run:
    def run(p: PeriodParams, frame: CandleFrame) -> dict[str, F64]:
        return {"value": kernel(frame.high, frame.low, frame.close, p.period)}

    return run


def _hlcv(kernel: Callable[[F64, F64, F64, F64, int], F64]) -> _Run:
    def run(p: PeriodParams, frame: CandleFrame) -> dict[str, F64]:
        return {"value": kernel(frame.high, frame.low, frame.close, frame.volume, p.period)}

    return run


def _rsi(p: PeriodParams, frame: CandleFrame) -> dict[str, F64]:
    return {"value": k.rsi(frame.close, p.period)}


def _roc(p: PeriodParams, frame: CandleFrame) -> dict[str, F64]:
    return {"value": k.roc(frame.close, p.period)}


def _volume_sma(p: PeriodParams, frame: CandleFrame) -> dict[str, F64]:
    return {"value": k.volume_sma(frame.volume, p.period)}


def _obv(p: NoParams, frame: CandleFrame) -> dict[str, F64]:
    return {"value": k.obv(frame.close, frame.volume)}


def _macd(p: MacdParams, frame: CandleFrame) -> dict[str, F64]:
    line, signal, hist = k.macd(frame.close, p.fast, p.slow, p.signal)
    return {"line": line, "signal": signal, "hist": hist}


def _bollinger(p: BollingerParams, frame: CandleFrame) -> dict[str, F64]:
    upper, middle, lower = k.bollinger(frame.close, p.period, float(p.std))
    width: F64
    percent_b: F64
    width, percent_b = _band_ratios(frame.close, upper, middle, lower)
    return {"upper": upper, "middle": middle, "lower": lower, "width": width, "percent_b": percent_b}


def _stochastic(p: StochasticParams, frame: CandleFrame) -> dict[str, F64]:
    k_line, d_line = k.stochastic(frame.high, frame.low, frame.close, p.k_period, p.smooth, p.d_period)
    return {"k": k_line, "d": d_line}


_DISPATCH: dict[str, _Run] = {
    "sma": _sourced(k.sma),
    "ema": _sourced(k.ema),
    "wma": _sourced(k.wma),
    "rsi": _rsi,
    "macd": _macd,
    "bollinger": _bollinger,
    "atr": _hlc(k.atr),
    "stochastic": _stochastic,
    "adx": _hlc(k.adx),
    "obv": _obv,
    "vwap": _hlcv(k.vwap),
    "roc": _roc,
    "cci": _hlc(k.cci),
    "williams_r": _hlc(k.williams_r),
    "mfi": _hlcv(k.mfi),
    "volume_sma": _volume_sma,
    "highest": _sourced(k.highest),
    "lowest": _sourced(k.lowest),
}


def compute(name: str, params: StrictModel, frame: CandleFrame) -> dict[str, F64]:
    """Every output of indicator `name` with `params` over `frame`, keyed by the rule
    language's output names (`value`; macd `line`/`signal`/`hist`; bollinger
    `upper`/`middle`/`lower`/`width`/`percent_b`; stochastic `k`/`d`).

    Arrays are aligned with the frame's rows, NaN during the warm-up. KeyError for an unknown
    name, TypeError for params of another indicator's model.
    """
    spec = indicator_spec(name)
    return _DISPATCH[name](spec.check(params), frame)

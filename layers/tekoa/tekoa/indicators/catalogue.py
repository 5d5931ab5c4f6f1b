"""The indicator catalogue: every indicator the rule language names, declared once.

For each indicator: its parameter model (the one the rule language validates), the outputs a
rule can read, the candle columns it reads, and its warm-up. Pure Python with no numpy, so
the rule language (and through it the API) can read it without loading the numeric stack;
the kernels live in `tekoa.indicators.kernels` and `tekoa.indicators.compute`.

Warm-up, in bars of history:

* `lookback` is TA-Lib's lookback: the index of the first non-NaN value when a kernel runs
  over a series from its first bar. A window indicator's value at a bar depends only on the
  `lookback + 1` bars ending there.
* `settling` is the extra history the rule language wants before it trusts a value.
  Recursive (exponentially smoothed) indicators start from a seed (a plain average of the
  first bars) whose weight decays with every bar: `RECURSIVE_WARMUP_FACTOR` periods per
  smoothing stage after the first value leave the seed at most e^-3 ≈ 5 % of its weight
  (Wilder, alpha 1/n: (1 - 1/n)^3n) or e^-6 ≈ 0.25 % (EMA, alpha 2/(n+1)).
  OBV is cumulative: its level depends on where the history starts and only its changes
  mean anything, so it needs one bar before the first change.
* `warmup = lookback + 1 + settling` is what `tekoa.strategies.rules.lookback_by_timeframe`
  asks of the candle store for each series.

Definitions follow TA-Lib (see each kernel's docstring in `tekoa.indicators.kernels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import Field, ValidationInfo, field_validator

from tekoa.strategies.units import StrictModel

RECURSIVE_WARMUP_FACTOR = 3
"""Exponentially smoothed indicators (EMA, RSI, ATR, ...) settle for this many periods per
smoothing stage after their first value, so the seed has decayed to a few percent of its weight."""

Period = Annotated[int, Field(ge=1, le=1000, description="Number of bars in the window (1-1000).")]


class PriceField(StrEnum):
    """A candle value: the raw OHLCV fields and the usual typical-price averages."""

    OPEN = "open"
    HIGH = "high"
    LOW = "low"
    CLOSE = "close"
    VOLUME = "volume"
    HL2 = "hl2"
    HLC3 = "hlc3"
    OHLC4 = "ohlc4"


# --------------------------------------------------------------------------- parameter models


class PeriodParams(StrictModel):
    """Parameters of a single-window indicator."""

    period: Period


class SourcedPeriodParams(StrictModel):
    """Parameters of a window over one candle value (moving averages, highest, lowest)."""

    period: Period
    source: PriceField = Field(PriceField.CLOSE, description="Candle value the window runs over.")


class NoParams(StrictModel):
    """Indicators without parameters (OBV)."""


class MacdParams(StrictModel):
    """MACD: EMA(fast) - EMA(slow), its EMA(signal), and their difference (hist)."""

    fast: Period = 12
    # Validated when defaulted too: {"fast": 30} must fail against the default slow period.
    slow: Period = Field(26, validate_default=True)
    signal: Period = 9

    @field_validator("slow")
    @classmethod
    def _slow_above_fast(cls, slow: int, info: ValidationInfo) -> int:
        fast = info.data.get("fast")
        if fast is not None and slow <= fast:
            raise ValueError(f"slow period ({slow}) must be longer than the fast period ({fast})")
        return slow


class BollingerParams(StrictModel):
    """Bollinger bands: SMA(period) ± std × standard deviation."""

    period: Period = 20
    std: Decimal = Field(Decimal(2), gt=0, le=10, description="Band width in standard deviations (0-10].")


class StochasticParams(StrictModel):
    """Stochastic oscillator: %K over `k_period`, smoothed by `smooth`; %D = SMA(%K, d_period)."""

    k_period: Period = 14
    d_period: Annotated[int, Field(ge=1, le=100)] = 3
    smooth: Annotated[int, Field(ge=1, le=100)] = 3


# --------------------------------------------------------------------------- the catalogue

P = TypeVar("P", bound=StrictModel)
Kind = Literal["window", "recursive", "cumulative"]

_HLC = (PriceField.HIGH, PriceField.LOW, PriceField.CLOSE)


@dataclass(frozen=True, slots=True)
class IndicatorSpec(Generic[P]):
    """What the rule language and the engine need to know about one indicator.

    `kind` says how a value depends on history: `window` (only the last `lookback + 1`
    bars), `recursive` (every earlier bar, with geometrically decaying weight) or
    `cumulative` (a running total: only differences are independent of the start).
    """

    name: str
    params: type[P]
    outputs: tuple[str, ...]
    kind: Kind
    inputs: Callable[[P], tuple[PriceField, ...]]
    lookback: Callable[[P], int]
    settling: Callable[[P], int]
    summary: str

    def warmup(self, params: P) -> int:
        """Bars of history needed before the value at the newest bar is meaningful."""
        return self.lookback(params) + 1 + self.settling(params)

    def check(self, params: StrictModel) -> P:
        """`params` as this indicator's model; TypeError if it belongs to another indicator."""
        if not isinstance(params, self.params):
            raise TypeError(f"{self.name} takes {self.params.__name__}, not {type(params).__name__}")
        return params


def _window(p: Any) -> int:
    return 0


def _source(p: SourcedPeriodParams) -> tuple[PriceField, ...]:
    return (p.source,)


def _settle(*periods: int) -> int:
    # A smoothing over one period keeps no memory (EMA(1) is the input, ATR(1) the true range).
    return RECURSIVE_WARMUP_FACTOR * sum(p for p in periods if p > 1)


_SPECS: tuple[IndicatorSpec[Any], ...] = (
    IndicatorSpec(
        name="sma",
        params=SourcedPeriodParams,
        outputs=("value",),
        kind="window",
        inputs=_source,
        lookback=lambda p: p.period - 1,
        settling=_window,
        summary="Simple moving average of `source`.",
    ),
    IndicatorSpec(
        name="ema",
        params=SourcedPeriodParams,
        outputs=("value",),
        kind="recursive",
        inputs=_source,
        lookback=lambda p: p.period - 1,
        settling=lambda p: _settle(p.period),
        summary="Exponential moving average (alpha 2/(n+1)), seeded with the SMA of the first n bars.",
    ),
    IndicatorSpec(
        name="wma",
        params=SourcedPeriodParams,
        outputs=("value",),
        kind="window",
        inputs=_source,
        lookback=lambda p: p.period - 1,
        settling=_window,
        summary="Linearly weighted moving average (weights 1..n, newest heaviest).",
    ),
    IndicatorSpec(
        name="rsi",
        params=PeriodParams,
        outputs=("value",),
        kind="recursive",
        inputs=lambda p: (PriceField.CLOSE,),
        lookback=lambda p: p.period,
        settling=lambda p: _settle(p.period),
        summary="Relative strength index (Wilder smoothing), 0-100.",
    ),
    IndicatorSpec(
        name="macd",
        params=MacdParams,
        outputs=("line", "signal", "hist"),
        kind="recursive",
        inputs=lambda p: (PriceField.CLOSE,),
        lookback=lambda p: p.slow + p.signal - 2,
        settling=lambda p: _settle(p.slow, p.signal),
        summary="EMA(fast) - EMA(slow) (line), its EMA(signal) (signal), line - signal (hist).",
    ),
    IndicatorSpec(
        name="bollinger",
        params=BollingerParams,
        outputs=("upper", "middle", "lower", "width", "percent_b"),
        kind="window",
        inputs=lambda p: (PriceField.CLOSE,),
        lookback=lambda p: p.period - 1,
        settling=_window,
        summary="SMA ± std × population standard deviation; width = (upper-lower)/middle, "
        "percent_b = (close-lower)/(upper-lower).",
    ),
    IndicatorSpec(
        name="atr",
        params=PeriodParams,
        outputs=("value",),
        kind="recursive",
        inputs=lambda p: _HLC,
        lookback=lambda p: p.period,
        settling=lambda p: _settle(p.period),
        summary="Average true range (Wilder smoothing), in price units.",
    ),
    IndicatorSpec(
        name="stochastic",
        params=StochasticParams,
        outputs=("k", "d"),
        kind="window",
        inputs=lambda p: _HLC,
        lookback=lambda p: p.k_period + p.smooth + p.d_period - 3,
        settling=_window,
        summary="Slow stochastic: %K = SMA(fast %K, smooth), %D = SMA(%K, d_period), 0-100.",
    ),
    IndicatorSpec(
        name="adx",
        params=PeriodParams,
        outputs=("value",),
        kind="recursive",
        inputs=lambda p: _HLC,
        lookback=lambda p: 2 * p.period - 1,
        settling=lambda p: _settle(p.period, p.period),
        summary="Average directional index (two Wilder smoothings deep), 0-100.",
    ),
    IndicatorSpec(
        name="obv",
        params=NoParams,
        outputs=("value",),
        kind="cumulative",
        inputs=lambda p: (PriceField.CLOSE, PriceField.VOLUME),
        lookback=lambda p: 0,
        settling=lambda p: 1,
        summary="On-balance volume: running total of volume signed by the close's direction.",
    ),
    IndicatorSpec(
        name="vwap",
        params=PeriodParams,
        outputs=("value",),
        kind="window",
        inputs=lambda p: (*_HLC, PriceField.VOLUME),
        lookback=lambda p: p.period - 1,
        settling=_window,
        summary="Rolling volume-weighted typical price (hlc3) over the last `period` bars.",
    ),
    IndicatorSpec(
        name="roc",
        params=PeriodParams,
        outputs=("value",),
        kind="window",
        inputs=lambda p: (PriceField.CLOSE,),
        lookback=lambda p: p.period,
        settling=_window,
        summary="Rate of change in percent: 100 × (close / close `period` bars ago - 1).",
    ),
    IndicatorSpec(
        name="cci",
        params=PeriodParams,
        outputs=("value",),
        kind="window",
        inputs=lambda p: _HLC,
        lookback=lambda p: p.period - 1,
        settling=_window,
        summary="Commodity channel index over the typical price (hlc3).",
    ),
    IndicatorSpec(
        name="williams_r",
        params=PeriodParams,
        outputs=("value",),
        kind="window",
        inputs=lambda p: _HLC,
        lookback=lambda p: p.period - 1,
        settling=_window,
        summary="Williams %R, -100-0.",
    ),
    IndicatorSpec(
        name="mfi",
        params=PeriodParams,
        outputs=("value",),
        kind="window",
        inputs=lambda p: (*_HLC, PriceField.VOLUME),
        lookback=lambda p: p.period,
        settling=_window,
        summary="Money flow index, 0-100.",
    ),
    IndicatorSpec(
        name="volume_sma",
        params=PeriodParams,
        outputs=("value",),
        kind="window",
        inputs=lambda p: (PriceField.VOLUME,),
        lookback=lambda p: p.period - 1,
        settling=_window,
        summary="Simple moving average of volume.",
    ),
    IndicatorSpec(
        name="highest",
        params=SourcedPeriodParams,
        outputs=("value",),
        kind="window",
        inputs=_source,
        lookback=lambda p: p.period - 1,
        settling=_window,
        summary="Highest `source` over the last `period` bars.",
    ),
    IndicatorSpec(
        name="lowest",
        params=SourcedPeriodParams,
        outputs=("value",),
        kind="window",
        inputs=_source,
        lookback=lambda p: p.period - 1,
        settling=_window,
        summary="Lowest `source` over the last `period` bars.",
    ),
)

INDICATORS: dict[str, IndicatorSpec[Any]] = {spec.name: spec for spec in _SPECS}
"""Every indicator by name, in the rule language's order."""


def indicator_spec(name: str) -> IndicatorSpec[Any]:
    """The catalogue entry for `name`; KeyError naming the known indicators otherwise."""
    try:
        return INDICATORS[name]
    except KeyError:
        raise KeyError(f"unknown indicator {name!r}; known: {', '.join(INDICATORS)}") from None

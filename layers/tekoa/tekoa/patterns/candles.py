"""Candlestick patterns of the rule language (`CandlePattern`), vectorised over a whole series.

Every recogniser returns a boolean array aligned with the candles: True at the bar on which
the pattern completes (its last candle). A value depends only on that bar and earlier ones,
so evaluating the newest bar and evaluating history give the same answer.

Shape terms for one candle: body = |close - open|, range = high - low, upper shadow =
high - max(open, close), lower shadow = min(open, close) - low; a candle is bullish when
close > open and bearish when close < open. A "long" body is at least half the candle's
range; a "small" one at most a third of it. Thresholds are named constants below.

Trend context (hammer family only, where the same shape means opposite things): the trend
before a pattern whose first candle is bar f is down when close[f-1] < close[f-C] and up when
close[f-1] > close[f-C], with C = `PATTERN_CONTEXT_BARS`; without that much history there is
no trend and those patterns do not fire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from tekoa.market.frame import F64, CandleFrame
from tekoa.strategies.rules import PATTERN_CONTEXT_BARS, CandlePattern

Mask = npt.NDArray[np.bool_]

DOJI_BODY = 0.1
"""A doji's body is at most this fraction of its range."""
SMALL_BODY = 1 / 3
"""A small body (hammer family, star) is at most this fraction of the range."""
LONG_BODY = 0.5
"""A long body (star's first candle, soldiers, crows) is at least this fraction of the range."""
SHADOW_TO_BODY = 2.0
"""A hammer's lower (shooting star's upper) shadow is at least this many bodies long."""
OPPOSITE_SHADOW = 0.1
"""...and its other shadow at most this fraction of the range."""
STAR_BODY = 0.3
"""A star's body is at most this fraction of the first candle's body."""


class _Candles:
    """Shape arrays of a frame, each aligned with its rows."""

    def __init__(self, frame: CandleFrame) -> None:
        self.open, self.high, self.low, self.close = frame.open, frame.high, frame.low, frame.close
        self.body = np.abs(self.close - self.open)
        self.range = self.high - self.low
        self.top = np.maximum(self.open, self.close)
        self.bottom = np.minimum(self.open, self.close)
        self.upper = self.high - self.top
        self.lower = self.bottom - self.low
        self.bullish = self.close > self.open
        self.bearish = self.close < self.open
        self.long = (self.range > 0) & (self.body >= LONG_BODY * self.range)
        self.small = (self.range > 0) & (self.body <= SMALL_BODY * self.range)


Series = TypeVar("Series", F64, Mask)


def _shift(values: Series, bars: int) -> Series:
    """values[t - bars] at t (the bar `bars` back); NaN / False where there is none."""
    out = np.empty_like(values)
    out[:bars] = False if values.dtype == np.bool_ else np.nan
    out[bars:] = values[: max(values.shape[0] - bars, 0)]
    return out


def _prior_trend(close: F64, candles: int) -> tuple[Mask, Mask]:
    """(down, up) before a pattern of `candles` candles ending at each bar (module docstring)."""
    before = _shift(close, candles)
    earlier = _shift(close, candles + PATTERN_CONTEXT_BARS - 1)
    return before < earlier, before > earlier


def _prev(values: Series, bars: int = 1) -> Series:
    return _shift(values, bars)


def doji(c: _Candles) -> Mask:
    """Doji: a body of at most `DOJI_BODY` of a non-zero range (open and close almost equal)."""
    return (c.range > 0) & (c.body <= DOJI_BODY * c.range)


def _hammer_shape(c: _Candles) -> Mask:
    return (
        c.small & (c.body > 0) & (c.lower >= SHADOW_TO_BODY * c.body) & (c.upper <= OPPOSITE_SHADOW * c.range)
    )


def _inverted_shape(c: _Candles) -> Mask:
    return (
        c.small & (c.body > 0) & (c.upper >= SHADOW_TO_BODY * c.body) & (c.lower <= OPPOSITE_SHADOW * c.range)
    )


def hammer(c: _Candles) -> Mask:
    """Hammer: after a downtrend, a small body at the top of the range, a lower shadow at least
    `SHADOW_TO_BODY` bodies long and an upper shadow of at most `OPPOSITE_SHADOW` of the range."""
    return _hammer_shape(c) & _prior_trend(c.close, 1)[0]


def hanging_man(c: _Candles) -> Mask:
    """Hanging man: the hammer's shape after an uptrend."""
    return _hammer_shape(c) & _prior_trend(c.close, 1)[1]


def inverted_hammer(c: _Candles) -> Mask:
    """Inverted hammer: after a downtrend, a small body at the bottom of the range, an upper
    shadow at least `SHADOW_TO_BODY` bodies long, a lower shadow of at most `OPPOSITE_SHADOW`."""
    return _inverted_shape(c) & _prior_trend(c.close, 1)[0]


def shooting_star(c: _Candles) -> Mask:
    """Shooting star: the inverted hammer's shape after an uptrend."""
    return _inverted_shape(c) & _prior_trend(c.close, 1)[1]


def bullish_engulfing(c: _Candles) -> Mask:
    """Bullish engulfing: a bearish candle, then a bullish one whose body covers it (opens at or
    below the previous close, closes at or above the previous open) and is strictly longer."""
    return (
        _prev(c.bearish)
        & c.bullish
        & (c.open <= _prev(c.close))
        & (c.close >= _prev(c.open))
        & (c.body > _prev(c.body))
    )


def bearish_engulfing(c: _Candles) -> Mask:
    """Bearish engulfing: a bullish candle, then a bearish one whose body covers it (opens at or
    above the previous close, closes at or below the previous open) and is strictly longer."""
    return (
        _prev(c.bullish)
        & c.bearish
        & (c.open >= _prev(c.close))
        & (c.close <= _prev(c.open))
        & (c.body > _prev(c.body))
    )


def harami_bullish(c: _Candles) -> Mask:
    """Bullish harami: a long bearish candle, then a bullish one whose body lies strictly inside
    the previous body."""
    return _prev(c.bearish & c.long) & c.bullish & (c.top < _prev(c.open)) & (c.bottom > _prev(c.close))


def harami_bearish(c: _Candles) -> Mask:
    """Bearish harami: a long bullish candle, then a bearish one whose body lies strictly inside
    the previous body."""
    return _prev(c.bullish & c.long) & c.bearish & (c.top < _prev(c.close)) & (c.bottom > _prev(c.open))


def piercing_line(c: _Candles) -> Mask:
    """Piercing line: a long bearish candle, then a bullish one that opens below the previous
    close and closes above the middle of the previous body but below its open."""
    middle = (_prev(c.open) + _prev(c.close)) / 2
    return (
        _prev(c.bearish & c.long)
        & c.bullish
        & (c.open < _prev(c.close))
        & (c.close > middle)
        & (c.close < _prev(c.open))
    )


def dark_cloud_cover(c: _Candles) -> Mask:
    """Dark cloud cover: a long bullish candle, then a bearish one that opens above the previous
    close and closes below the middle of the previous body but above its open."""
    middle = (_prev(c.open) + _prev(c.close)) / 2
    return (
        _prev(c.bullish & c.long)
        & c.bearish
        & (c.open > _prev(c.close))
        & (c.close < middle)
        & (c.close > _prev(c.open))
    )


def morning_star(c: _Candles) -> Mask:
    """Morning star: a long bearish candle; a star whose body is at most `STAR_BODY` of the first
    body and sits at or below the first close; then a bullish candle closing above the middle of the
    first body."""
    first_body = _prev(c.body, 2)
    middle = (_prev(c.open, 2) + _prev(c.close, 2)) / 2
    return (
        _prev(c.bearish & c.long, 2)
        & (_prev(c.body) <= STAR_BODY * first_body)
        & (_prev(c.top) <= _prev(c.close, 2))
        & c.bullish
        & (c.close > middle)
    )


def evening_star(c: _Candles) -> Mask:
    """Evening star: a long bullish candle; a star whose body is at most `STAR_BODY` of the first
    body and sits at or above the first close; then a bearish candle closing below the middle of the
    first body."""
    first_body = _prev(c.body, 2)
    middle = (_prev(c.open, 2) + _prev(c.close, 2)) / 2
    return (
        _prev(c.bullish & c.long, 2)
        & (_prev(c.body) <= STAR_BODY * first_body)
        & (_prev(c.bottom) >= _prev(c.close, 2))
        & c.bearish
        & (c.close < middle)
    )


def three_white_soldiers(c: _Candles) -> Mask:
    """Three white soldiers: three long bullish candles, each closing higher than the one before
    and opening within the previous body."""
    step = c.bullish & c.long
    advance = (c.close > _prev(c.close)) & (c.open >= _prev(c.open)) & (c.open <= _prev(c.close))
    return step & _prev(step) & _prev(step, 2) & advance & _prev(advance)


def three_black_crows(c: _Candles) -> Mask:
    """Three black crows: three long bearish candles, each closing lower than the one before and
    opening within the previous body."""
    step = c.bearish & c.long
    decline = (c.close < _prev(c.close)) & (c.open <= _prev(c.open)) & (c.open >= _prev(c.close))
    return step & _prev(step) & _prev(step, 2) & decline & _prev(decline)


_RECOGNISERS: dict[CandlePattern, Callable[[_Candles], Mask]] = {
    CandlePattern.DOJI: doji,
    CandlePattern.HAMMER: hammer,
    CandlePattern.INVERTED_HAMMER: inverted_hammer,
    CandlePattern.SHOOTING_STAR: shooting_star,
    CandlePattern.HANGING_MAN: hanging_man,
    CandlePattern.BULLISH_ENGULFING: bullish_engulfing,
    CandlePattern.BEARISH_ENGULFING: bearish_engulfing,
    CandlePattern.MORNING_STAR: morning_star,
    CandlePattern.EVENING_STAR: evening_star,
    CandlePattern.THREE_WHITE_SOLDIERS: three_white_soldiers,
    CandlePattern.THREE_BLACK_CROWS: three_black_crows,
    CandlePattern.PIERCING_LINE: piercing_line,
    CandlePattern.DARK_CLOUD_COVER: dark_cloud_cover,
    CandlePattern.HARAMI_BULLISH: harami_bullish,
    CandlePattern.HARAMI_BEARISH: harami_bearish,
}


def candle_pattern(pattern: CandlePattern, frame: CandleFrame) -> Mask:
    """True at every bar of `frame` on which `pattern` completes (see each recogniser)."""
    mask = _RECOGNISERS[pattern](_Candles(frame))
    mask[: pattern.candles - 1] = False
    return mask


def candle_patterns(frame: CandleFrame) -> dict[CandlePattern, Mask]:
    """Every pattern's mask over `frame`, sharing one pass of shape arrays."""
    candles = _Candles(frame)
    out = {}
    for pattern, recognise in _RECOGNISERS.items():
        mask = recognise(candles)
        mask[: pattern.candles - 1] = False
        out[pattern] = mask
    return out

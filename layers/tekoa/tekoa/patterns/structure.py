"""Market structure: swing highs and lows, support and resistance, and the `MarketStructure`
states of the rule language, over a whole series and causal.

Swings. Bar j is a swing high when its high is strictly above the highs of the `strength`
bars before it and not below those of the `strength` bars after it (so a flat top counts once,
at its first bar); a swing low mirrors it with lows. A swing is
therefore only *known* `strength` bars later, once the bars after it have closed: every
output here at bar t uses only swings confirmed by t (pivot j with j + strength <= t), so a
value at bar t never depends on bars after t.

Window. A state at bar t looks at the swings whose pivot lies in the last `lookback` bars
(t - lookback < j) and are confirmed by t; "latest" and "previous" are the last two such
swings in time. With `StructureCondition` semantics:

* higher_high: the latest swing high is above the previous one.
* lower_low: the latest swing low is below the previous one.
* uptrend: higher high and higher low (latest swing low above the previous one).
* downtrend: lower high and lower low.
* range: at least two swing highs and two swing lows in the window, and neither trend.
* break_of_structure_up: the close crosses above the latest swing high on this bar
  (close[t] > level >= close[t-1]); break_of_structure_down mirrors it with the latest swing low.
* near_support / near_resistance: the close is within `tolerance_pct` percent of the nearest
  (by price) swing low / swing high in the window.

Support and resistance levels (`support_resistance`) are the nearest swing low at or below
the close and the nearest swing high at or above it, NaN where the window holds none.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

from tekoa.market.frame import F64, CandleFrame
from tekoa.strategies.rules import MarketStructure, StructureCondition

Mask = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]

SWING_STRENGTH = 2
"""Bars on each side a swing's extreme must beat; a swing is confirmed this many bars late."""

_STATES = {
    MarketStructure.UPTREND: 0,
    MarketStructure.DOWNTREND: 1,
    MarketStructure.RANGE: 2,
    MarketStructure.HIGHER_HIGH: 3,
    MarketStructure.LOWER_LOW: 4,
    MarketStructure.BREAK_OF_STRUCTURE_UP: 5,
    MarketStructure.BREAK_OF_STRUCTURE_DOWN: 6,
    MarketStructure.NEAR_SUPPORT: 7,
    MarketStructure.NEAR_RESISTANCE: 8,
}
"""The kernel's code for each state (the branches of `_structure`)."""


class Swings(NamedTuple):
    """Swing pivots of a series: the pivot bars (ascending) and the bar each becomes known."""

    high_bars: I64
    low_bars: I64
    strength: int

    def confirmed_highs(self, n: int) -> Mask:
        """True at the bar on which a swing high becomes known (pivot + strength)."""
        return _at(self.high_bars + self.strength, n)

    def confirmed_lows(self, n: int) -> Mask:
        """True at the bar on which a swing low becomes known (pivot + strength)."""
        return _at(self.low_bars + self.strength, n)


def _at(bars: I64, n: int) -> Mask:
    mask = np.zeros(n, dtype=np.bool_)
    mask[bars[bars < n]] = True
    return mask


@njit(cache=True)
def _pivots(values: F64, strength: int, highs: bool) -> I64:
    n = values.shape[0]
    out = np.empty(n, dtype=np.int64)
    count = 0
    for j in range(strength, n - strength):
        pivot = values[j]
        ok = True
        for d in range(1, strength + 1):
            left = values[j - d]
            right = values[j + d]
            if (left >= pivot or right > pivot) if highs else (left <= pivot or right < pivot):
                ok = False
                break
        if ok:
            out[count] = j
            count += 1
    return out[:count]


def swings(frame: CandleFrame, strength: int = SWING_STRENGTH) -> Swings:
    """The swing highs and lows of `frame` (pivot bars; see the module docstring)."""
    if strength < 1:
        raise ValueError(f"strength must be at least 1, got {strength}")
    return Swings(_pivots(frame.high, strength, True), _pivots(frame.low, strength, False), strength)


@njit(cache=True)
def _last_two(bars: I64, values: F64, start: int, stop: int, first: int) -> tuple[int, float, float, int]:
    """Scan pivots bars[first..] with start <= bar < stop: (count, latest, previous, new first)."""
    while first < bars.shape[0] and bars[first] < start:
        first += 1
    count = 0
    latest = np.nan
    previous = np.nan
    k = first
    while k < bars.shape[0] and bars[k] < stop:
        previous = latest
        latest = values[bars[k]]
        count += 1
        k += 1
    return count, latest, previous, first


@njit(cache=True)
def _nearest(bars: I64, values: F64, start: int, stop: int, first: int, price: float, side: int) -> float:
    """Level of the pivot in [start, stop) nearest to `price`: side -1 at or below, +1 at or
    above, 0 either side. NaN when there is none."""
    best = np.nan
    k = first
    while k < bars.shape[0] and bars[k] < stop:
        if bars[k] >= start:
            level = values[bars[k]]
            if (side < 0 and level > price) or (side > 0 and level < price):
                k += 1
                continue
            if np.isnan(best) or abs(level - price) < abs(best - price):
                best = level
        k += 1
    return best


@njit(cache=True)
def _structure(
    high: F64,
    low: F64,
    close: F64,
    high_bars: I64,
    low_bars: I64,
    strength: int,
    lookback: int,
    state: int,
    tolerance: float,
) -> Mask:
    n = close.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    first_high = 0
    first_low = 0
    for t in range(n):
        start = t - lookback + 1  # pivots inside the window ...
        stop = t - strength + 1  # ... and confirmed by t
        n_high, last_high, prev_high, first_high = _last_two(high_bars, high, start, stop, first_high)
        n_low, last_low, prev_low, first_low = _last_two(low_bars, low, start, stop, first_low)
        higher_high = n_high >= 2 and last_high > prev_high
        lower_high = n_high >= 2 and last_high < prev_high
        higher_low = n_low >= 2 and last_low > prev_low
        lower_low = n_low >= 2 and last_low < prev_low
        up = higher_high and higher_low
        down = lower_high and lower_low
        if state == 0:  # uptrend
            out[t] = up
        elif state == 1:  # downtrend
            out[t] = down
        elif state == 2:  # range
            out[t] = n_high >= 2 and n_low >= 2 and not up and not down
        elif state == 3:  # higher_high
            out[t] = higher_high
        elif state == 4:  # lower_low
            out[t] = lower_low
        elif state == 5:  # break_of_structure_up
            out[t] = t > 0 and n_high >= 1 and close[t] > last_high >= close[t - 1]
        elif state == 6:  # break_of_structure_down
            out[t] = t > 0 and n_low >= 1 and close[t] < last_low <= close[t - 1]
        else:  # near_support (7) / near_resistance (8)
            bars = low_bars if state == 7 else high_bars
            values = low if state == 7 else high
            first = first_low if state == 7 else first_high
            level = _nearest(bars, values, start, stop, first, close[t], 0)
            out[t] = not np.isnan(level) and abs(close[t] - level) <= tolerance * level
    return out


def structure_state(
    state: MarketStructure,
    frame: CandleFrame,
    lookback: int,
    tolerance_pct: float | None = None,
    strength: int = SWING_STRENGTH,
) -> Mask:
    """True at every bar where the market is in `state` over the last `lookback` bars
    (definitions in the module docstring). `tolerance_pct` is required by the proximity
    states and ignored by the others."""
    if lookback < 1:
        raise ValueError(f"lookback must be at least 1, got {lookback}")
    if state.uses_tolerance and tolerance_pct is None:
        raise ValueError(f"{state} needs a tolerance_pct")
    pivots = swings(frame, strength)
    tolerance = float(tolerance_pct or 0.0) / 100.0
    return _structure(
        frame.high,
        frame.low,
        frame.close,
        pivots.high_bars,
        pivots.low_bars,
        strength,
        lookback,
        _STATES[state],
        tolerance,
    )


def structure_condition(condition: StructureCondition, frame: CandleFrame) -> Mask:
    """`structure_state` for a rule's `StructureCondition` (its state, lookback and tolerance)."""
    tolerance = None if condition.tolerance_pct is None else float(condition.tolerance_pct)
    return structure_state(condition.structure, frame, condition.lookback, tolerance)


@njit(cache=True)
def _levels(
    close: F64, high: F64, low: F64, high_bars: I64, low_bars: I64, strength: int, lookback: int
) -> tuple[F64, F64]:
    n = close.shape[0]
    support = np.full(n, np.nan)
    resistance = np.full(n, np.nan)
    first_high = 0
    first_low = 0
    for t in range(n):
        start = t - lookback + 1
        stop = t - strength + 1
        while first_low < low_bars.shape[0] and low_bars[first_low] < start:
            first_low += 1
        while first_high < high_bars.shape[0] and high_bars[first_high] < start:
            first_high += 1
        support[t] = _nearest(low_bars, low, start, stop, first_low, close[t], -1)
        resistance[t] = _nearest(high_bars, high, start, stop, first_high, close[t], 1)
    return support, resistance


class Levels(NamedTuple):
    """Nearest swing low at or below the close (support) and swing high at or above it
    (resistance) within the window, per bar; NaN where there is none."""

    support: F64
    resistance: F64


def support_resistance(frame: CandleFrame, lookback: int, strength: int = SWING_STRENGTH) -> Levels:
    """Support and resistance levels at every bar from the swings of the last `lookback` bars."""
    if lookback < 1:
        raise ValueError(f"lookback must be at least 1, got {lookback}")
    pivots = swings(frame, strength)
    return Levels(
        *_levels(frame.close, frame.high, frame.low, pivots.high_bars, pivots.low_bars, strength, lookback)
    )

"""Indicator kernels: one public function per indicator over float64 arrays, compiled by numba.

Every function takes whole series (row i = bar i, oldest first) and returns arrays of the same
length, NaN where TA-Lib returns nothing (the warm-up; `lookback` in
`tekoa.indicators.catalogue`). Definitions, seeds, epsilon tests and the order of floating-
point operations follow TA-Lib's C sources, so values match TA-Lib to rounding:

* moving averages and window sums are running totals (add the new bar, divide, subtract the
  bar leaving the window), as TA-Lib's SMA does;
* EMA (alpha = 2/(n+1)) is seeded with the SMA of its first n inputs;
* Wilder smoothing (RSI, ATR, ADX) is `(prev × (n-1) + new) / n`, seeded with a plain average;
* "zero" tests use TA-Lib's epsilon of 1e-14 (absolute, or relative to the prices compared
  where TA-Lib scales it).
* Bollinger bands use the population standard deviation computed from squared deviations
  (not mean(x²) - mean², whose cancellation TA-Lib no longer accepts either).

Each kernel is a single pass with its state in scalars or a ring buffer of one window; the
only allocations are the outputs. Inputs must be finite (`CandleFrame.validate` ensures it)
and periods at least 1 (TA-Lib refuses some period-1 cases; these kernels return the
natural degenerate value: an SMA of 1 is the input, and so on).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

F64 = npt.NDArray[np.float64]

_EPSILON = 1e-14
"""TA-Lib's `TA_EPSILON`: `TA_IS_ZERO(v)` is |v| < it, `TA_IS_ZERO_OR_NEG(v)` is v < it."""


class Macd(NamedTuple):
    """MACD outputs: the line (EMA fast - EMA slow), its signal EMA, and line - signal."""

    macd: F64
    signal: F64
    histogram: F64


class Bollinger(NamedTuple):
    """Bollinger bands: middle = SMA, upper/lower = middle ± k × population std."""

    upper: F64
    middle: F64
    lower: F64


class Stochastic(NamedTuple):
    """Slow stochastic: %K (smoothed fast %K) and %D (SMA of %K), 0-100."""

    k: F64
    d: F64


def _check_period(name: str, period: int) -> None:
    if period < 1:
        raise ValueError(f"{name} must be at least 1, got {period}")


@njit(cache=True)
def _nan_head(n: int, lookback: int) -> F64:
    """An output array of length n whose first `lookback` entries are NaN."""
    out = np.empty(n, dtype=np.float64)
    out[: min(lookback, n)] = np.nan
    return out


# --------------------------------------------------------------------------- moving averages


@njit(cache=True)
def _sma(values: F64, period: int) -> F64:
    n = values.shape[0]
    lookback = period - 1
    out = _nan_head(n, lookback)
    if n <= lookback:
        return out
    total = 0.0
    for i in range(lookback):
        total += values[i]
    for i in range(lookback, n):
        total += values[i]
        out[i] = total / period
        total -= values[i - lookback]
    return out


def sma(values: F64, period: int) -> F64:
    """Simple moving average: the mean of the last `period` values (TA-Lib SMA)."""
    _check_period("period", period)
    return _sma(values, period)


@njit(cache=True)
def _ema(values: F64, period: int) -> F64:
    n = values.shape[0]
    lookback = period - 1
    out = _nan_head(n, lookback)
    if n <= lookback:
        return out
    k = 2.0 / (period + 1)
    total = 0.0
    for i in range(period):
        total += values[i]
    prev = total / period
    out[lookback] = prev
    for i in range(period, n):
        prev = (values[i] - prev) * k + prev
        out[i] = prev
    return out


def ema(values: F64, period: int) -> F64:
    """Exponential moving average, alpha = 2/(period+1), seeded with the SMA of the first
    `period` values (TA-Lib EMA)."""
    _check_period("period", period)
    return _ema(values, period)


@njit(cache=True)
def _wma(values: F64, period: int) -> F64:
    n = values.shape[0]
    lookback = period - 1
    out = _nan_head(n, lookback)
    if n <= lookback:
        return out
    divider = (period * (period + 1)) >> 1
    # TA-Lib's running form: `weighted` is Σ w_j x_j, `plain` the window's plain sum;
    # moving one bar adds period × new and subtracts the plain sum.
    plain = 0.0
    weighted = 0.0
    for i in range(lookback):
        plain += values[i]
        weighted += values[i] * (i + 1)
    trailing_value = 0.0
    for i in range(lookback, n):
        value = values[i]
        plain += value
        plain -= trailing_value
        weighted += value * period
        trailing_value = values[i - lookback]
        out[i] = weighted / divider
        weighted -= plain
    return out


def wma(values: F64, period: int) -> F64:
    """Linearly weighted moving average, weights 1..period with the newest heaviest (TA-Lib WMA)."""
    _check_period("period", period)
    return _wma(values, period)


# --------------------------------------------------------------------------- oscillators


@njit(cache=True)
def _rsi(close: F64, period: int) -> F64:
    n = close.shape[0]
    out = _nan_head(n, period)
    if n <= period:
        return out
    gain = 0.0
    loss = 0.0
    prev = close[0]
    for i in range(1, period + 1):
        diff = close[i] - prev
        prev = close[i]
        if diff < 0:
            loss -= diff
        else:
            gain += diff
    loss /= period
    gain /= period
    total = gain + loss
    out[period] = 100.0 * (gain / total) if not (-_EPSILON < total < _EPSILON) else 0.0
    keep = period - 1
    for i in range(period + 1, n):
        diff = close[i] - prev
        prev = close[i]
        loss *= keep
        gain *= keep
        if diff < 0:
            loss -= diff
        else:
            gain += diff
        loss /= period
        gain /= period
        total = gain + loss
        out[i] = 100.0 * (gain / total) if not (-_EPSILON < total < _EPSILON) else 0.0
    return out


def rsi(close: F64, period: int) -> F64:
    """Relative strength index, 0-100 (TA-Lib RSI).

    Average gain and loss start as plain means of the first `period` changes, then follow
    Wilder's smoothing `(prev × (period-1) + change) / period`; RSI = 100 × gain / (gain + loss),
    0 when both are (within 1e-14 of) zero.
    """
    _check_period("period", period)
    return _rsi(close, period)


@njit(cache=True)
def _macd(close: F64, fast: int, slow: int, signal: int) -> tuple[F64, F64, F64]:
    n = close.shape[0]
    lookback = slow + signal - 2
    line = _nan_head(n, lookback)
    sig = _nan_head(n, lookback)
    hist = _nan_head(n, lookback)
    if n <= lookback:
        return line, sig, hist
    k_fast = 2.0 / (fast + 1)
    k_slow = 2.0 / (slow + 1)
    k_signal = 2.0 / (signal + 1)
    # TA-Lib seeds both EMAs so that their first value lands on bar slow-1: the fast EMA
    # with the mean of bars slow-fast .. slow-1, not of the first `fast` bars.
    total = 0.0
    for i in range(slow - fast, slow):
        total += close[i]
    fast_ema = total / fast
    total = 0.0
    for i in range(slow):
        total += close[i]
    slow_ema = total / slow
    value = fast_ema - slow_ema
    line_total = value
    for i in range(slow, lookback + 1):
        fast_ema = (close[i] - fast_ema) * k_fast + fast_ema
        slow_ema = (close[i] - slow_ema) * k_slow + slow_ema
        value = fast_ema - slow_ema
        line_total += value
    signal_ema = line_total / signal
    line[lookback] = value
    sig[lookback] = signal_ema
    hist[lookback] = value - signal_ema
    for i in range(lookback + 1, n):
        fast_ema = (close[i] - fast_ema) * k_fast + fast_ema
        slow_ema = (close[i] - slow_ema) * k_slow + slow_ema
        value = fast_ema - slow_ema
        signal_ema = (value - signal_ema) * k_signal + signal_ema
        line[i] = value
        sig[i] = signal_ema
        hist[i] = value - signal_ema
    return line, sig, hist


def macd(close: F64, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """MACD (TA-Lib MACD): line = EMA(fast) - EMA(slow), signal = EMA(line, signal),
    histogram = line - signal; all three start at bar slow + signal - 2."""
    for name, period in (("fast", fast), ("slow", slow), ("signal", signal)):
        _check_period(name, period)
    if slow <= fast:
        raise ValueError(f"slow ({slow}) must be longer than fast ({fast})")
    return Macd(*_macd(close, fast, slow, signal))


@njit(cache=True)
def _extreme_index(values: F64, start: int, end: int, highest: bool) -> int:
    """Index of the last max (highest) / min of values[start..end], ties to the newest."""
    best = start
    for i in range(start + 1, end + 1):
        if (values[i] >= values[best]) if highest else (values[i] <= values[best]):
            best = i
    return best


@njit(cache=True)
def _stochastic(
    high: F64, low: F64, close: F64, k_period: int, smooth: int, d_period: int
) -> tuple[F64, F64]:
    n = close.shape[0]
    lookback = k_period + smooth + d_period - 3
    k_out = _nan_head(n, lookback)
    d_out = _nan_head(n, lookback)
    if n <= lookback:
        return k_out, d_out
    fast_k = np.empty(smooth, dtype=np.float64)  # ring buffers of one window each
    slow_k = np.empty(d_period, dtype=np.float64)
    k_total = 0.0
    d_total = 0.0
    hi_idx = -1
    lo_idx = -1
    for i in range(k_period - 1, n):
        trailing = i - k_period + 1
        if hi_idx < trailing:
            hi_idx = _extreme_index(high, trailing, i, True)
        elif high[i] >= high[hi_idx]:
            hi_idx = i
        if lo_idx < trailing:
            lo_idx = _extreme_index(low, trailing, i, False)
        elif low[i] <= low[lo_idx]:
            lo_idx = i
        diff = (high[hi_idx] - low[lo_idx]) / 100.0
        value = (close[i] - low[lo_idx]) / diff if diff != 0.0 else 0.0
        # %K: running SMA of fast %K over `smooth` bars (TA-Lib's SMA order of operations).
        j = i - (k_period - 1)
        fast_k[j % smooth] = value
        k_total += value
        if j < smooth - 1:
            continue
        k_value = k_total / smooth
        k_total -= fast_k[(j + 1) % smooth]
        m = j - (smooth - 1)
        slow_k[m % d_period] = k_value
        d_total += k_value
        if m < d_period - 1:
            continue
        k_out[i] = k_value
        d_out[i] = d_total / d_period
        d_total -= slow_k[(m + 1) % d_period]
    return k_out, d_out


def stochastic(
    high: F64, low: F64, close: F64, k_period: int = 14, smooth: int = 3, d_period: int = 3
) -> Stochastic:
    """Slow stochastic (TA-Lib STOCH with SMA slow-K and slow-D).

    Fast %K = (close - lowest low) / ((highest high - lowest low) / 100) over `k_period` bars
    (0 when the range is zero); %K = SMA(fast %K, smooth); %D = SMA(%K, d_period).
    """
    for name, period in (("k_period", k_period), ("smooth", smooth), ("d_period", d_period)):
        _check_period(name, period)
    return Stochastic(*_stochastic(high, low, close, k_period, smooth, d_period))


@njit(cache=True)
def _williams_r(high: F64, low: F64, close: F64, period: int) -> F64:
    n = close.shape[0]
    out = _nan_head(n, period - 1)
    hi_idx = -1
    lo_idx = -1
    for i in range(period - 1, n):
        trailing = i - period + 1
        if hi_idx < trailing:
            hi_idx = _extreme_index(high, trailing, i, True)
        elif high[i] >= high[hi_idx]:
            hi_idx = i
        if lo_idx < trailing:
            lo_idx = _extreme_index(low, trailing, i, False)
        elif low[i] <= low[lo_idx]:
            lo_idx = i
        diff = (high[hi_idx] - low[lo_idx]) / -100.0
        out[i] = (high[hi_idx] - close[i]) / diff if diff != 0.0 else 0.0
    return out


def williams_r(high: F64, low: F64, close: F64, period: int) -> F64:
    """Williams %R, -100-0 (TA-Lib WILLR): (highest - close) / ((highest - lowest) / -100)
    over `period` bars; 0 when the range is zero."""
    _check_period("period", period)
    return _williams_r(high, low, close, period)


@njit(cache=True)
def _roc(values: F64, period: int) -> F64:
    n = values.shape[0]
    out = _nan_head(n, period)
    for i in range(period, n):
        before = values[i - period]
        out[i] = ((values[i] / before) - 1.0) * 100.0 if before != 0.0 else 0.0
    return out


def roc(values: F64, period: int) -> F64:
    """Rate of change in percent (TA-Lib ROC): ((value / value `period` bars ago) - 1) × 100;
    0 where the earlier value is 0."""
    _check_period("period", period)
    return _roc(values, period)


@njit(cache=True)
def _cci(high: F64, low: F64, close: F64, period: int) -> F64:
    n = close.shape[0]
    lookback = period - 1
    out = _nan_head(n, lookback)
    if n <= lookback:
        return out
    # TA-Lib sums the window in ring-buffer order (slot = bar mod period), not oldest first;
    # keeping its order keeps the rounding, which matters where the price sits on the mean.
    ring = np.empty(period, dtype=np.float64)
    for i in range(lookback):
        ring[i % period] = (high[i] + low[i] + close[i]) / 3
    for i in range(lookback, n):
        last = (high[i] + low[i] + close[i]) / 3
        ring[i % period] = last
        average = 0.0
        for j in range(period):
            average += ring[j]
        average /= period
        deviation = 0.0
        for j in range(period):
            deviation += abs(ring[j] - average)
        distance = last - average
        if not (-_EPSILON < distance < _EPSILON) and not (-_EPSILON < deviation < _EPSILON):
            out[i] = distance / (0.015 * (deviation / period))
        else:
            out[i] = 0.0
    return out


def cci(high: F64, low: F64, close: F64, period: int) -> F64:
    """Commodity channel index (TA-Lib CCI): (tp - mean(tp)) / (0.015 × mean |tp - mean(tp)|)
    over `period` bars of the typical price tp = (high + low + close) / 3; 0 when either the
    distance or the deviation is within 1e-14 of zero."""
    _check_period("period", period)
    return _cci(high, low, close, period)


# --------------------------------------------------------------------------- volatility


@njit(cache=True, inline="always")
def _true_range(high: float, low: float, prev_close: float) -> float:
    greatest = high - low
    up = abs(prev_close - high)
    if up > greatest:
        greatest = up
    down = abs(prev_close - low)
    if down > greatest:
        greatest = down
    return greatest


@njit(cache=True)
def _atr(high: F64, low: F64, close: F64, period: int) -> F64:
    n = close.shape[0]
    out = _nan_head(n, period)
    if n <= period:
        return out
    if period == 1:
        for i in range(1, n):
            out[i] = _true_range(high[i], low[i], close[i - 1])
        return out
    total = 0.0
    for i in range(1, period + 1):
        total += _true_range(high[i], low[i], close[i - 1])
    prev = total / period
    out[period] = prev
    keep = period - 1
    for i in range(period + 1, n):
        prev *= keep
        prev += _true_range(high[i], low[i], close[i - 1])
        prev /= period
        out[i] = prev
    return out


def atr(high: F64, low: F64, close: F64, period: int) -> F64:
    """Average true range (TA-Lib ATR): the mean of the first `period` true ranges (from bar
    1), then Wilder's smoothing. True range = max(high - low, |high - prev close|,
    |low - prev close|); with period 1 it is the true range itself."""
    _check_period("period", period)
    return _atr(high, low, close, period)


@njit(cache=True)
def _bollinger(close: F64, period: int, width: float) -> tuple[F64, F64, F64]:
    n = close.shape[0]
    lookback = period - 1
    upper = _nan_head(n, lookback)
    middle = _nan_head(n, lookback)
    lower = _nan_head(n, lookback)
    if n <= lookback:
        return upper, middle, lower
    total = 0.0
    for i in range(lookback):
        total += close[i]
    mean = 0.0
    squares = 0.0  # Σ (x - mean)² over the window
    for i in range(lookback, n):
        value = close[i]
        total += value
        previous_mean = mean
        mean = total / period
        start = i - lookback
        if start % period == 0:
            # Re-sum the squared deviations once per window turnover, so rounding from the
            # sliding updates never outlives one window.
            squares = 0.0
            for j in range(start, i + 1):
                deviation = close[j] - mean
                squares += deviation * deviation
        else:
            # Sliding update of Σ (x - mean)² (Welford's, for a window): exact in real
            # arithmetic, and free of mean(x²) - mean²'s cancellation at large prices.
            leaving = close[i - period]
            squares += (value - leaving) * (value - mean + leaving - previous_mean)
        total -= close[start]
        variance = squares / period
        # A deviation within 1e-14 of the mean is rounding, not spread: the bands collapse.
        band = np.sqrt(variance) * width if variance > (_EPSILON * mean) ** 2 else 0.0
        middle[i] = mean
        upper[i] = mean + band
        lower[i] = mean - band
    return upper, middle, lower


def bollinger(close: F64, period: int = 20, width: float = 2.0) -> Bollinger:
    """Bollinger bands (TA-Lib BBANDS, SMA middle): middle ± `width` × the population standard
    deviation of the last `period` values, taken as 0 when it is within 1e-14 of the mean."""
    _check_period("period", period)
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    return Bollinger(*_bollinger(close, period, float(width)))


# --------------------------------------------------------------------------- trend


@njit(cache=True)
def _adx(high: F64, low: F64, close: F64, period: int) -> F64:
    n = close.shape[0]
    lookback = 2 * period - 1
    out = _nan_head(n, lookback)
    if n <= lookback:
        return out
    minus_dm = 0.0
    plus_dm = 0.0
    tr = 0.0
    prev_high = high[0]
    prev_low = low[0]
    prev_close = close[0]
    today = 0
    # First `period - 1` directional movements and true ranges: plain sums.
    for _ in range(period - 1):
        today += 1
        diff_p = high[today] - prev_high
        prev_high = high[today]
        diff_m = prev_low - low[today]
        prev_low = low[today]
        if diff_m > 0 and diff_p < diff_m:
            minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            plus_dm += diff_p
        tr += _true_range(prev_high, prev_low, prev_close)
        prev_close = close[today]
    # Next `period` bars: Wilder-smoothed sums, and the plain mean of their DX seeds the ADX.
    dx_total = 0.0
    for _ in range(period):
        today += 1
        diff_p = high[today] - prev_high
        prev_high = high[today]
        diff_m = prev_low - low[today]
        prev_low = low[today]
        minus_dm -= minus_dm / period
        plus_dm -= plus_dm / period
        if diff_m > 0 and diff_p < diff_m:
            minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            plus_dm += diff_p
        tr = tr - tr / period + _true_range(prev_high, prev_low, prev_close)
        prev_close = close[today]
        if not (-_EPSILON < tr < _EPSILON):
            minus_di = 100.0 * (minus_dm / tr)
            plus_di = 100.0 * (plus_dm / tr)
            di_sum = minus_di + plus_di
            if not (-_EPSILON < di_sum < _EPSILON):
                dx_total += 100.0 * (abs(minus_di - plus_di) / di_sum)
    adx_value = dx_total / period
    out[today] = adx_value
    keep = period - 1
    while today < n - 1:
        today += 1
        diff_p = high[today] - prev_high
        prev_high = high[today]
        diff_m = prev_low - low[today]
        prev_low = low[today]
        minus_dm -= minus_dm / period
        plus_dm -= plus_dm / period
        if diff_m > 0 and diff_p < diff_m:
            minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            plus_dm += diff_p
        tr = tr - tr / period + _true_range(prev_high, prev_low, prev_close)
        prev_close = close[today]
        if not (-_EPSILON < tr < _EPSILON):
            minus_di = 100.0 * (minus_dm / tr)
            plus_di = 100.0 * (plus_dm / tr)
            di_sum = minus_di + plus_di
            if not (-_EPSILON < di_sum < _EPSILON):
                dx = 100.0 * (abs(minus_di - plus_di) / di_sum)
                adx_value = (adx_value * keep + dx) / period
        out[today] = adx_value
    return out


def adx(high: F64, low: F64, close: F64, period: int) -> F64:
    """Average directional index, 0-100 (TA-Lib ADX).

    +DM/-DM (the larger of the up and down moves, if positive) and the true range are summed
    over the first `period - 1` moves, then Wilder-smoothed (`s - s/period + new`);
    DX = 100 × |+DI - -DI| / (+DI + -DI) with DI = 100 × DM / TR. The ADX starts as the mean
    of the first `period` DX values and is then Wilder-smoothed; first value at bar
    2 × period - 1.
    """
    _check_period("period", period)
    return _adx(high, low, close, period)


@njit(cache=True)
def _rolling_extreme(values: F64, period: int, highest: bool) -> F64:
    n = values.shape[0]
    out = _nan_head(n, period - 1)
    best = -1
    for i in range(period - 1, n):
        trailing = i - period + 1
        if best < trailing:
            best = _extreme_index(values, trailing, i, highest)
        elif (values[i] >= values[best]) if highest else (values[i] <= values[best]):
            best = i
        out[i] = values[best]
    return out


def highest(values: F64, period: int) -> F64:
    """Highest value over the last `period` bars (TA-Lib MAX)."""
    _check_period("period", period)
    return _rolling_extreme(values, period, True)


def lowest(values: F64, period: int) -> F64:
    """Lowest value over the last `period` bars (TA-Lib MIN)."""
    _check_period("period", period)
    return _rolling_extreme(values, period, False)


# --------------------------------------------------------------------------- volume


@njit(cache=True)
def _obv(close: F64, volume: F64) -> F64:
    n = close.shape[0]
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    total = volume[0]
    prev = close[0]
    for i in range(n):
        value = close[i]
        if value > prev:
            total += volume[i]
        elif value < prev:
            total -= volume[i]
        out[i] = total
        prev = value
    return out


def obv(close: F64, volume: F64) -> F64:
    """On-balance volume (TA-Lib OBV): starts at the first bar's volume, then adds the volume
    of each bar that closes higher and subtracts that of each bar that closes lower. Its level
    depends on where the series starts; only its changes are comparable."""
    return _obv(close, volume)


@njit(cache=True)
def _mfi(high: F64, low: F64, close: F64, volume: F64, period: int) -> F64:
    n = close.shape[0]
    out = _nan_head(n, period)
    if n <= period:
        return out
    positive = np.zeros(period, dtype=np.float64)  # ring buffers of the window's money flows
    negative = np.zeros(period, dtype=np.float64)
    pos_total = 0.0
    neg_total = 0.0
    idle = 0  # consecutive bars that put no money flow into the window
    prev = (high[0] + low[0] + close[0]) / 3.0
    for i in range(1, n):
        slot = (i - 1) % period
        if i > period:
            pos_total -= positive[slot]
            neg_total -= negative[slot]
        typical = (high[i] + low[i] + close[i]) / 3.0
        change = typical - prev
        scale = abs(typical) + abs(prev)
        prev = typical
        # A move within TA-Lib's scaled dead zone (1e-14 of the prices) carries no flow.
        flow = 0.0 if abs(change) <= _EPSILON * scale else typical * volume[i]
        pos_flow = 0.0 if change < 0.0 else flow
        neg_flow = flow if change < 0.0 else 0.0
        positive[slot] = pos_flow
        negative[slot] = neg_flow
        pos_total += pos_flow
        neg_total += neg_flow
        # A whole window without flow: the totals are exactly zero, not rounding residue.
        idle = idle + 1 if flow == 0.0 else 0
        if idle >= period:
            idle = period
            pos_total = 0.0
            neg_total = 0.0
        if i >= period:
            total = pos_total + neg_total
            clamped = 0.0 if pos_total < 0.0 else min(pos_total, total)
            out[i] = 100.0 * (clamped / total) if total > 0.0 else 0.0
    return out


def mfi(high: F64, low: F64, close: F64, volume: F64, period: int) -> F64:
    """Money flow index, 0-100 (TA-Lib MFI): 100 × positive / (positive + negative) money flow
    over the last `period` bars, where a bar's flow is typical price × volume, positive when
    the typical price rose (moves within 1e-14 of the price count as none). 0 when the window
    holds no flow; rounding residue is clamped so the value stays within 0-100."""
    _check_period("period", period)
    return _mfi(high, low, close, volume, period)


@njit(cache=True)
def _vwap(high: F64, low: F64, close: F64, volume: F64, period: int) -> F64:
    n = close.shape[0]
    out = _nan_head(n, period - 1)
    # Each window is summed afresh (O(n × period)): running totals would leave rounding
    # residue after a large bar leaves, and a zero-volume window must give exactly NaN.
    for i in range(period - 1, n):
        weighted = 0.0
        traded = 0.0
        for j in range(i - period + 1, i + 1):
            weighted += (high[j] + low[j] + close[j]) / 3.0 * volume[j]
            traded += volume[j]
        out[i] = weighted / traded if traded > 0.0 else np.nan
    return out


def vwap(high: F64, low: F64, close: F64, volume: F64, period: int) -> F64:
    """Rolling volume-weighted average price: Σ typical price × volume / Σ volume over the last
    `period` bars, typical price = (high + low + close) / 3; NaN where no volume traded."""
    _check_period("period", period)
    return _vwap(high, low, close, volume, period)


def volume_sma(volume: F64, period: int) -> F64:
    """Simple moving average of volume (the SMA kernel over the volume column)."""
    return sma(volume, period)

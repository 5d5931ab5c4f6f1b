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
* Bollinger bands use the population standard deviation from deviations against a shift
  near the window (TA-Lib's VAR since its #118), not mean(x²) - mean², which cancels.

Each kernel is a single pass with its state in scalars or a ring buffer of one window; the
only allocations are the outputs. Inputs must be finite (`CandleFrame.validate` ensures it)
and periods at least 1 (TA-Lib refuses some period-1 cases; these kernels return the
natural degenerate value: an SMA of 1 is the input, and so on).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

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


def _empty(like: F64) -> F64:
    # Outputs are allocated here, by numpy, and filled by the kernels: numba's own allocator
    # costs a fresh page fault per page on every call for arrays this size (~4x slower).
    return np.empty(like.shape[0], dtype=np.float64)


@njit(cache=True, inline="always")
def _nan_head(out: F64, lookback: int) -> F64:
    """`out` with its first `lookback` entries set to NaN (the warm-up)."""
    out[: min(lookback, out.shape[0])] = np.nan
    return out


def _fma_intrinsic(typingctx: Any, a: Any, b: Any, c: Any) -> tuple[Any, Any]:
    signature = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        double = ir.DoubleType()
        function_type = ir.FunctionType(double, [double, double, double])
        return builder.call(builder.module.declare_intrinsic("llvm.fma", [double], function_type), args)

    return signature, codegen


_fma: Any = intrinsic(_fma_intrinsic)
"""fma(a, b, c) = a × b + c rounded once (LLVM's fma: the FMA instruction, or libm's fma where
the CPU lacks one), usable inside numba kernels."""


# --------------------------------------------------------------------------- moving averages


@njit(cache=True)
def _sma(values: F64, period: int, out: F64) -> F64:
    n = values.shape[0]
    lookback = period - 1
    _nan_head(out, lookback)
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
    return _sma(values, period, _empty(values))


@njit(cache=True)
def _ema(values: F64, period: int, out: F64) -> F64:
    n = values.shape[0]
    lookback = period - 1
    _nan_head(out, lookback)
    if n <= lookback:
        return out
    if period == 1:
        out[:] = values  # no smoothing; the recursion would not return x exactly
        return out
    k = 2.0 / (period + 1)
    total = 0.0
    for i in range(period):
        total += values[i]
    prev = total / period
    out[lookback] = prev
    beta = 1.0 - k
    for i in range(period, n):
        # prev + k (x - prev) as prev × (1-k) + k x in one fused step (the chain is the cost);
        # it rounds differently from TA-Lib's form by ~1e-16 relative.
        prev = _fma(prev, beta, k * values[i])
        out[i] = prev
    return out


def ema(values: F64, period: int) -> F64:
    """Exponential moving average, alpha = 2/(period+1), seeded with the SMA of the first
    `period` values (TA-Lib EMA)."""
    _check_period("period", period)
    return _ema(values, period, _empty(values))


@njit(cache=True)
def _wma(values: F64, period: int, out: F64) -> F64:
    n = values.shape[0]
    lookback = period - 1
    _nan_head(out, lookback)
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
    return _wma(values, period, _empty(values))


# --------------------------------------------------------------------------- oscillators


@njit(cache=True)
def _rsi(close: F64, period: int, out: F64) -> F64:
    n = close.shape[0]
    _nan_head(out, period)
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
    out[period] = 100.0 * (gain / total) if total != 0.0 else 0.0
    # Wilder's step (prev × (n-1) + x) / n as one fused multiply-add, prev × (n-1)/n + x/n:
    # the smoothing is a chain through every bar, so its latency is the kernel's speed.
    # It rounds differently from TA-Lib's three operations, by ~1e-16 relative.
    inv = 1.0 / period
    beta = (period - 1) * inv
    for i in range(period + 1, n):
        diff = close[i] - prev
        prev = close[i]
        gain = _fma(gain, beta, max(diff, 0.0) * inv)
        loss = _fma(loss, beta, max(-diff, 0.0) * inv)
        total = gain + loss
        out[i] = 100.0 * (gain / total) if total != 0.0 else 0.0
    return out


def rsi(close: F64, period: int) -> F64:
    """Relative strength index, 0-100 (TA-Lib RSI).

    Average gain and loss start as plain means of the first `period` changes, then follow
    Wilder's smoothing `(prev × (period-1) + change) / period`; RSI = 100 × gain / (gain + loss),
    0 when both are zero (no change at all yet).
    """
    _check_period("period", period)
    return _rsi(close, period, _empty(close))


@njit(cache=True)
def _macd(
    close: F64, fast: int, slow: int, signal: int, line: F64, sig: F64, hist: F64
) -> tuple[F64, F64, F64]:
    n = close.shape[0]
    lookback = slow + signal - 2
    _nan_head(line, lookback)
    _nan_head(sig, lookback)
    _nan_head(hist, lookback)
    if n <= lookback:
        return line, sig, hist
    k_fast = 2.0 / (fast + 1)
    k_slow = 2.0 / (slow + 1)
    k_signal = 2.0 / (signal + 1)
    # Both price EMAs are seeded with plain means whose windows end on bar slow-1: the fast
    # EMA with the mean of bars slow-fast .. slow-1, not of the first `fast` bars (TA-Lib).
    slow_total = 0.0
    for i in range(slow - fast):
        slow_total += close[i]
    fast_total = 0.0
    for i in range(slow - fast, slow):
        fast_total += close[i]
        slow_total += close[i]
    fast_ema = fast_total / fast
    slow_ema = slow_total / slow
    value = fast_ema - slow_ema
    signal_total = 0.0
    signal_total += value  # the signal EMA is seeded with the mean of the first line values
    for i in range(slow, lookback + 1):
        fast_ema = _fma(close[i] - fast_ema, k_fast, fast_ema)
        slow_ema = _fma(close[i] - slow_ema, k_slow, slow_ema)
        value = fast_ema - slow_ema
        signal_total += value
    signal_ema = signal_total / signal
    line[lookback] = value
    sig[lookback] = signal_ema
    hist[lookback] = value - signal_ema
    for i in range(lookback + 1, n):
        fast_ema = _fma(close[i] - fast_ema, k_fast, fast_ema)
        slow_ema = _fma(close[i] - slow_ema, k_slow, slow_ema)
        value = fast_ema - slow_ema
        # A signal period of 1 is no smoothing: the signal is the line itself.
        signal_ema = value if signal == 1 else _fma(value - signal_ema, k_signal, signal_ema)
        line[i] = value
        sig[i] = signal_ema
        hist[i] = value - signal_ema
    return line, sig, hist


def macd(close: F64, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """MACD (TA-Lib MACD): line = EMA(fast) - EMA(slow), signal = EMA(line, signal),
    histogram = line - signal; all three start at bar slow + signal - 2.

    The EMAs step as `fma(x - prev, k, prev)` (TA-Lib's MACD, one rounding per step), so the
    line is not bit-for-bit `ema(fast) - ema(slow)`, whose steps round twice; bit-exact
    matters here because the line and histogram cross zero, where relative error explodes.
    """
    for name, period in (("fast", fast), ("slow", slow), ("signal", signal)):
        _check_period(name, period)
    if slow <= fast:
        raise ValueError(f"slow ({slow}) must be longer than fast ({fast})")
    return Macd(*_macd(close, fast, slow, signal, _empty(close), _empty(close), _empty(close)))


@njit(cache=True)
def _max_index(values: F64, start: int, end: int) -> int:
    """Index of the (newest) largest of values[start..end]."""
    best = start
    for i in range(start + 1, end + 1):
        if values[i] >= values[best]:
            best = i
    return best


@njit(cache=True)
def _min_index(values: F64, start: int, end: int) -> int:
    """Index of the (newest) smallest of values[start..end]."""
    best = start
    for i in range(start + 1, end + 1):
        if values[i] <= values[best]:
            best = i
    return best


@njit(cache=True)
def _stochastic(
    high: F64, low: F64, close: F64, k_period: int, smooth: int, d_period: int, k_out: F64, d_out: F64
) -> tuple[F64, F64]:
    n = close.shape[0]
    lookback = k_period + smooth + d_period - 3
    _nan_head(k_out, lookback)
    _nan_head(d_out, lookback)
    if n <= lookback:
        return k_out, d_out
    fast_k = np.empty(smooth, dtype=np.float64)  # ring buffers of one window each
    slow_k = np.empty(d_period, dtype=np.float64)
    k_slot = 0  # the ring slot written next = the window's oldest value once the ring is full
    d_slot = 0
    k_total = 0.0
    d_total = 0.0
    hi_idx = -1
    lo_idx = -1
    for i in range(k_period - 1, n):
        # Highest high / lowest low of the window: rescan only when the extreme leaves it.
        trailing = i - k_period + 1
        if hi_idx < trailing:
            hi_idx = _max_index(high, trailing, i)
        elif high[i] >= high[hi_idx]:
            hi_idx = i
        if lo_idx < trailing:
            lo_idx = _min_index(low, trailing, i)
        elif low[i] <= low[lo_idx]:
            lo_idx = i
        spread = high[hi_idx] - low[lo_idx]
        value = (close[i] - low[lo_idx]) / spread * 100.0 if spread != 0.0 else 0.0
        # %K and %D: running sums of one window each, added then read then trimmed (TA-Lib's
        # SMA order, so flat stretches leave the same rounding residue).
        fast_k[k_slot] = value
        k_slot = k_slot + 1 if k_slot + 1 < smooth else 0
        k_total += value
        if i < k_period + smooth - 2:
            continue
        k_value = k_total / smooth  # divided, not scaled: the residue must match TA-Lib's
        k_total -= fast_k[k_slot]
        slow_k[d_slot] = k_value
        d_slot = d_slot + 1 if d_slot + 1 < d_period else 0
        d_total += k_value
        if i < lookback:
            continue
        k_out[i] = k_value
        d_out[i] = d_total / d_period
        d_total -= slow_k[d_slot]
    return k_out, d_out


def stochastic(
    high: F64, low: F64, close: F64, k_period: int = 14, smooth: int = 3, d_period: int = 3
) -> Stochastic:
    """Slow stochastic (TA-Lib STOCH with SMA slow-K and slow-D).

    Fast %K = (close - lowest low) / (highest high - lowest low) × 100 over `k_period` bars
    (0 when the range is zero); %K = SMA(fast %K, smooth); %D = SMA(%K, d_period).
    """
    for name, period in (("k_period", k_period), ("smooth", smooth), ("d_period", d_period)):
        _check_period(name, period)
    return Stochastic(
        *_stochastic(high, low, close, k_period, smooth, d_period, _empty(close), _empty(close))
    )


@njit(cache=True)
def _williams_r(high: F64, low: F64, close: F64, period: int, out: F64) -> F64:
    n = close.shape[0]
    _nan_head(out, period - 1)
    hi_idx = -1
    lo_idx = -1
    for i in range(period - 1, n):
        trailing = i - period + 1
        if hi_idx < trailing:
            hi_idx = _max_index(high, trailing, i)
        elif high[i] >= high[hi_idx]:
            hi_idx = i
        if lo_idx < trailing:
            lo_idx = _min_index(low, trailing, i)
        elif low[i] <= low[lo_idx]:
            lo_idx = i
        spread = high[hi_idx] - low[lo_idx]
        out[i] = (high[hi_idx] - close[i]) / spread * -100.0 if spread != 0.0 else 0.0
    return out


def williams_r(high: F64, low: F64, close: F64, period: int) -> F64:
    """Williams %R, -100-0 (TA-Lib WILLR): (highest - close) / (highest - lowest) × -100 over
    `period` bars; 0 when the range is zero."""
    _check_period("period", period)
    return _williams_r(high, low, close, period, _empty(close))


@njit(cache=True)
def _roc(values: F64, period: int, out: F64) -> F64:
    n = values.shape[0]
    _nan_head(out, period)
    for i in range(period, n):
        before = values[i - period]
        out[i] = ((values[i] / before) - 1.0) * 100.0 if before != 0.0 else 0.0
    return out


def roc(values: F64, period: int) -> F64:
    """Rate of change in percent (TA-Lib ROC): ((value / value `period` bars ago) - 1) × 100;
    0 where the earlier value is 0."""
    _check_period("period", period)
    return _roc(values, period, _empty(values))


@njit(cache=True)
def _cci(high: F64, low: F64, close: F64, period: int, out: F64) -> F64:
    n = close.shape[0]
    lookback = period - 1
    _nan_head(out, lookback)
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
        magnitude = 0.0
        for j in range(period):
            average += ring[j]
            magnitude += abs(ring[j])
        average /= period
        deviation = 0.0
        for j in range(period):
            deviation += abs(ring[j] - average)
        distance = last - average
        # TA-Lib's scaled zero tests: a distance or spread within 1e-14 of the prices is rounding.
        if abs(distance) > _EPSILON * abs(last) and deviation > _EPSILON * magnitude:
            out[i] = distance / (0.015 * (deviation / period))
        else:
            out[i] = 0.0
    return out


def cci(high: F64, low: F64, close: F64, period: int) -> F64:
    """Commodity channel index (TA-Lib CCI): (tp - mean(tp)) / (0.015 × mean |tp - mean(tp)|)
    over `period` bars of the typical price tp = (high + low + close) / 3; 0 when the distance
    or the deviation is within 1e-14 of the prices (rounding, not movement)."""
    _check_period("period", period)
    return _cci(high, low, close, period, _empty(close))


# --------------------------------------------------------------------------- volatility


@njit(cache=True, inline="always")
def _true_range(high: float, low: float, prev_close: float) -> float:
    """max(high - low, |high - prev close|, |low - prev close|), computed as the span from
    min(low, prev close) to max(high, prev close): the same single subtraction in every case,
    so bit-for-bit TA-Lib's value, in three operations instead of seven."""
    return max(high, prev_close) - min(low, prev_close)


@njit(cache=True)
def _atr(high: F64, low: F64, close: F64, period: int, out: F64) -> F64:
    n = close.shape[0]
    _nan_head(out, period)
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
    inv = 1.0 / period
    beta = (period - 1) * inv  # one fused step per bar, as in `_rsi`
    for i in range(period + 1, n):
        prev = _fma(prev, beta, _true_range(high[i], low[i], close[i - 1]) * inv)
        out[i] = prev
    return out


def atr(high: F64, low: F64, close: F64, period: int) -> F64:
    """Average true range (TA-Lib ATR): the mean of the first `period` true ranges (from bar
    1), then Wilder's smoothing. True range = max(high - low, |high - prev close|,
    |low - prev close|); with period 1 it is the true range itself."""
    _check_period("period", period)
    return _atr(high, low, close, period, _empty(close))


@njit(cache=True, inline="always")
def _shifted_sums(values: F64, start: int, end: int, shift: float) -> tuple[float, float]:
    """Σ (x - shift) and Σ (x - shift)² over values[start..end]."""
    first = 0.0
    second = 0.0
    for j in range(start, end + 1):
        deviation = values[j] - shift
        first += deviation
        second += deviation * deviation
    return first, second


@njit(cache=True)
def _bollinger(
    close: F64, period: int, width: float, upper: F64, middle: F64, lower: F64
) -> tuple[F64, F64, F64]:
    n = close.shape[0]
    lookback = period - 1
    _nan_head(upper, lookback)
    _nan_head(middle, lookback)
    _nan_head(lower, lookback)
    if n <= lookback:
        return upper, middle, lower
    inv = 1.0 / period
    total = 0.0  # the middle band: TA-Lib's running-sum SMA
    for i in range(lookback):
        total += close[i]
    # The variance is TA-Lib's VAR (its #118 and #243): running sums of deviations from a
    # shift near the window, E[d²] - E[d]², rebuilt by a two-pass over the window (shift =
    # the window mean) when cancellation threatens: the variance is below 1e-6 of the mean
    # square it comes from, or the value that just left dwarfs what remains (an outlier's
    # rounding stays behind), or 32 windows have passed (drift).
    shift = close[0]
    first, second = _shifted_sums(close, 0, lookback - 1, shift)
    until_rebuild = 32 * period
    for i in range(lookback, n):
        value = close[i]
        total += value
        mean = total / period
        total -= close[i - lookback]
        deviation = value - shift
        first += deviation
        second += deviation * deviation
        d_mean = first * inv
        variance = second * inv - d_mean * d_mean
        deviation = close[i - lookback] - shift
        first -= deviation
        leaving = deviation * deviation
        second -= leaving
        until_rebuild -= 1
        if variance < 1e-6 * (second * inv) or leaving > 1e6 * second or until_rebuild <= 0:
            until_rebuild = 32 * period
            start = i - lookback
            window_total = 0.0
            for j in range(start, i + 1):
                window_total += close[j]
            shift = window_total * inv
            first, second = _shifted_sums(close, start, i, shift)
            d_mean = first * inv
            variance = second * inv - d_mean * d_mean
            # What is left below 1e-12 of the mean square is the rounding of the mean itself.
            if variance < 1e-12 * (second * inv):
                variance = 0.0
            deviation = close[start] - shift
            first -= deviation
            second -= deviation * deviation
        band = np.sqrt(variance) * width
        middle[i] = mean
        upper[i] = mean + band
        lower[i] = mean - band
    return upper, middle, lower


def bollinger(close: F64, period: int = 20, width: float = 2.0) -> Bollinger:
    """Bollinger bands (TA-Lib BBANDS, SMA middle): middle ± `width` × the population standard
    deviation of the last `period` values (TA-Lib's cancellation-free VAR: 0 only for a window
    flat to within rounding)."""
    _check_period("period", period)
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    return Bollinger(*_bollinger(close, period, float(width), _empty(close), _empty(close), _empty(close)))


# --------------------------------------------------------------------------- trend


@njit(cache=True)
def _adx(high: F64, low: F64, close: F64, period: int, out: F64) -> F64:
    n = close.shape[0]
    lookback = 2 * period - 1
    _nan_head(out, lookback)
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
        if tr != 0.0:
            minus_di = 100.0 * (minus_dm / tr)
            plus_di = 100.0 * (plus_dm / tr)
            di_sum = minus_di + plus_di
            if di_sum != 0.0:
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
        if tr != 0.0:
            minus_di = 100.0 * (minus_dm / tr)
            plus_di = 100.0 * (plus_dm / tr)
            di_sum = minus_di + plus_di
            if di_sum != 0.0:
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
    return _adx(high, low, close, period, _empty(close))


@njit(cache=True)
def _rolling_extreme(values: F64, period: int, highest: bool, out: F64) -> F64:
    n = values.shape[0]
    _nan_head(out, period - 1)
    best = -1
    for i in range(period - 1, n):
        trailing = i - period + 1
        if best < trailing:
            best = _max_index(values, trailing, i) if highest else _min_index(values, trailing, i)
        elif (values[i] >= values[best]) if highest else (values[i] <= values[best]):
            best = i
        out[i] = values[best]
    return out


def highest(values: F64, period: int) -> F64:
    """Highest value over the last `period` bars (TA-Lib MAX)."""
    _check_period("period", period)
    return _rolling_extreme(values, period, True, _empty(values))


def lowest(values: F64, period: int) -> F64:
    """Lowest value over the last `period` bars (TA-Lib MIN)."""
    _check_period("period", period)
    return _rolling_extreme(values, period, False, _empty(values))


# --------------------------------------------------------------------------- volume


@njit(cache=True)
def _obv(close: F64, volume: F64, out: F64) -> F64:
    n = close.shape[0]
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
    return _obv(close, volume, _empty(close))


@njit(cache=True)
def _mfi(high: F64, low: F64, close: F64, volume: F64, period: int, out: F64) -> F64:
    n = close.shape[0]
    _nan_head(out, period)
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
    return _mfi(high, low, close, volume, period, _empty(close))


@njit(cache=True)
def _window_sums(values: F64, period: int, out: F64) -> F64:
    """Σ of the last `period` values at every bar (NaN before), for non-negative values.

    A running total, re-summed from the window whenever it has fallen below 1e-3 of its
    largest value since the last re-sum (a big value left: the total holds its rounding) and
    at least every 32 windows, so the relative error stays near machine precision and a
    window of zeros sums to exactly 0.
    """
    n = values.shape[0]
    lookback = period - 1
    _nan_head(out, lookback)
    total = 0.0
    for i in range(min(lookback, n)):
        total += values[i]
    peak = total
    until_rebuild = 32 * period
    for i in range(lookback, n):
        total += values[i]
        peak = max(peak, total)
        until_rebuild -= 1
        if total < 1e-3 * peak or until_rebuild <= 0:
            until_rebuild = 32 * period
            total = 0.0
            for j in range(i - lookback, i + 1):
                total += values[j]
            peak = total
        out[i] = total
        total -= values[i - lookback]
    return out


def vwap(high: F64, low: F64, close: F64, volume: F64, period: int) -> F64:
    """Rolling volume-weighted average price: Σ typical price × volume / Σ volume over the last
    `period` bars, typical price = (high + low + close) / 3; NaN where no volume traded."""
    _check_period("period", period)
    traded = _window_sums(volume, period, _empty(volume))
    weighted = _window_sums((high + low + close) / 3.0 * volume, period, _empty(volume))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(traded > 0.0, weighted / traded, np.nan)


def volume_sma(volume: F64, period: int) -> F64:
    """Simple moving average of volume: the window's sum / `period` (re-summed where a running
    total would keep rounding, so a window without trades averages exactly 0)."""
    _check_period("period", period)
    return _window_sums(volume, period, _empty(volume)) / period

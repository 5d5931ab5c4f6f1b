"""Protective exits of an open position — stop loss, take-profit ladder with partial exits,
breakeven after the first target, trailing stop — in ONE place.

The backtester runs these kernels along each candle's path (`tekoa.execution.fills`), its
vectorised fast path calls the same kernels from compiled code, and the live position manager
calls `check_trade` on every trade of the market stream. So a stop fires at the same price in
a backtest, on paper and live.

A position's protection is a small float64 vector (layout below) while prices stream through
it, and a `ProtectionState` (Decimal, JSON) when it is stored or handed to `decide`.

**Semantics** (for a long; a short mirrors every comparison):

* `arm` resolves a `ProtectionSpec` at the entry's fill price: a stop at a price, a distance
  or a percentage below the fill, or a trailing stop `trailing_pct` below the best price since
  entry (optionally only once that best price is `activation_pct` above the fill); targets at
  a percentage above the fill, at R multiples of the initial stop distance, or at a price.
* `on_price` moves the market to a price, either continuously from the previous price or by a
  jump (a trade, an open). Targets not yet hit that the price reaches are hit nearest first,
  each closing its fraction of the entry quantity; with `breakeven_after_first_target` the
  first one lifts the stop to the entry price. Then the best price (anchor) follows the price,
  and the stop in force — the higher of the fixed stop and the trailing stop, once active —
  triggers when the price is at or below it, closing everything left. A continuous move fills
  a trigger at its level, a jump at the price jumped to; the fill model adds slippage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

from tekoa.domain.candles import decimal_from_float
from tekoa.domain.orders import ProtectionSpec, StopSpec, TargetSpec
from tekoa.domain.trading import ArmedTarget, PositionSide, ProtectionState
from tekoa.execution.fills import candle_path

F64 = npt.NDArray[np.float64]

MAX_TARGETS = 10
# Vector layout.
DIR = 0  # +1 long, -1 short
ENTRY = 1  # fill price of the entry (the breakeven level)
STOP = 2  # fixed stop price, NaN = none
TRAIL = 3  # trailing distance as a fraction, NaN = no trailing stop
ACTIVATION = 4  # best price from which trailing starts, NaN = from the entry
ANCHOR = 5  # best price since entry
BREAKEVEN = 6  # 1.0: move the stop to the entry once the first target is hit
ACTIVE = 7  # 1.0 while the position is open and protected
N_TARGETS = 8
TARGETS = 9  # MAX_TARGETS x (price, size fraction, hit)
SIZE = TARGETS + 3 * MAX_TARGETS

# Spec codes.
STOP_NONE = 0
STOP_PRICE = 1
STOP_DISTANCE = 2
STOP_PERCENT = 3
STOP_TRAILING = 4
TARGET_PERCENT = 1
TARGET_R = 2
TARGET_PRICE = 3

# What `on_price` reports as the kind of an exit: the stop, or target k (1-based).
EXIT_STOP = 0

_STOP_CODES = {"price": STOP_PRICE, "distance": STOP_DISTANCE, "percent": STOP_PERCENT}
_TARGET_CODES = {"percent": TARGET_PERCENT, "r_multiple": TARGET_R, "price": TARGET_PRICE}


@njit(cache=True)
def arm_kernel(
    out: F64,
    direction: float,
    entry: float,
    stop_kind: int,
    stop_value: float,
    activation_pct: float,
    target_kinds: npt.NDArray[np.int64],
    target_values: F64,
    target_fractions: F64,
    breakeven: bool,
) -> None:
    """Fill `out` with the protection of a position entered at `entry` (see the module doc)."""
    out[:] = math.nan
    out[DIR] = direction
    out[ENTRY] = entry
    out[ANCHOR] = entry
    out[BREAKEVEN] = 1.0 if breakeven else 0.0
    out[ACTIVE] = 1.0
    if stop_kind == STOP_PRICE:
        out[STOP] = stop_value
    elif stop_kind == STOP_DISTANCE:
        out[STOP] = entry - direction * stop_value
    elif stop_kind == STOP_PERCENT:
        out[STOP] = entry * (1.0 - direction * stop_value / 100.0)
    elif stop_kind == STOP_TRAILING:
        out[TRAIL] = stop_value / 100.0
        if not math.isnan(activation_pct):
            out[ACTIVATION] = entry * (1.0 + direction * activation_pct / 100.0)
    risk = direction * (entry - out[STOP])
    count = min(target_kinds.shape[0], MAX_TARGETS)
    out[N_TARGETS] = count
    for k in range(count):
        kind = target_kinds[k]
        value = target_values[k]
        if kind == TARGET_PERCENT:
            price = entry * (1.0 + direction * value / 100.0)
        elif kind == TARGET_R:
            price = entry + direction * value * risk
        else:
            price = value
        if not price > 0.0:
            price = math.nan  # a short's target at or below zero can never be reached
        out[TARGETS + 3 * k] = price
        out[TARGETS + 3 * k + 1] = target_fractions[k]
        out[TARGETS + 3 * k + 2] = 0.0


@njit(cache=True)
def stop_level(state: F64) -> float:
    """The stop in force: the tighter of the fixed stop and the active trailing stop; NaN if none."""
    direction = state[DIR]
    stop = state[STOP]
    trail = state[TRAIL]
    if not math.isnan(trail):
        activation = state[ACTIVATION]
        if math.isnan(activation) or direction * (state[ANCHOR] - activation) >= 0.0:
            trailing = state[ANCHOR] * (1.0 - direction * trail)
            if math.isnan(stop) or direction * (trailing - stop) > 0.0:
                stop = trailing
    return float(stop)


@njit(cache=True)
def on_price(
    state: F64, price: float, continuous: bool, kinds: npt.NDArray[np.int64], refs: F64, fractions: F64
) -> int:
    """Move the market to `price`; write the exits it triggers in order and return how many:
    kind (`EXIT_STOP`, or k for target k), reference price, and fraction of the entry quantity
    (a stop closes the rest). A stop deactivates the protection."""
    if state[ACTIVE] == 0.0:
        return 0
    direction = state[DIR]
    written = 0
    count = int(state[N_TARGETS])
    for k in range(count):
        base = TARGETS + 3 * k
        if state[base + 2] != 0.0:
            continue
        level = state[base]
        if direction * (price - level) >= 0.0:
            state[base + 2] = 1.0
            kinds[written] = k + 1
            refs[written] = level if continuous else price
            fractions[written] = state[base + 1]
            written += 1
            if state[BREAKEVEN] != 0.0:
                entry = state[ENTRY]
                if math.isnan(state[STOP]) or direction * (entry - state[STOP]) > 0.0:
                    state[STOP] = entry
    if direction * (price - state[ANCHOR]) > 0.0:
        state[ANCHOR] = price
    stop = stop_level(state)
    if not math.isnan(stop) and direction * (price - stop) <= 0.0:
        kinds[written] = EXIT_STOP
        refs[written] = stop if continuous else price
        fractions[written] = 1.0
        written += 1
        state[ACTIVE] = 0.0
    return written


@njit(cache=True)
def next_trigger_bar(state: F64, high: F64, low: F64, start: int, end: int) -> int:
    """The first bar in [start, end) whose range could trigger an exit (`end` if none), with the
    anchor advanced over the bars before it. Conservative: a bar it returns may trigger nothing
    (the caller then runs its path); a bar it skips triggers nothing."""
    if state[ACTIVE] == 0.0:
        return end
    direction = state[DIR]
    nearest_target = math.inf
    for k in range(int(state[N_TARGETS])):
        base = TARGETS + 3 * k
        if state[base + 2] == 0.0 and not math.isnan(state[base]):
            nearest_target = min(nearest_target, direction * state[base])
    trailing = not math.isnan(state[TRAIL])
    if nearest_target == math.inf and not trailing and math.isnan(state[STOP]):
        for bar in range(start, end):  # nothing can trigger: only the best price moves
            favourable = high[bar] if direction > 0 else low[bar]
            if direction * (favourable - state[ANCHOR]) > 0.0:
                state[ANCHOR] = favourable
        return end
    for bar in range(start, end):
        favourable = high[bar] if direction > 0 else low[bar]
        adverse = low[bar] if direction > 0 else high[bar]
        if direction * favourable >= nearest_target:
            return bar
        saved = state[ANCHOR]
        if trailing and direction * (favourable - saved) > 0.0:
            state[ANCHOR] = favourable  # the best the anchor can be during this bar
        stop = stop_level(state)
        state[ANCHOR] = saved
        if not math.isnan(stop) and direction * (adverse - stop) <= 0.0:
            return bar
        if direction * (favourable - state[ANCHOR]) > 0.0:
            state[ANCHOR] = favourable
    return end


@njit(cache=True)
def on_candle(
    state: F64,
    open_: float,
    high: float,
    low: float,
    close: float,
    kinds: npt.NDArray[np.int64],
    refs: F64,
    fractions: F64,
    points: npt.NDArray[np.int64],
) -> int:
    """Run a whole candle's path (`tekoa.execution.fills.candle_path`) through the protection;
    like `on_price`, plus the path point (0-3) of each exit in `points`."""
    p0, p1, p2, p3 = candle_path(open_, high, low, close)
    written = 0
    for index in range(4):
        price = p0 if index == 0 else p1 if index == 1 else p2 if index == 2 else p3
        got = on_price(state, price, index > 0, kinds[written:], refs[written:], fractions[written:])
        for k in range(written, written + got):
            points[k] = index
        written += got
    return written


# --------------------------------------------------------------------------- Python edge


def stop_arrays(stop: StopSpec | None) -> tuple[int, float, float]:
    """A stop spec as the kernel's (kind, value, activation percent; NaN where unused)."""
    if stop is None:
        return STOP_NONE, math.nan, math.nan
    if stop.kind == "trailing_percent":
        activation = math.nan if stop.activation_pct is None else float(stop.activation_pct)
        return STOP_TRAILING, float(stop.value), activation
    return _STOP_CODES[stop.kind], float(stop.value), math.nan


def target_arrays(targets: Sequence[TargetSpec]) -> tuple[npt.NDArray[np.int64], F64, F64]:
    """Target specs as the kernel's (kinds, values, size fractions)."""
    kinds = np.array([_TARGET_CODES[t.kind] for t in targets], dtype=np.int64)
    values = np.array([float(t.value) for t in targets], dtype=np.float64)
    fractions = np.array([float(t.size_fraction) for t in targets], dtype=np.float64)
    return kinds, values, fractions


def spec_arrays(spec: ProtectionSpec) -> tuple[int, float, float, npt.NDArray[np.int64], F64, F64, bool]:
    """A spec as the kernel's arguments (stop kind, value, activation; target arrays; breakeven)."""
    return (*stop_arrays(spec.stop), *target_arrays(spec.targets), spec.breakeven_after_first_target)


def arm(spec: ProtectionSpec, side: PositionSide, fill_price: float) -> F64:
    """The protection vector of a position of `side` whose entry filled at `fill_price`."""
    state = np.empty(SIZE, dtype=np.float64)
    arm_kernel(state, float(side.sign), fill_price, *spec_arrays(spec))
    return state


def to_state(vector: F64) -> ProtectionState:
    """The vector as stored data (Decimal at 15 significant digits)."""

    def dec(value: float) -> Decimal | None:
        return None if math.isnan(value) else decimal_from_float(value)

    targets = tuple(
        ArmedTarget(
            price=decimal_from_float(vector[TARGETS + 3 * k]),
            size_fraction=decimal_from_float(vector[TARGETS + 3 * k + 1]),
            hit=bool(vector[TARGETS + 3 * k + 2]),
        )
        for k in range(int(vector[N_TARGETS]))
        if vector[TARGETS + 3 * k] > 0.0
    )
    trail = vector[TRAIL]
    return ProtectionState(
        entry_price=decimal_from_float(vector[ENTRY]),
        stop=dec(vector[STOP]),
        trailing_pct=None if math.isnan(trail) else decimal_from_float(trail * 100.0),
        trailing_activation=dec(vector[ACTIVATION]),
        anchor=decimal_from_float(vector[ANCHOR]),
        targets=targets,
        breakeven_after_first_target=bool(vector[BREAKEVEN]),
    )


def from_state(protection: ProtectionState, side: PositionSide) -> F64:
    """The vector of stored protection, ready for `on_price`."""

    def flt(value: Decimal | None) -> float:
        return math.nan if value is None else float(value)

    vector = np.full(SIZE, math.nan, dtype=np.float64)
    vector[DIR] = side.sign
    vector[ENTRY] = float(protection.entry_price)
    vector[STOP] = flt(protection.stop)
    vector[TRAIL] = math.nan if protection.trailing_pct is None else float(protection.trailing_pct) / 100.0
    vector[ACTIVATION] = flt(protection.trailing_activation)
    vector[ANCHOR] = float(protection.anchor)
    vector[BREAKEVEN] = 1.0 if protection.breakeven_after_first_target else 0.0
    vector[ACTIVE] = 1.0
    vector[N_TARGETS] = len(protection.targets)
    for k, target in enumerate(protection.targets):
        vector[TARGETS + 3 * k] = float(target.price)
        vector[TARGETS + 3 * k + 1] = float(target.size_fraction)
        vector[TARGETS + 3 * k + 2] = 1.0 if target.hit else 0.0
    return vector


class Trigger(NamedTuple):
    """One protective exit: leg `stop` (closes the rest) or `target-k` (closes `fraction` of the
    entry quantity), triggered at the reference `price` (the fill model adds slippage)."""

    leg: str
    price: float
    fraction: float


def exit_leg(kind: int) -> str:
    """The leg name of a protective exit: `stop` or `target-k`."""
    return "stop" if kind == EXIT_STOP else f"target-{kind}"


def check_trade(
    protection: ProtectionState, side: PositionSide, price: float
) -> tuple[list[Trigger], ProtectionState | None]:
    """What one trade at `price` triggers on a position, and its protection afterwards (None
    once a stop closed it). The position manager turns the triggers into exit intents."""
    vector = from_state(protection, side)
    kinds = np.zeros(MAX_TARGETS + 1, dtype=np.int64)
    refs = np.zeros(MAX_TARGETS + 1, dtype=np.float64)
    fractions = np.zeros(MAX_TARGETS + 1, dtype=np.float64)
    written = on_price(vector, price, False, kinds, refs, fractions)
    triggers = [Trigger(exit_leg(int(kinds[k])), float(refs[k]), float(fractions[k])) for k in range(written)]
    return triggers, (to_state(vector) if vector[ACTIVE] else None)

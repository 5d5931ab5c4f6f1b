"""Market structure: swings are known only once confirmed, states follow their definitions on
hand-made zigzags, and nothing at bar t depends on a later bar."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tekoa.patterns.structure import (
    SWING_STRENGTH,
    structure_condition,
    structure_state,
    support_resistance,
    swings,
)
from tekoa.strategies.rules import MarketStructure, StructureCondition
from tests.unit.indicators.series import random_walk
from tests.unit.patterns.candles import Candle, frame_of

S = MarketStructure


def zigzag(turns: list[float], leg: int = 4) -> list[Candle]:
    """Candles whose closes run in straight legs of `leg` bars through the turning points."""
    closes = [turns[0]]
    for a, b in itertools.pairwise(turns):
        closes.extend(np.linspace(a, b, leg + 1)[1:].tolist())
    candles = []
    previous = closes[0]
    for close in closes:
        candles.append((previous, max(previous, close) + 0.1, min(previous, close) - 0.1, close))
        previous = close
    return candles


UP = zigzag([100, 110, 104, 114, 108, 118, 112])  # higher highs and higher lows
DOWN = zigzag([120, 110, 116, 106, 112, 102, 108])  # lower highs and lower lows
RANGE = zigzag([100, 110, 100, 110, 100, 110, 100])  # equal highs and lows


def state_at_end(state: MarketStructure, candles: list[Candle], lookback: int = 100, **kw: float) -> bool:
    return bool(structure_state(state, frame_of(candles), lookback, **kw)[-1])


def test_a_swing_is_known_only_strength_bars_after_its_pivot() -> None:
    frame = frame_of(UP)
    pivots = swings(frame)
    first_peak = 4  # the 110 turn: 4 bars into the series
    assert first_peak in pivots.high_bars
    confirmed = pivots.confirmed_highs(len(frame))
    assert not confirmed[first_peak] and confirmed[first_peak + SWING_STRENGTH]
    # Cut the history right before confirmation: the pivot is not a swing yet.
    early = swings(frame.take(slice(0, first_peak + SWING_STRENGTH)))
    assert first_peak not in early.high_bars


@pytest.mark.parametrize(
    ("candles", "holds", "fails"),
    [
        (UP, [S.UPTREND, S.HIGHER_HIGH], [S.DOWNTREND, S.RANGE, S.LOWER_LOW]),
        (DOWN, [S.DOWNTREND, S.LOWER_LOW], [S.UPTREND, S.RANGE, S.HIGHER_HIGH]),
        (RANGE, [S.RANGE], [S.UPTREND, S.DOWNTREND, S.HIGHER_HIGH, S.LOWER_LOW]),
    ],
    ids=["up", "down", "range"],
)
def test_trend_states_follow_the_swings(
    candles: list[Candle], holds: list[MarketStructure], fails: list[MarketStructure]
) -> None:
    for state in holds:
        assert state_at_end(state, candles), state
    for state in fails:
        assert not state_at_end(state, candles), state


def test_states_only_see_swings_inside_the_lookback() -> None:
    # The uptrend's swings all lie more than 8 bars back: with lookback 8 there are too few.
    assert state_at_end(S.UPTREND, UP, lookback=100)
    assert not state_at_end(S.UPTREND, UP, lookback=8)


def test_break_of_structure_fires_on_the_bar_that_closes_through_the_last_swing() -> None:
    # After the uptrend the last swing high is 118.1; climb to it, then close above.
    candles = [*UP, (112.0, 116.1, 111.9, 116.0), (116.0, 118.0, 115.9, 117.9), (117.9, 119.1, 117.8, 119.0)]
    mask = structure_state(S.BREAK_OF_STRUCTURE_UP, frame_of(candles), 100)
    assert mask[-1] and not mask[-2] and not mask[-3]
    assert not structure_state(S.BREAK_OF_STRUCTURE_DOWN, frame_of(candles), 100)[-1]
    down = [*DOWN, (108.0, 108.1, 103.9, 104.0), (104.0, 104.1, 101.8, 101.8)]
    mask = structure_state(S.BREAK_OF_STRUCTURE_DOWN, frame_of(down), 100)
    assert mask[-1] and not mask[-2]


def test_proximity_uses_the_tolerance_around_the_nearest_swing() -> None:
    # RANGE's swing lows are at 99.9; a close of 100.3 is 0.4 % above them.
    candles = [*RANGE, (100.0, 100.4, 99.95, 100.3)]
    assert state_at_end(S.NEAR_SUPPORT, candles, tolerance_pct=0.5)
    assert not state_at_end(S.NEAR_SUPPORT, candles, tolerance_pct=0.3)
    assert not state_at_end(S.NEAR_RESISTANCE, candles, tolerance_pct=0.5)
    with pytest.raises(ValueError, match="needs a tolerance_pct"):
        structure_state(S.NEAR_SUPPORT, frame_of(candles), 50)


def test_rule_condition_is_evaluated_with_its_own_lookback_and_default_tolerance() -> None:
    candles = [*RANGE, (100.0, 100.4, 99.95, 100.3)]
    condition = StructureCondition.model_validate({"type": "structure", "structure": "near_support"})
    assert condition.lookback == 50
    assert structure_condition(condition, frame_of(candles))[-1]


def test_support_and_resistance_bracket_the_close() -> None:
    frame = frame_of([*RANGE, (100.0, 105.2, 99.95, 105.0)])
    levels = support_resistance(frame, lookback=100)
    assert levels.support[-1] == pytest.approx(99.9)
    assert levels.resistance[-1] == pytest.approx(110.1)
    assert np.isnan(levels.support[0]) and np.isnan(levels.resistance[0])
    known = ~np.isnan(levels.support)
    assert (levels.support[known] <= frame.close[known]).all()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 199), lookback=st.integers(5, 60))
def test_structure_is_causal(seed: int, cut: int, lookback: int) -> None:
    """Changing every bar after t never changes a state, a confirmed swing or a level up to t."""
    frame = random_walk(200, seed=seed)
    other = random_walk(200, seed=seed + 1)
    spliced = frame_of(
        [
            *zip(frame.open[:cut], frame.high[:cut], frame.low[:cut], frame.close[:cut], strict=True),
            *zip(other.open[cut:], other.high[cut:], other.low[cut:], other.close[cut:], strict=True),
        ]
    )
    for state in MarketStructure:
        tolerance = 1.0 if state.uses_tolerance else None
        a = structure_state(state, frame, lookback, tolerance)
        b = structure_state(state, spliced, lookback, tolerance)
        np.testing.assert_array_equal(a[:cut], b[:cut], err_msg=str(state))
    before, after = swings(frame), swings(spliced)
    np.testing.assert_array_equal(before.confirmed_highs(200)[:cut], after.confirmed_highs(200)[:cut])
    np.testing.assert_array_equal(before.confirmed_lows(200)[:cut], after.confirmed_lows(200)[:cut])
    for x, y in zip(support_resistance(frame, lookback), support_resistance(spliced, lookback), strict=True):
        np.testing.assert_array_equal(x[:cut], y[:cut])

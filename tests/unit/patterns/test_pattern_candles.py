"""Candle patterns: each fires on hand-made candles that fit its definition, not on near misses,
only on its completing bar, and causally."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tekoa.patterns.candles import candle_pattern, candle_patterns
from tekoa.strategies.rules import CandlePattern
from tests.unit.indicators.series import goog, random_walk
from tests.unit.patterns.candles import Candle, falling, flat, frame_of, rising

P = CandlePattern

# (pattern, candles ending with the pattern) that must match on the last bar.
MATCHES: list[tuple[CandlePattern, list[Candle]]] = [
    (P.DOJI, [*flat(3), (100.0, 101.0, 99.0, 100.05)]),
    (P.HAMMER, [*falling(10), (108.0, 108.5, 105.0, 108.4)]),
    (P.HANGING_MAN, [*rising(10), (92.0, 92.5, 89.0, 92.4)]),
    (P.INVERTED_HAMMER, [*falling(10), (108.4, 111.5, 108.2, 109.3)]),
    (P.SHOOTING_STAR, [*rising(10), (92.4, 95.5, 92.2, 93.3)]),
    (P.BULLISH_ENGULFING, [*flat(3), (101.0, 101.2, 99.4, 99.5), (99.4, 101.6, 99.3, 101.5)]),
    (P.BEARISH_ENGULFING, [*flat(3), (99.5, 101.1, 99.4, 101.0), (101.1, 101.2, 99.2, 99.3)]),
    (P.HARAMI_BULLISH, [*flat(3), (104.0, 104.2, 99.8, 100.0), (101.0, 102.5, 100.8, 102.0)]),
    (P.HARAMI_BEARISH, [*flat(3), (100.0, 104.2, 99.8, 104.0), (103.0, 103.2, 101.5, 102.0)]),
    (P.PIERCING_LINE, [*flat(3), (104.0, 104.2, 99.8, 100.0), (99.5, 103.2, 99.4, 103.0)]),
    (P.DARK_CLOUD_COVER, [*flat(3), (100.0, 104.2, 99.8, 104.0), (104.5, 104.6, 100.8, 101.0)]),
    (
        P.MORNING_STAR,
        [*flat(3), (104.0, 104.2, 99.8, 100.0), (99.5, 100.0, 99.0, 99.7), (99.8, 103.2, 99.7, 103.0)],
    ),
    (
        P.EVENING_STAR,
        [*flat(3), (100.0, 104.2, 99.8, 104.0), (104.3, 104.9, 104.0, 104.5), (104.2, 104.3, 100.8, 101.0)],
    ),
    (
        P.THREE_WHITE_SOLDIERS,
        [*flat(3), (100.0, 102.1, 99.9, 102.0), (101.5, 103.6, 101.4, 103.5), (103.0, 105.1, 102.9, 105.0)],
    ),
    (
        P.THREE_BLACK_CROWS,
        [*flat(3), (105.0, 105.1, 102.9, 103.0), (103.5, 103.6, 101.4, 101.5), (102.0, 102.1, 99.9, 100.0)],
    ),
]

# (pattern, near misses) that must not match on the last bar: one defining condition broken each.
MISSES: list[tuple[CandlePattern, list[Candle], str]] = [
    (P.DOJI, [*flat(3), (100.0, 101.0, 99.0, 100.5)], "body a quarter of the range"),
    (P.DOJI, [*flat(3), (100.0, 100.0, 100.0, 100.0)], "no range at all"),
    (P.HAMMER, [*rising(10), (92.0, 92.5, 89.0, 92.4)], "after an uptrend it is a hanging man"),
    (P.HAMMER, [*falling(10), (108.0, 109.5, 105.0, 108.4)], "upper shadow too long"),
    (P.HAMMER, [*falling(10), (108.0, 109.1, 106.1, 109.0)], "lower shadow under two bodies"),
    (P.HAMMER, [(108.0, 108.5, 105.0, 108.4)], "no trend history"),
    (P.HANGING_MAN, [*falling(10), (108.0, 108.5, 105.0, 108.4)], "after a downtrend it is a hammer"),
    (P.INVERTED_HAMMER, [*rising(10), (92.4, 95.5, 92.2, 93.3)], "after an uptrend it is a shooting star"),
    (P.SHOOTING_STAR, [*rising(10), (92.4, 95.5, 91.5, 93.3)], "lower shadow too long"),
    (
        P.BULLISH_ENGULFING,
        [*flat(3), (101.0, 101.2, 99.4, 99.5), (99.6, 101.6, 99.3, 101.5)],
        "opens above the previous close",
    ),
    (
        P.BULLISH_ENGULFING,
        [*flat(3), (99.5, 101.2, 99.4, 101.0), (99.4, 101.6, 99.3, 101.5)],
        "previous candle bullish",
    ),
    (
        P.BEARISH_ENGULFING,
        [*flat(3), (99.5, 101.1, 99.4, 101.0), (101.1, 101.2, 99.6, 99.7)],
        "closes above the previous open",
    ),
    (
        P.HARAMI_BULLISH,
        [*flat(3), (104.0, 104.2, 99.8, 100.0), (101.0, 104.5, 100.8, 104.2)],
        "body pokes out of the previous",
    ),
    (
        P.HARAMI_BULLISH,
        [*flat(3), (101.0, 103.0, 99.0, 100.0), (100.2, 100.9, 100.1, 100.8)],
        "previous body not long",
    ),
    (
        P.HARAMI_BEARISH,
        [*flat(3), (100.0, 104.2, 99.8, 104.0), (102.0, 103.2, 101.5, 103.0)],
        "second candle bullish",
    ),
    (
        P.PIERCING_LINE,
        [*flat(3), (104.0, 104.2, 99.8, 100.0), (99.5, 101.9, 99.4, 101.8)],
        "closes below the middle",
    ),
    (
        P.PIERCING_LINE,
        [*flat(3), (104.0, 104.2, 99.8, 100.0), (100.2, 103.2, 99.4, 103.0)],
        "opens above the previous close",
    ),
    (
        P.DARK_CLOUD_COVER,
        [*flat(3), (100.0, 104.2, 99.8, 104.0), (104.5, 104.6, 102.3, 102.4)],
        "closes above the middle",
    ),
    (
        P.MORNING_STAR,
        [*flat(3), (104.0, 104.2, 99.8, 100.0), (99.0, 101.6, 98.9, 101.5), (99.8, 103.2, 99.7, 103.0)],
        "star body too big",
    ),
    (
        P.MORNING_STAR,
        [*flat(3), (104.0, 104.2, 99.8, 100.0), (99.5, 100.0, 99.0, 99.7), (99.8, 101.2, 99.7, 101.0)],
        "third closes below the middle",
    ),
    (
        P.EVENING_STAR,
        [*flat(3), (100.0, 104.2, 99.8, 104.0), (103.5, 104.0, 103.2, 103.7), (104.2, 104.3, 100.8, 101.0)],
        "star below the first close",
    ),
    (
        P.THREE_WHITE_SOLDIERS,
        [*flat(3), (100.0, 102.1, 99.9, 102.0), (102.5, 103.6, 102.4, 103.5), (103.0, 105.1, 102.9, 105.0)],
        "second opens above the first body",
    ),
    (
        P.THREE_WHITE_SOLDIERS,
        [*flat(3), (100.0, 102.1, 99.9, 102.0), (101.5, 103.6, 101.4, 103.5), (103.0, 105.1, 102.9, 103.2)],
        "third body short",
    ),
    (
        P.THREE_BLACK_CROWS,
        [*flat(3), (105.0, 105.1, 102.9, 103.0), (103.5, 103.6, 101.4, 101.5), (102.0, 102.1, 99.9, 101.6)],
        "third closes higher",
    ),
]


def test_every_pattern_has_a_match_and_a_near_miss() -> None:
    assert {pattern for pattern, _ in MATCHES} == set(CandlePattern)
    assert {pattern for pattern, _, _ in MISSES} == set(CandlePattern)


@pytest.mark.parametrize(("pattern", "candles"), MATCHES, ids=lambda x: getattr(x, "value", ""))
def test_pattern_fires_on_its_completing_bar_only(pattern: CandlePattern, candles: list[Candle]) -> None:
    mask = candle_pattern(pattern, frame_of(candles))
    assert mask[-1]
    assert not mask[-(pattern.candles + 1) :][:-1].any() or pattern is P.DOJI


@pytest.mark.parametrize(("pattern", "candles", "why"), MISSES, ids=lambda x: x if isinstance(x, str) else "")
def test_pattern_does_not_fire_on_a_near_miss(
    pattern: CandlePattern, candles: list[Candle], why: str
) -> None:
    assert not candle_pattern(pattern, frame_of(candles))[-1], why


def test_all_patterns_at_once_equal_one_at_a_time() -> None:
    frame = goog()
    together = candle_patterns(frame)
    for pattern in CandlePattern:
        np.testing.assert_array_equal(together[pattern], candle_pattern(pattern, frame))
        assert together[pattern].dtype == np.bool_ and together[pattern].shape == (len(frame),)
    # Real data shows every common pattern somewhere, and none on most bars.
    assert together[P.DOJI].any() and together[P.BULLISH_ENGULFING].any()
    assert together[P.DOJI].mean() < 0.2


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 119))
def test_patterns_are_causal(seed: int, cut: int) -> None:
    """Changing every bar after t never changes any pattern at or before t."""
    frame = random_walk(120, seed=seed, flat_runs=False)
    other = random_walk(120, seed=seed + 1, flat_runs=False)
    spliced = frame_of(
        [
            *zip(frame.open[:cut], frame.high[:cut], frame.low[:cut], frame.close[:cut], strict=True),
            *zip(other.open[cut:], other.high[cut:], other.low[cut:], other.close[cut:], strict=True),
        ]
    )
    before = candle_patterns(frame)
    after = candle_patterns(spliced)
    for pattern in CandlePattern:
        np.testing.assert_array_equal(before[pattern][:cut], after[pattern][:cut])

"""The rule language compiled to vectorised truth: group logic, crosses, higher timeframes,
warm-up, the float/Decimal boundary and confluence scores."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from tekoa.backtest.data import resampled
from tekoa.domain.timeframes import Timeframe
from tekoa.engine.conditions import matched_at, truth
from tekoa.engine.market import MarketData
from tekoa.strategies.rules import Condition
from tests.unit.engine.random_rules import comparison, condition
from tests.unit.engine.support import START_MS, candles, random_walk

CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)
FRAME = random_walk(400, seed=7, timeframe=Timeframe.H1, volatility=0.02)
DATA = MarketData({Timeframe.H1: FRAME, Timeframe.H4: resampled(FRAME, Timeframe.H4)})


def _truth(tree: dict[str, Any], data: MarketData = DATA) -> Any:
    return truth(data, Timeframe.H1, CONDITION.validate_python(tree))


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000), members=st.integers(2, 4))
def test_all_never_fires_where_a_member_is_false_and_any_never_fails_where_one_holds(
    seed: int, members: int
) -> None:
    rng = random.Random(seed)
    parts = [condition(rng, "4h") for _ in range(members)]
    every = _truth({"type": "all", "conditions": parts})
    some = _truth({"type": "any", "conditions": parts})
    for part in parts:
        member = _truth(part)
        assert not (every.true & member.false).any()
        assert not (every.true & ~member.true).any()
        assert not (some.false & member.true).any()
    assert not (every.true & every.false).any()


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_not_inverts_where_the_value_is_known(seed: int) -> None:
    tree = condition(random.Random(seed), "4h")
    inner = _truth(tree)
    negated = _truth({"type": "not", "condition": tree})

    assert (negated.true == inner.false).all()
    assert (negated.false == inner.true).all()
    assert (negated.true[inner.known] == ~inner.true[inner.known]).all()


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_a_cross_needs_the_previous_bar(seed: int) -> None:
    rng = random.Random(seed)
    node = comparison(rng, "4h")
    node["op"] = rng.choice(["crosses_above", "crosses_below"])
    below = "lte" if node["op"] == "crosses_above" else "gte"
    above = "gt" if node["op"] == "crosses_above" else "lt"
    crossed = _truth(node).true
    now = _truth({**node, "op": above})
    before = _truth({**node, "op": below})

    assert not crossed[0]
    bars = np.flatnonzero(crossed)
    assert now.true[bars].all()
    assert before.true[bars - 1].all()  # the previous bar was known and on the other side


def test_warm_up_is_unknown_so_not_does_not_fire_there() -> None:
    overbought = {
        "type": "compare",
        "left": {"type": "indicator", "name": "rsi", "params": {"period": 14}},
        "op": "gt",
        "right": {"type": "constant", "value": "70"},
    }
    negated = _truth({"type": "not", "condition": overbought})

    assert not negated.true[:14].any()
    assert negated.true[14:].any()


def test_decimal_thresholds_compare_as_their_nearest_float() -> None:
    # closes printed as 100.1: the rule's "100.1" is that very float, so gt is false there
    frame = candles([(100.0, 100.2, 99.9, 100.1), (100.1, 100.3, 100.0, float(np.nextafter(100.1, 200.0)))])
    data = MarketData({Timeframe.H1: frame})

    def at(op: str, value: str = "100.1") -> list[bool]:
        tree = {
            "type": "compare",
            "left": {"type": "price", "field": "close"},
            "op": op,
            "right": {"type": "constant", "value": value},
        }
        return _truth(tree, data).true.tolist()

    assert at("gt") == [False, True]
    assert at("gte") == [True, True]
    assert at("eq") == [True, False]
    assert at("lte") == [True, False]
    assert at("lt", "100.10000000000000000001") == [False, False]  # rounds to the same float


def test_a_higher_timeframe_candle_counts_only_once_it_has_closed() -> None:
    # 1h bars from midnight; the 4h candle of 00:00-04:00 closes with the 03:00 bar
    frame = random_walk(12, seed=3, timeframe=Timeframe.H1)
    data = MarketData({Timeframe.H1: frame, Timeframe.H4: resampled(frame, Timeframe.H4)})
    assert START_MS % Timeframe.H4.ms == 0
    close_4h = _truth(
        {
            "type": "compare",
            "left": {"type": "price", "field": "close", "timeframe": "4h"},
            "op": "gt",
            "right": {"type": "constant", "value": "0"},
        },
        data,
    )

    assert close_4h.known.tolist() == [False] * 3 + [True] * 9
    aligned = data.aligned(Timeframe.H1, Timeframe.H4, data.frame(Timeframe.H4).close)
    assert aligned[3] == frame.close[3] and aligned[6] == frame.close[3] and aligned[7] == frame.close[7]


def test_confluence_score_is_the_share_of_top_level_conditions_that_hold() -> None:
    frame = candles([(100.0, 101.0, 99.0, 100.5)] * 3)
    data = MarketData({Timeframe.H1: frame})

    def close(op: str, value: int) -> dict[str, Any]:
        return {
            "type": "compare",
            "left": {"type": "price", "field": "close"},
            "op": op,
            "right": {"type": "constant", "value": str(value)},
        }

    tree = CONDITION.validate_python(
        {"type": "all", "conditions": [close("gt", 100), close("lt", 101), close("gt", 200)]}
    )

    matched, score = matched_at(data, Timeframe.H1, tree, 2)

    assert matched == ("close gt 100", "close lt 101")
    assert score == pytest.approx(2 / 3)
    assert not truth(data, Timeframe.H1, tree).true[2]


def test_patterns_and_structure_evaluate_on_a_history_shorter_than_their_context() -> None:
    # The live evaluator may hold only a few candles of a new market.
    for bars in range(1, 14):
        frame = random_walk(bars, seed=bars, timeframe=Timeframe.H1)
        data = MarketData({Timeframe.H1: frame})
        for pattern in ("shooting_star", "morning_star", "bullish_engulfing"):
            assert _truth({"type": "pattern", "pattern": pattern}, data).true.shape == (bars,)
        assert not _truth({"type": "structure", "structure": "uptrend", "lookback": 50}, data).true.any()

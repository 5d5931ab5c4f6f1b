"""Protective exits: stop, take-profit ladder with partial exits, breakeven after the first
target, trailing stop — along candle paths and on single trades, long and short."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tekoa.domain.orders import ProtectionSpec, StopSpec, TargetSpec
from tekoa.domain.trading import PositionSide, ProtectionState
from tekoa.engine import protection as pr

LONG, SHORT = PositionSide.LONG, PositionSide.SHORT


def _run(state: np.ndarray, candle: tuple[float, float, float, float]) -> list[tuple[str, float, float, int]]:
    kinds = np.zeros(16, dtype=np.int64)
    refs = np.zeros(16)
    fractions = np.zeros(16)
    points = np.zeros(16, dtype=np.int64)
    count = pr.on_candle(state, *candle, kinds, refs, fractions, points)
    return [
        (pr.exit_leg(int(kinds[k])), float(refs[k]), float(fractions[k]), int(points[k]))
        for k in range(count)
    ]


def _spec(**kwargs: object) -> ProtectionSpec:
    return ProtectionSpec.model_validate(kwargs)


def test_percent_stop_fires_at_its_level_when_the_path_crosses_it() -> None:
    state = pr.arm(_spec(stop={"kind": "percent", "value": "2"}), LONG, 100.0)

    assert _run(state, (100.0, 100.5, 97.0, 99.0)) == [("stop", 98.0, 1.0, 2)]
    assert state[pr.ACTIVE] == 0.0


def test_a_gap_through_the_stop_fills_at_the_gap_price() -> None:
    state = pr.arm(_spec(stop={"kind": "price", "value": "95"}), LONG, 100.0)

    assert _run(state, (93.0, 94.0, 92.0, 93.5)) == [("stop", 93.0, 1.0, 0)]


def test_ladder_hits_targets_nearest_first_then_the_stop_sits_at_breakeven() -> None:
    spec = _spec(
        stop={"kind": "percent", "value": "5"},
        targets=[
            {"kind": "percent", "value": "2", "size_fraction": "0.5"},
            {"kind": "r_multiple", "value": "1", "size_fraction": "0.25"},
        ],
        breakeven_after_first_target=True,
    )
    state = pr.arm(spec, LONG, 100.0)

    # up to 103: first target (102) hit; the stop moves from 95 to the entry
    assert _run(state, (100.0, 103.0, 99.9, 102.5)) == [("target-1", 102.0, 0.5, 2)]
    assert pr.stop_level(state) == 100.0
    # back to the entry: the breakeven stop closes the rest
    assert _run(state, (101.0, 101.5, 99.0, 99.5)) == [("stop", 100.0, 1.0, 2)]


def test_r_multiple_targets_are_measured_from_the_initial_stop_distance() -> None:
    state = pr.arm(
        _spec(stop={"kind": "distance", "value": "4"}, targets=[{"kind": "r_multiple", "value": "2"}]),
        LONG,
        100.0,
    )

    assert state[pr.STOP] == 96.0
    assert state[pr.TARGETS] == 108.0


def test_trailing_stop_follows_the_best_price_and_fires_below_it() -> None:
    state = pr.arm(_spec(stop={"kind": "trailing_percent", "value": "10"}), LONG, 100.0)

    assert _run(state, (100.0, 120.0, 99.0, 118.0)) == []  # low came first (91 is the stop then)
    assert state[pr.ANCHOR] == 120.0
    assert _run(state, (118.0, 118.5, 107.0, 108.0)) == [("stop", 108.0, 1.0, 2)]


def test_trailing_stop_with_activation_has_no_stop_until_the_profit_is_reached() -> None:
    state = pr.arm(
        _spec(stop={"kind": "trailing_percent", "value": "5", "activation_pct": "10"}), LONG, 100.0
    )

    assert _run(state, (100.0, 101.0, 80.0, 85.0)) == []  # a 20 % fall, and no stop yet
    assert _run(state, (85.0, 111.0, 84.0, 110.0)) == []
    assert math.isclose(pr.stop_level(state), 111.0 * 0.95)


def test_a_short_mirrors_everything() -> None:
    spec = _spec(stop={"kind": "percent", "value": "2"}, targets=[{"kind": "percent", "value": "3"}])
    state = pr.arm(spec, SHORT, 100.0)

    assert state[pr.STOP] == 102.0 and state[pr.TARGETS] == 97.0
    assert _run(state, (100.0, 100.5, 96.0, 96.5)) == [("target-1", 97.0, 1.0, 2)]
    stopped = pr.arm(spec, SHORT, 100.0)
    assert _run(stopped, (100.0, 103.0, 99.5, 102.5)) == [("stop", 102.0, 1.0, 2)]


def test_a_trade_through_the_stop_triggers_an_exit_and_the_protection_ends() -> None:
    stored = ProtectionState(entry_price=Decimal(100), stop=Decimal(95), anchor=Decimal(100))

    triggers, after = pr.check_trade(stored, LONG, 94.5)

    assert triggers == [pr.Trigger("stop", 94.5, 1.0)]
    assert after is None


def test_a_trade_moves_the_trailing_anchor_and_hits_targets_and_the_state_round_trips() -> None:
    spec = _spec(
        stop={"kind": "trailing_percent", "value": "5"},
        targets=[{"kind": "percent", "value": "4", "size_fraction": "0.5"}],
        breakeven_after_first_target=True,
    )
    stored = pr.to_state(pr.arm(spec, LONG, 100.0))

    triggers, after = pr.check_trade(stored, LONG, 105.0)

    assert triggers == [pr.Trigger("target-1", 105.0, 0.5)]
    assert after is not None
    assert after.anchor == Decimal("105") and after.stop == Decimal("100") and after.targets[0].hit
    assert ProtectionState.model_validate_json(after.model_dump_json()) == after
    assert pr.check_trade(after, LONG, 100.5) == ([], after.model_copy(update={}))


SPECS = [
    ProtectionSpec(stop=StopSpec(kind="percent", value=Decimal(3))),
    ProtectionSpec(stop=StopSpec(kind="trailing_percent", value=Decimal(4))),
    ProtectionSpec(stop=StopSpec(kind="trailing_percent", value=Decimal(2), activation_pct=Decimal(3))),
    ProtectionSpec(
        stop=StopSpec(kind="percent", value=Decimal(6)),
        targets=(
            TargetSpec(kind="percent", value=Decimal(2), size_fraction=Decimal("0.5")),
            TargetSpec(kind="percent", value=Decimal(5), size_fraction=Decimal("0.5")),
        ),
        breakeven_after_first_target=True,
    ),
]


@settings(max_examples=60, deadline=None)
@given(
    spec=st.sampled_from(SPECS),
    side=st.sampled_from([LONG, SHORT]),
    moves=st.lists(
        st.tuples(st.floats(-0.03, 0.03), st.floats(0, 0.02), st.floats(0, 0.02)), min_size=5, max_size=40
    ),
)
def test_skipping_ahead_never_skips_a_bar_that_triggers(
    spec: ProtectionSpec, side: PositionSide, moves: list[tuple[float, float, float]]
) -> None:
    # Given random candles after an entry at 100
    closes = 100.0 * np.cumprod([1.0 + m[0] for m in moves])
    opens = np.concatenate(([100.0], closes[:-1]))
    highs = np.maximum(opens, closes) * (1.0 + np.array([m[1] for m in moves]))
    lows = np.minimum(opens, closes) * (1.0 - np.array([m[2] for m in moves]))
    walked = pr.arm(spec, side, 100.0)
    skipped = walked.copy()

    # When one copy runs every candle and the other jumps to the bar the scan names
    first_exit = next(
        (bar for bar in range(len(moves)) if _run(walked, (opens[bar], highs[bar], lows[bar], closes[bar]))),
        len(moves),
    )
    scanned = pr.next_trigger_bar(skipped, highs, lows, 0, len(moves))

    # Then the scan stops at or before the first bar with an exit, with the same anchor
    assert scanned <= first_exit
    if scanned < len(moves):
        replay = pr.arm(spec, side, 100.0)
        for bar in range(scanned):
            assert _run(replay, (opens[bar], highs[bar], lows[bar], closes[bar])) == []
        assert replay[pr.ANCHOR] == skipped[pr.ANCHOR]

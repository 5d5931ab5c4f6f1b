"""No look-ahead: whatever happens after bar t, every decision up to bar t is the same."""

from __future__ import annotations

import numpy as np
import pytest

from tekoa.backtest.data import market_data
from tekoa.backtest.runner import run_backtest
from tekoa.domain.timeframes import Timeframe
from tekoa.market.frame import CandleFrame
from tests.unit.backtest.test_one_code_path import BOTS
from tests.unit.engine.random_rules import rules
from tests.unit.engine.support import random_walk, strategy

CUT = 250


def _other_future(frame: CandleFrame, cut: int, seed: int) -> CandleFrame:
    """The same candles up to `cut`, a different market after it."""
    other = random_walk(len(frame), seed=seed + 99, timeframe=frame.timeframe, volatility=0.03)
    scale = frame.close[cut] / other.open[cut + 1]
    columns = [
        np.concatenate(
            (
                getattr(frame, name)[: cut + 1],
                getattr(other, name)[cut + 1 :] * (1.0 if name == "volume" else scale),
            )
        )
        for name in ("open", "high", "low", "close", "volume")
    ]
    return CandleFrame.from_arrays(frame.timeframe, frame.open_time, *columns)


# Random rule strategies (these seeds trade before the cut on their market) and every bot type.
DEFINITIONS = {f"rules-{seed}": rules(seed) for seed in (2, 4, 6, 7, 9, 11, 13, 14)} | {
    name: {**definition, "params": {**definition["params"], "timeframe": "1h"}}
    for name, definition in BOTS.items()
}


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_changing_every_bar_after_t_changes_no_decision_up_to_t(name: str) -> None:
    # Given a market, and the same market with every bar after CUT replaced
    definition = strategy(DEFINITIONS[name])
    frame = random_walk(600, seed=sum(map(ord, name)), timeframe=Timeframe.H1, volatility=0.015)
    altered = _other_future(frame, CUT, sum(map(ord, name)))
    assert (altered.close[: CUT + 1] == frame.close[: CUT + 1]).all()
    assert not (altered.close[CUT + 1 :] == frame.close[CUT + 1 :]).any()

    # When both are backtested
    runs = [
        run_backtest(definition, market_data(definition, {Timeframe.H1: f}), vectorised=False)
        for f in (frame, altered)
    ]

    # Then the decisions made on bars up to CUT are identical, and so is the equity to CUT
    before = [[(bar, i.model_dump()) for bar, i in run.intents if bar <= CUT] for run in runs]
    assert before[0] == before[1]
    assert before[0], "the strategy must decide something before the cut"
    assert (runs[0].equity[:CUT] == runs[1].equity[:CUT]).all()

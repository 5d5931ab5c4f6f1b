"""The market data a backtest needs, from one primary frame (a CSV) or from frames per
timeframe (the candle store)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tekoa.domain.timeframes import Timeframe
from tekoa.engine.market import MarketData
from tekoa.market.aggregation import CandleArrays, resample
from tekoa.market.frame import CandleFrame
from tekoa.strategies.models import RulesStrategy, StrategyDefinition, strategy_timeframe
from tekoa.strategies.rules import lookback_by_timeframe


class UnusableData(ValueError):
    """The candles cannot serve the strategy (a finer timeframe than given, no candles)."""


def timeframes_needed(strategy: StrategyDefinition) -> list[Timeframe]:
    """Every timeframe the strategy reads, its primary first."""
    primary = strategy_timeframe(strategy)
    others = lookback_by_timeframe(strategy.rules) if isinstance(strategy, RulesStrategy) else {}
    return [primary, *sorted((t for t in others if t is not primary), key=lambda t: t.ms)]


def resampled(frame: CandleFrame, timeframe: Timeframe) -> CandleFrame:
    """`frame`'s candles merged into the coarser `timeframe` (OHLC exact, volume summed)."""
    arrays = CandleArrays(
        frame.timeframe,
        frame.open_time,
        frame.open,
        frame.high,
        frame.low,
        frame.close,
        frame.volume,
        np.zeros(len(frame), dtype=np.int64),
    )
    merged = resample(arrays, timeframe)
    return CandleFrame(
        timeframe, merged.open_time, merged.open, merged.high, merged.low, merged.close, merged.volume
    )


def market_data(strategy: StrategyDefinition, frames: Mapping[Timeframe, CandleFrame]) -> MarketData:
    """Market data holding every timeframe the strategy reads: the given frames, and coarser
    timeframes missing from them resampled from the primary frame."""
    needed = timeframes_needed(strategy)
    primary = needed[0]
    if primary not in frames or len(frames[primary]) == 0:
        raise UnusableData(f"no {primary} candles: the strategy runs on {primary}")
    result = dict(frames)
    for timeframe in needed[1:]:
        if timeframe in result:
            continue
        if timeframe.ms < primary.ms or timeframe.ms % primary.ms:
            raise UnusableData(f"the rules read {timeframe} candles, which {primary} candles cannot make")
        result[timeframe] = resampled(frames[primary], timeframe)
    return MarketData(result)

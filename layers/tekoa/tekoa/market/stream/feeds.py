"""What the service knows about each market it follows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tekoa.domain.timeframes import Timeframe


@dataclass(slots=True)
class Suspect:
    """Trades in `[lo, hi]` may be missing; `done`: timeframes whose candles were replaced."""

    lo: int
    hi: int
    done: set[Timeframe] = field(default_factory=set)

    def due(self, timeframe: Timeframe, now_ms: int, grace_ms: int) -> bool:
        """Not yet replaced, and the last candle overlapping the range has closed."""
        return timeframe not in self.done and timeframe.open_time(self.hi) + timeframe.ms + grace_ms <= now_ms


@dataclass(slots=True)
class MarketFeed:
    """One followed market: its stream task, feed health and what awaits repair."""

    symbol: str
    task: asyncio.Task[None] | None = None
    started_wall: float = 0.0
    last_batch_wall: float | None = None
    last_trade_ms: int | None = None
    stale: bool = False
    unavailable: str | None = None
    fresh: bool | None = None
    repaired: bool = False
    repair_requested: bool = True
    # Ranges whose candles were built from part of their trades: re-fetched once closed.
    suspect: list[Suspect] = field(default_factory=list)
    last_candle_open_ms: int | None = None
    batches: int = 0
    candles: int = 0
    stalls: int = 0

"""Candle timeframes, aligned to multiples of their length since the UTC epoch."""

from __future__ import annotations

from enum import StrEnum


class Timeframe(StrEnum):
    """A candle length; the value is the wire and database spelling (ccxt's)."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"

    @property
    def ms(self) -> int:
        """Length in milliseconds."""
        return _LENGTH_MS[self]

    def open_time(self, ts_ms: int) -> int:
        """Open time (ms) of the candle that contains `ts_ms`."""
        return ts_ms - ts_ms % self.ms

    def close_time(self, open_time_ms: int) -> int:
        """First millisecond after the candle that opens at `open_time_ms`."""
        return open_time_ms + self.ms


_LENGTH_MS: dict[Timeframe, int] = {
    Timeframe.M1: 60_000,
    Timeframe.M5: 300_000,
    Timeframe.M15: 900_000,
    Timeframe.H1: 3_600_000,
    Timeframe.H4: 14_400_000,
    Timeframe.D1: 86_400_000,
}

ALL_TIMEFRAMES: tuple[Timeframe, ...] = tuple(Timeframe)

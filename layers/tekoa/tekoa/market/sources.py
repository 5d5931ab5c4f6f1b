"""The one interface every market data source implements (simulated exchange, ccxt).

Trades travel in columnar batches so the aggregator never loops over Python objects per
trade. Prices and amounts are float64 here on purpose: this is the numeric hot path fed by
exchanges that publish floats; candles become NUMERIC/Decimal at persistence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from tekoa.domain.timeframes import Timeframe
from tekoa.exchanges.rules import MarketRules


@dataclass(frozen=True, slots=True)
class TradeBatch:
    """Trades of one symbol on one exchange, ascending by time as the exchange sent them.

    `trade_ids` holds the exchange's trade id when it is numeric, else a stable 64-bit hash
    of it (see `trade_id_to_int`); it is what duplicate detection keys on.
    """

    exchange: str
    symbol: str
    timestamps_ms: npt.NDArray[np.int64]
    prices: npt.NDArray[np.float64]
    amounts: npt.NDArray[np.float64]
    trade_ids: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.timestamps_ms.shape[0])


@dataclass(frozen=True, slots=True)
class OhlcvRows:
    """Historical candles as columns, as an exchange's REST history returns them."""

    open_time_ms: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.open_time_ms.shape[0])

    def take(self, which: npt.NDArray[np.bool_] | slice) -> OhlcvRows:
        """The rows a boolean mask or a slice selects."""
        return OhlcvRows(
            open_time_ms=self.open_time_ms[which],
            open=self.open[which],
            high=self.high[which],
            low=self.low[which],
            close=self.close[which],
            volume=self.volume[which],
        )


class MarketSource(Protocol):
    """A venue that streams trades and serves candle history."""

    exchange: str

    def stream_trades(self, symbols: Sequence[str]) -> AsyncIterator[TradeBatch]:
        """Yield trade batches for `symbols` until cancelled; reconnects are the source's job."""
        ...

    async def fetch_ohlcv(self, symbol: str, timeframe: Timeframe, since_ms: int, limit: int) -> OhlcvRows:
        """Closed candles opening at or after `since_ms`, at most `limit` (the exchange's page)."""
        ...

    async def market_rules(self, symbols: Sequence[str]) -> list[MarketRules]:
        """The precision and limits of those `symbols` the venue lists (orders are checked with them)."""
        ...

    async def close(self) -> None:
        """Release sockets and sessions."""
        ...


def trade_id_to_int(trade_id: str | int | None, fallback: int) -> int:
    """Numeric ids pass through; others hash stably to 63 bits; a missing id uses `fallback`."""
    if trade_id is None:
        return fallback
    if isinstance(trade_id, int):
        return trade_id
    if trade_id.isascii() and trade_id.isdigit() and len(trade_id) < 19:
        return int(trade_id)
    import hashlib

    digest = hashlib.blake2b(trade_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF

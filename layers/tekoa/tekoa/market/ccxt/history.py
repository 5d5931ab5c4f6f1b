"""Candles from an exchange's REST history (ccxt `fetch_ohlcv`), for backfill and gap repair.

The candle still open at the source's clock is never returned, even though exchanges (Binance
included) serve it with its running values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

import numpy as np

from tekoa.domain.timeframes import Timeframe
from tekoa.market.ccxt.client import ExchangeClients
from tekoa.market.sources import OhlcvRows

_DEFAULT_PAGE_LIMIT: Final = 500


class OhlcvHistory:
    """Closed candles of one exchange over REST, one page or a paged range."""

    def __init__(self, clients: ExchangeClients, clock_ms: Callable[[], int]) -> None:
        self._clients = clients
        self._clock_ms = clock_ms

    async def fetch_ohlcv(self, symbol: str, timeframe: Timeframe, since_ms: int, limit: int) -> OhlcvRows:
        """Closed candles opening at or after `since_ms`, at most `limit` (one exchange page)."""
        raw = await self._fetch_page(symbol, timeframe, since_ms, limit)
        return self._closed_rows(raw, timeframe, since_ms, end_ms=None)

    async def fetch_ohlcv_range(
        self, symbol: str, timeframe: Timeframe, start_ms: int, end_ms: int, *, page_limit: int | None = None
    ) -> OhlcvRows:
        """Closed candles opening in [start_ms, end_ms), paging by the exchange's limit
        (`page_limit` defaults to the largest page ccxt says the exchange serves)."""
        limit = page_limit or await self._page_limit()
        pages: list[OhlcvRows] = []
        since = start_ms
        while since < end_ms:
            raw = await self._fetch_page(symbol, timeframe, since, limit)
            if not raw:
                break
            pages.append(self._closed_rows(raw, timeframe, since, end_ms))
            last_open = int(raw[-1][0])
            next_since = last_open + timeframe.ms
            # Stop at the present (the newest row is still open) or when the exchange makes no
            # progress, so a venue that ignores `since` cannot loop us forever.
            if next_since <= since or next_since > self._clock_ms():
                break
            since = next_since
        return _concat_unique(pages)

    async def _fetch_page(
        self, symbol: str, timeframe: Timeframe, since_ms: int, limit: int
    ) -> list[list[Any]]:
        rest = await self._clients.rest()

        async def call() -> list[list[Any]]:
            rows = await rest.fetch_ohlcv(symbol, timeframe.value, since_ms, limit)
            return cast(list[list[Any]], rows)

        return await self._clients.with_retries("fetch_ohlcv", call)

    def _closed_rows(
        self, raw: Sequence[Sequence[Any]], timeframe: Timeframe, since_ms: int, end_ms: int | None
    ) -> OhlcvRows:
        count = len(raw)
        open_time = np.fromiter((int(row[0]) for row in raw), np.int64, count)
        values = np.array(
            [[np.nan if v is None else float(v) for v in row[1:6]] for row in raw], dtype=np.float64
        ).reshape(count, 5)
        keep = (open_time >= since_ms) & (open_time + timeframe.ms <= self._clock_ms())
        if end_ms is not None:
            keep &= open_time < end_ms
        return OhlcvRows(
            open_time_ms=open_time[keep],
            open=values[keep, 0],
            high=values[keep, 1],
            low=values[keep, 2],
            close=values[keep, 3],
            volume=values[keep, 4],
        )

    async def _page_limit(self) -> int:
        rest = await self._clients.rest()
        features = cast(Mapping[str, Any], getattr(rest, "features", None) or {})
        spot = features.get("spot") or {}
        ohlcv = spot.get("fetchOHLCV") or {} if isinstance(spot, Mapping) else {}
        limit = ohlcv.get("limit") if isinstance(ohlcv, Mapping) else None
        return int(limit) if isinstance(limit, int) and limit > 0 else _DEFAULT_PAGE_LIMIT


def _concat_unique(pages: Sequence[OhlcvRows]) -> OhlcvRows:
    """Join pages into one ascending series with one row per open time."""
    open_time = np.concatenate([p.open_time_ms for p in pages]) if pages else np.empty(0, np.int64)
    columns = [
        np.concatenate([getattr(p, name) for p in pages]) if pages else np.empty(0, np.float64)
        for name in ("open", "high", "low", "close", "volume")
    ]
    _, first = np.unique(open_time, return_index=True)
    return OhlcvRows(
        open_time_ms=open_time[first],
        open=columns[0][first],
        high=columns[1][first],
        low=columns[2][first],
        close=columns[3][first],
        volume=columns[4][first],
    )

"""`CcxtSource`: a `MarketSource` backed by a ccxt exchange (see the package docstring)."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from tekoa.domain.timeframes import Timeframe
from tekoa.exchanges.clients import rules_from_markets
from tekoa.exchanges.rules import MarketRules
from tekoa.market.ccxt.client import Backoff, ExchangeClients
from tekoa.market.ccxt.history import OhlcvHistory
from tekoa.market.ccxt.trades import Freshness, StreamEvent, TradeStreams
from tekoa.market.sources import OhlcvRows, TradeBatch


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class CcxtSource:
    """A `MarketSource` backed by a ccxt exchange (ccxt.pro for trades, REST for candles).

    `config` is passed to the ccxt constructor (API keys, options); it is never logged.
    `url_overrides` is deep-merged into the client's `urls['api']`, e.g. for Binance
    `{"public": "http://127.0.0.1:8080/api/v3", "ws": {"spot": "ws://127.0.0.1:8080/stream/ws"}}`,
    which is how tests aim the real ccxt code at a loopback fake.
    `on_event` is called on the event loop for every `StreamEvent`; it must not block (hand
    the event to a queue or a task). `clock_ms` is the clock that decides whether a candle
    has closed (default: wall clock).
    """

    def __init__(
        self,
        exchange_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        url_overrides: Mapping[str, Any] | None = None,
        stale_after_s: float = 30.0,
        backoff: Backoff | None = None,
        on_event: Callable[[StreamEvent], None] | None = None,
        clock_ms: Callable[[], int] | None = None,
        rest_attempts: int = 5,
        close_timeout_s: float = 5.0,
        queue_size: int = 10_000,
        rng: random.Random | None = None,
    ) -> None:
        clock = clock_ms or _wall_clock_ms
        self._clients = ExchangeClients(
            exchange_id,
            config=config,
            url_overrides=url_overrides,
            backoff=backoff or Backoff(),
            rest_attempts=rest_attempts,
            close_timeout_s=close_timeout_s,
            # Jitter only spreads reconnects in time; it needs no cryptographic randomness.
            rng=rng or random.Random(),  # noqa: S311
        )
        self.exchange = exchange_id
        self._trades = TradeStreams(
            self._clients,
            stale_after_s=stale_after_s,
            on_event=on_event,
            clock_ms=clock,
            queue_size=queue_size,
        )
        self._history = OhlcvHistory(self._clients, clock)

    def is_fresh(self, symbol: str) -> bool:
        """True while `symbol`'s trades are flowing (False before the first message)."""
        return self._trades.is_fresh(symbol)

    def freshness(self) -> dict[str, Freshness]:
        """Feed health of every symbol streamed so far."""
        return self._trades.freshness()

    def stream_trades(self, symbols: Sequence[str]) -> AsyncIterator[TradeBatch]:
        """Trade batches for `symbols` until cancelled or closed (see `TradeStreams.stream`)."""
        return self._trades.stream(symbols)

    async def fetch_ohlcv(self, symbol: str, timeframe: Timeframe, since_ms: int, limit: int) -> OhlcvRows:
        """Closed candles opening at or after `since_ms`, at most `limit` (one exchange page)."""
        return await self._history.fetch_ohlcv(symbol, timeframe, since_ms, limit)

    async def fetch_ohlcv_range(
        self, symbol: str, timeframe: Timeframe, start_ms: int, end_ms: int, *, page_limit: int | None = None
    ) -> OhlcvRows:
        """Closed candles opening in [start_ms, end_ms), paged (see `OhlcvHistory`)."""
        return await self._history.fetch_ohlcv_range(
            symbol, timeframe, start_ms, end_ms, page_limit=page_limit
        )

    async def market_rules(self, symbols: Sequence[str]) -> list[MarketRules]:
        """The precision and limits of those `symbols` the venue lists, from its loaded markets."""
        rest = await self._clients.rest()
        listed = {
            rule.symbol: rule
            for rule in rules_from_markets(self.exchange, rest.markets, int(rest.precisionMode))
        }
        return [listed[symbol] for symbol in symbols if symbol in listed]

    async def close(self) -> None:
        """Stop every stream (their iterators end) and release sockets and HTTP sessions."""
        await self._trades.close()
        await self._clients.close()

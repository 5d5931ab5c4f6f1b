"""Live trades over ccxt.pro WebSockets: one watcher per symbol, reconnecting on its own.

Streaming model
    One watcher task per symbol, each with its own ccxt.pro client (sharing the markets the
    REST client loaded, so a reconnect costs no REST call). A socket that dies or stalls is then
    torn down and rebuilt for that symbol alone; the other symbols keep flowing. ccxt.pro opens
    one socket per client, so this is one socket per symbol: fine for the tens of markets a
    market-stream container follows, and it keeps "stale" a property of one socket.

Failure handling
    * Errors (ccxt `NetworkError`, exchange-side `ExchangeError`, `OSError`): the client is
      closed, the market is marked stale, and a new client connects after an exponential,
      jittered, capped delay (`Backoff`). The delay resets once data flows again.
    * Silence: if no message arrives on a symbol's socket for `stale_after_s`, the socket is
      presumed dead (a half-open TCP connection looks exactly like a quiet market) and is
      handled like an error. For an illiquid market, set `stale_after_s` above its normal
      quiet gaps; repeated silent reconnects back off like errors do.
    * Requests the exchange will never accept (bad symbol, authentication, unsupported) are
      not retried: they end the stream with the ccxt exception.

Notifications
    `on_event` receives a `StreamEvent`: STALE once when a market stops flowing, RECONNECTED
    once when data flows again, carrying the last trade time seen before the gap so the
    service can backfill candles over REST. `is_fresh` / `freshness` expose the same state for
    polling (health checks, metrics).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, cast

from tekoa.errors import NotFound
from tekoa.market.ccxt.client import FATAL_ERRORS, STREAM_RETRYABLE, ExchangeClients
from tekoa.market.ccxt.dedup import TradeWatermark
from tekoa.market.sources import TradeBatch

logger = logging.getLogger(__name__)


class StreamEventKind(StrEnum):
    """What happened to a market's live feed."""

    STALE = "stale"
    RECONNECTED = "reconnected"


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """A change in a market's feed, for the service to react to (alert, backfill).

    `last_trade_ms` is the newest trade emitted before the feed broke (None if none yet): on
    RECONNECTED, trades after it and before the first new batch may be missing and should be
    backfilled. `reason` says why the feed broke: "silent" (watchdog) or "error: <Type>".
    """

    kind: StreamEventKind
    exchange: str
    symbol: str
    at_ms: int
    reason: str
    last_trade_ms: int | None
    reconnects: int


@dataclass(frozen=True, slots=True)
class Freshness:
    """A market's feed health: `fresh` once data flows, until it stops."""

    fresh: bool
    last_message_ms: int | None
    last_trade_ms: int | None
    reconnects: int
    duplicates_dropped: int


@dataclass(slots=True)
class _SymbolState:
    fresh: bool = False
    lost_reason: str | None = None
    last_message_ms: int | None = None
    last_trade_ms: int | None = None
    reconnects: int = 0
    watermark: TradeWatermark = field(default_factory=TradeWatermark)

    def snapshot(self) -> Freshness:
        return Freshness(
            fresh=self.fresh,
            last_message_ms=self.last_message_ms,
            last_trade_ms=self.last_trade_ms,
            reconnects=self.reconnects,
            duplicates_dropped=self.watermark.dropped,
        )


class _Stalled(Exception):
    """No message within the staleness window."""


class _EndOfStream:
    """Queue marker: the source was closed."""


_END: Final = _EndOfStream()
_Queue = asyncio.Queue[TradeBatch | BaseException | _EndOfStream]


class _CacheReader:
    """Reads one ccxt.pro client's trade cache for one symbol, each trade once, in arrival order.

    ccxt.pro resolves a `watch_trades` call only when a message arrives while that call is
    pending; a message landing between two calls is cached but returned only with the next
    message, which on a quiet market can be minutes later, and is lost if the socket is torn
    down first. Reading the cache (`client.trades[symbol]`, a bounded deque of trade dicts)
    behind a cursor on the last trade object read avoids both. If the cursor has been evicted
    (more than `tradesLimit` trades between two reads), the whole cache is unread: trades
    beyond it are lost, which is logged.
    """

    def __init__(self, client: Any, symbol: str) -> None:
        self._client = client
        self._symbol = symbol
        self._cursor: object = None

    def _cache(self) -> Sequence[Mapping[str, Any]] | None:
        caches = getattr(self._client, "trades", None)
        cache = caches.get(self._symbol) if isinstance(caches, Mapping) else None
        return cast(Sequence[Mapping[str, Any]], cache) if isinstance(cache, list) else None

    def available(self) -> bool:
        """Whether this exchange keeps the cache where we look (true of ccxt.pro's binance)."""
        return self._cache() is not None

    def unread(self) -> list[Mapping[str, Any]]:
        """Trades appended since the previous call; advances the cursor."""
        cache = self._cache()
        if cache is None:
            return []
        tail: list[Mapping[str, Any]] = []
        for trade in reversed(cache):
            if trade is self._cursor:
                break
            tail.append(trade)
        else:
            if self._cursor is not None:
                logger.warning(
                    "trade cache overflowed between reads; trades lost", extra={"symbol": self._symbol}
                )
        if tail:
            tail.reverse()
            self._cursor = tail[-1]
        return tail


class TradeStreams:
    """The live trade feeds of one exchange; see the module docstring."""

    def __init__(
        self,
        clients: ExchangeClients,
        *,
        stale_after_s: float,
        on_event: Callable[[StreamEvent], None] | None,
        clock_ms: Callable[[], int],
        queue_size: int,
    ) -> None:
        if stale_after_s <= 0:
            raise ValueError("stale_after_s must be positive")
        self._clients = clients
        self.exchange = clients.exchange
        self._stale_after_s = stale_after_s
        self._on_event = on_event
        self._clock_ms = clock_ms
        self._queue_size = queue_size
        self._tasks: set[asyncio.Task[None]] = set()
        self._queues: set[_Queue] = set()
        self._states: dict[str, _SymbolState] = {}
        self._closed = False

    def is_fresh(self, symbol: str) -> bool:
        """True while `symbol`'s trades are flowing (False before the first message)."""
        state = self._states.get(symbol)
        return state is not None and state.fresh

    def freshness(self) -> dict[str, Freshness]:
        """Feed health of every symbol streamed so far."""
        return {symbol: state.snapshot() for symbol, state in self._states.items()}

    async def stream(self, symbols: Sequence[str]) -> AsyncIterator[TradeBatch]:
        """Yield trade batches for `symbols` until cancelled or closed; reconnects internally.

        Raises `NotFound` for a symbol the exchange does not list, and the ccxt exception for
        errors that retrying cannot fix. Batches of different symbols interleave.
        """
        if self._closed:
            raise RuntimeError("CcxtSource is closed")
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            return
        rest = await self._clients.rest()
        markets = cast(Mapping[str, Any], rest.markets)
        unknown = [symbol for symbol in wanted if symbol not in markets]
        if unknown:
            raise NotFound(f"{self.exchange} does not list {', '.join(unknown)}", field="symbols")
        queue: _Queue = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        tasks: list[asyncio.Task[None]] = []
        for symbol in wanted:
            self._states.setdefault(symbol, _SymbolState())
            task = asyncio.create_task(
                self._pump(symbol, queue), name=f"ccxt-trades:{self.exchange}:{symbol}"
            )
            tasks.append(task)
            self._tasks.add(task)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _EndOfStream):
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._queues.discard(queue)
            if not self._closed:  # close() cancels the watchers itself; cancelling twice cuts their cleanup
                for task in tasks:
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
            for symbol in wanted:
                self._states[symbol].fresh = False  # nobody is listening any more

    async def _pump(self, symbol: str, queue: _Queue) -> None:
        """Run one symbol's watcher; hand a fatal error to the consumer instead of dying silently."""
        try:
            await self._watch_symbol(symbol, queue)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception(
                "trade stream failed for good", extra={"exchange": self.exchange, "symbol": symbol}
            )
            await queue.put(exc)

    async def _watch_symbol(self, symbol: str, queue: _Queue) -> None:
        state = self._states[symbol]
        attempt = 0
        while not self._closed:
            client = self._clients.new_ws_client()
            reader = _CacheReader(client, symbol)
            received = False
            try:
                while not self._closed:
                    trades = await self._next_message(client, symbol)
                    received = True
                    self._on_message(symbol, state)
                    if not reader.available():
                        await self._emit_trades(symbol, state, trades, queue)
                        continue
                    # Drain until caught up: messages that landed while we waited on the queue
                    # resolved no watch, and would otherwise wait for the next message.
                    while unread := reader.unread():
                        await self._emit_trades(symbol, state, unread, queue)
            except _Stalled:
                reason = "silent"
            except FATAL_ERRORS:
                raise
            except STREAM_RETRYABLE as exc:
                reason = f"error: {type(exc).__name__}"
                logger.warning(
                    "trade stream error",
                    extra={"exchange": self.exchange, "symbol": symbol, "error": str(exc)},
                )
            finally:
                await self._clients.close_client(client)
            if self._closed:
                return
            # Trades that arrived just before the socket broke are in the cache, not yet emitted.
            if unread := reader.unread():
                await self._emit_trades(symbol, state, unread, queue)
            self._mark_lost(symbol, state, reason)
            attempt = 0 if received else attempt + 1
            delay = self._clients.backoff.delay_s(attempt, self._clients.rng)
            logger.info(
                "trade stream reconnecting",
                extra={
                    "exchange": self.exchange,
                    "symbol": symbol,
                    "reason": reason,
                    "attempt": attempt,
                    "delay_s": round(delay, 3),
                },
            )
            await asyncio.sleep(delay)

    async def _next_message(self, client: Any, symbol: str) -> Sequence[Mapping[str, Any]]:
        """Wait for the next trade message on `symbol`'s socket; `_Stalled` after silence.

        Returns ccxt's answer: the trades new since the previous call (`newUpdates` mode).
        """
        try:
            # asyncio.timeout, not wait_for: the watch runs in this task, so a cancellation that
            # races a message arrival cannot be swallowed (wait_for's flaw before Python 3.12).
            async with asyncio.timeout(self._stale_after_s):
                trades = await client.watch_trades(symbol, None, None, {})
        except TimeoutError:
            raise _Stalled(symbol) from None
        return cast(Sequence[Mapping[str, Any]], trades)

    def _on_message(self, symbol: str, state: _SymbolState) -> None:
        state.last_message_ms = self._clock_ms()
        if not state.fresh:
            self._mark_flowing(symbol, state)

    async def _emit_trades(
        self, symbol: str, state: _SymbolState, trades: Sequence[Mapping[str, Any]], queue: _Queue
    ) -> None:
        dropped_before = state.watermark.dropped
        batch = state.watermark.new_trades(self.exchange, symbol, trades, self._clock_ms())
        if state.watermark.dropped > dropped_before:
            logger.debug(
                "dropped repeated trades",
                extra={
                    "exchange": self.exchange,
                    "symbol": symbol,
                    "dropped": state.watermark.dropped - dropped_before,
                },
            )
        if batch is not None:
            state.last_trade_ms = int(batch.timestamps_ms[-1])
            await queue.put(batch)

    def _mark_lost(self, symbol: str, state: _SymbolState, reason: str) -> None:
        state.fresh = False
        if state.lost_reason is not None:
            return  # already reported; one STALE per outage, however many retries it takes
        state.lost_reason = reason
        self._emit(StreamEventKind.STALE, symbol, state, reason)

    def _mark_flowing(self, symbol: str, state: _SymbolState) -> None:
        state.fresh = True
        if state.lost_reason is None:
            return  # first data of the stream: nothing was lost
        reason, state.lost_reason = state.lost_reason, None
        state.reconnects += 1
        self._emit(StreamEventKind.RECONNECTED, symbol, state, reason)

    def _emit(self, kind: StreamEventKind, symbol: str, state: _SymbolState, reason: str) -> None:
        event = StreamEvent(
            kind=kind,
            exchange=self.exchange,
            symbol=symbol,
            at_ms=self._clock_ms(),
            reason=reason,
            last_trade_ms=state.last_trade_ms,
            reconnects=state.reconnects,
        )
        logger.warning(
            "market feed %s",
            kind.value,
            extra={
                "exchange": self.exchange,
                "symbol": symbol,
                "reason": reason,
                "last_trade_ms": state.last_trade_ms,
            },
        )
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            # An observer's bug must not take the feed down with it.
            logger.exception(
                "stream event callback failed", extra={"exchange": self.exchange, "symbol": symbol}
            )

    async def close(self) -> None:
        """End every stream (their iterators return) and stop the watchers."""
        self._closed = True
        for queue in list(self._queues):
            # Closing discards undelivered batches; make room so the end marker always fits.
            while queue.full():
                queue.get_nowait()
            queue.put_nowait(_END)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

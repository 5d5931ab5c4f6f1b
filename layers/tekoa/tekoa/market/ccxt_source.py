"""Live market data from a real exchange through ccxt: trades over WebSocket, candles over REST.

`CcxtSource` implements `MarketSource` at the edge of the system; nothing inward imports ccxt.

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
    service can backfill candles over REST (`fetch_ohlcv_range`). `is_fresh` / `freshness`
    expose the same state for polling (health checks, metrics).

Duplicates
    After a reconnect, venues and proxies may re-send recent trades, and ccxt.pro's trade cache
    (`tradesLimit`) is per client. Each symbol keeps a watermark: the newest trade time
    emitted and the ids emitted at that time. Trades older than the watermark, or at it with a
    seen id, are dropped, as are repeated ids within one message. This is cheap and exact for
    venues that stamp trades in order (Binance does); a venue that delivers a trade older than
    one already emitted loses it here. The aggregator still deduplicates on `trade_ids` (the
    contract of `TradeBatch`); this filter only keeps replays off the hot path.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeVar, cast

import ccxt
import ccxt.pro
import numpy as np
import numpy.typing as npt

from tekoa.domain.timeframes import Timeframe
from tekoa.errors import NotFound
from tekoa.market.sources import OhlcvRows, TradeBatch, trade_id_to_int

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Requests the exchange will refuse however often they are sent: surface them, do not retry.
_FATAL_ERRORS: Final = (ccxt.AuthenticationError, ccxt.BadRequest, ccxt.NotSupported, ccxt.ArgumentsRequired)
# Everything else a socket or an exchange throws at a live stream is worth reconnecting for.
_STREAM_RETRYABLE: Final = (ccxt.NetworkError, ccxt.ExchangeError, OSError)
# REST retries only what is transient by nature: a failed page must not be retried forever.
_REST_RETRYABLE: Final = (ccxt.NetworkError,)

_DEFAULT_PAGE_LIMIT: Final = 500
_MAX_BACKOFF_EXPONENT: Final = 64

# Options applied before the caller's config (which wins). Spot only: the platform streams
# unified spot symbols, and loading derivative markets would cost extra requests at start.
_BASE_CONFIG: Final[Mapping[str, Any]] = {
    "enableRateLimit": True,
    "options": {
        "defaultType": "spot",
        # ccxt.pro keeps this many trades per symbol between two watch calls; a slow consumer
        # beyond it would lose trades silently, so leave generous room.
        "tradesLimit": 10_000,
    },
}
_EXCHANGE_CONFIG: Final[Mapping[str, Mapping[str, Any]]] = {
    # Market data needs no currency metadata (a private endpoint on Binance) nor derivatives.
    "binance": {"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}},
}


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: `initial_s * factor**attempt`, capped at `max_s`, minus random jitter.

    Jitter takes up to `jitter` (a fraction) off each delay so that many containers losing the
    same exchange do not reconnect in lockstep.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number `attempt` (0 for the first retry)."""
        capped = min(self.max_s, self.initial_s * self.factor ** min(attempt, _MAX_BACKOFF_EXPONENT))
        return capped * (1.0 - self.jitter * rng.random())


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
    duplicates_dropped: int = 0
    watermark_ms: int = -1
    watermark_ids: set[int] = field(default_factory=set)

    def snapshot(self) -> Freshness:
        return Freshness(
            fresh=self.fresh,
            last_message_ms=self.last_message_ms,
            last_trade_ms=self.last_trade_ms,
            reconnects=self.reconnects,
            duplicates_dropped=self.duplicates_dropped,
        )


class _Stalled(Exception):
    """No message within the staleness window."""


class _EndOfStream:
    """Queue marker: the source was closed."""


_END: Final = _EndOfStream()


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


def _deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge nested mappings left to right; later layers win, nested dicts merge."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            current = merged.get(key)
            if isinstance(value, Mapping) and isinstance(current, dict):
                merged[key] = _deep_merge(current, value)
            elif isinstance(value, Mapping):
                merged[key] = _deep_merge(value)
            else:
                merged[key] = value
    return merged


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
        if exchange_id not in ccxt.pro.exchanges:
            raise NotFound(f"ccxt.pro has no exchange {exchange_id!r}", field="exchange")
        if stale_after_s <= 0:
            raise ValueError("stale_after_s must be positive")
        self.exchange = exchange_id
        self._config = _deep_merge(
            _BASE_CONFIG,
            _EXCHANGE_CONFIG.get(exchange_id, {}),
            config or {},
            {"urls": {"api": url_overrides}} if url_overrides else {},
        )
        self._stale_after_s = stale_after_s
        self._backoff = backoff or Backoff()
        self._on_event = on_event
        self._clock_ms = clock_ms or _wall_clock_ms
        self._rest_attempts = max(1, rest_attempts)
        self._close_timeout_s = close_timeout_s
        self._queue_size = queue_size
        # Jitter only spreads reconnects in time; it needs no cryptographic randomness.
        self._rng = rng or random.Random()  # noqa: S311
        self._rest: Any = None
        self._rest_lock = asyncio.Lock()
        self._ws_clients: set[Any] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._queues: set[asyncio.Queue[TradeBatch | BaseException | _EndOfStream]] = set()
        self._states: dict[str, _SymbolState] = {}
        self._closed = False

    # ------------------------------------------------------------------ freshness

    def is_fresh(self, symbol: str) -> bool:
        """True while `symbol`'s trades are flowing (False before the first message)."""
        state = self._states.get(symbol)
        return state is not None and state.fresh

    def freshness(self) -> dict[str, Freshness]:
        """Feed health of every symbol streamed so far."""
        return {symbol: state.snapshot() for symbol, state in self._states.items()}

    # ------------------------------------------------------------------ trades

    async def stream_trades(self, symbols: Sequence[str]) -> AsyncIterator[TradeBatch]:
        """Yield trade batches for `symbols` until cancelled or closed; reconnects internally.

        Raises `NotFound` for a symbol the exchange does not list, and the ccxt exception for
        errors that retrying cannot fix. Batches of different symbols interleave.
        """
        if self._closed:
            raise RuntimeError("CcxtSource is closed")
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            return
        rest = await self._rest_client()
        markets = cast(Mapping[str, Any], rest.markets)
        unknown = [symbol for symbol in wanted if symbol not in markets]
        if unknown:
            raise NotFound(f"{self.exchange} does not list {', '.join(unknown)}", field="symbols")
        queue: asyncio.Queue[TradeBatch | BaseException | _EndOfStream] = asyncio.Queue(self._queue_size)
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

    async def _pump(
        self, symbol: str, queue: asyncio.Queue[TradeBatch | BaseException | _EndOfStream]
    ) -> None:
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

    async def _watch_symbol(
        self, symbol: str, queue: asyncio.Queue[TradeBatch | BaseException | _EndOfStream]
    ) -> None:
        state = self._states[symbol]
        attempt = 0
        while not self._closed:
            client = self._new_ws_client()
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
            except _FATAL_ERRORS:
                raise
            except _STREAM_RETRYABLE as exc:
                reason = f"error: {type(exc).__name__}"
                logger.warning(
                    "trade stream error",
                    extra={"exchange": self.exchange, "symbol": symbol, "error": str(exc)},
                )
            finally:
                await self._close_client(client)
            if self._closed:
                return
            # Trades that arrived just before the socket broke are in the cache, not yet emitted.
            if unread := reader.unread():
                await self._emit_trades(symbol, state, unread, queue)
            self._mark_lost(symbol, state, reason)
            attempt = 0 if received else attempt + 1
            delay = self._backoff.delay_s(attempt, self._rng)
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
        self,
        symbol: str,
        state: _SymbolState,
        trades: Sequence[Mapping[str, Any]],
        queue: asyncio.Queue[TradeBatch | BaseException | _EndOfStream],
    ) -> None:
        batch = self._new_trades(symbol, state, trades)
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

    def _new_trades(
        self, symbol: str, state: _SymbolState, trades: Sequence[Mapping[str, Any]]
    ) -> TradeBatch | None:
        """Convert ccxt trades to a batch, dropping what this symbol already emitted."""
        count = len(trades)
        if count == 0:
            return None
        now = self._clock_ms()
        timestamps = np.fromiter(
            (now if t.get("timestamp") is None else int(t["timestamp"]) for t in trades), np.int64, count
        )
        prices = np.fromiter((float(t["price"]) for t in trades), np.float64, count)
        amounts = np.fromiter((float(t["amount"]) for t in trades), np.float64, count)
        ids = np.fromiter(
            (
                trade_id_to_int(
                    cast(str | int | None, t.get("id")),
                    # Without an id, a trade is what it says; identical id-less trades collapse.
                    trade_id_to_int(f"{ts}|{price!r}|{amount!r}", 0),
                )
                for t, ts, price, amount in zip(trades, timestamps, prices, amounts, strict=True)
            ),
            np.int64,
            count,
        )
        if count > 1 and bool(np.any(np.diff(timestamps) < 0)):
            order = np.argsort(timestamps, kind="stable")
            timestamps, prices, amounts, ids = timestamps[order], prices[order], amounts[order], ids[order]
        keep = self._unseen(state, timestamps, ids)
        dropped = count - len(keep)
        if dropped:
            state.duplicates_dropped += dropped
            logger.debug(
                "dropped repeated trades",
                extra={"exchange": self.exchange, "symbol": symbol, "dropped": dropped},
            )
        if len(keep) == 0:
            return None
        return TradeBatch(
            exchange=self.exchange,
            symbol=symbol,
            timestamps_ms=timestamps[keep],
            prices=prices[keep],
            amounts=amounts[keep],
            trade_ids=ids[keep],
        )

    @staticmethod
    def _unseen(
        state: _SymbolState, timestamps: npt.NDArray[np.int64], ids: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.intp]:
        """Indices (ascending) of trades past the watermark, first occurrence of each id; advances it."""
        fresh = timestamps > state.watermark_ms
        if state.watermark_ids:
            at_mark = timestamps == state.watermark_ms
            seen = np.fromiter(state.watermark_ids, np.int64, len(state.watermark_ids))
            fresh |= at_mark & ~np.isin(ids, seen)
        candidates = np.flatnonzero(fresh)
        _, first = np.unique(ids[candidates], return_index=True)
        keep = candidates[np.sort(first)]
        if len(keep):
            newest = int(timestamps[keep[-1]])
            at_newest = {int(i) for i in ids[keep][timestamps[keep] == newest]}
            if newest > state.watermark_ms:
                state.watermark_ms, state.watermark_ids = newest, at_newest
            else:
                state.watermark_ids |= at_newest
        return keep

    # ------------------------------------------------------------------ candles

    async def fetch_ohlcv(self, symbol: str, timeframe: Timeframe, since_ms: int, limit: int) -> OhlcvRows:
        """Closed candles opening at or after `since_ms`, at most `limit` (one exchange page).

        The candle still open at `clock_ms()` is never returned, even though exchanges
        (Binance included) serve it with its running values.
        """
        raw = await self._fetch_page(symbol, timeframe, since_ms, limit)
        return self._closed_rows(raw, timeframe, since_ms, end_ms=None)

    async def fetch_ohlcv_range(
        self,
        symbol: str,
        timeframe: Timeframe,
        start_ms: int,
        end_ms: int,
        *,
        page_limit: int | None = None,
    ) -> OhlcvRows:
        """Closed candles opening in [start_ms, end_ms), paging by the exchange's limit.

        Used for backfill after a gap and for history at start. `page_limit` defaults to the
        largest page ccxt says the exchange serves.
        """
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
        rest = await self._rest_client()

        async def call() -> list[list[Any]]:
            rows = await rest.fetch_ohlcv(symbol, timeframe.value, since_ms, limit)
            return cast(list[list[Any]], rows)

        return await self._with_retries("fetch_ohlcv", call)

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
        rest = await self._rest_client()
        features = cast(Mapping[str, Any], getattr(rest, "features", None) or {})
        spot = features.get("spot") or {}
        ohlcv = spot.get("fetchOHLCV") or {} if isinstance(spot, Mapping) else {}
        limit = ohlcv.get("limit") if isinstance(ohlcv, Mapping) else None
        return int(limit) if isinstance(limit, int) and limit > 0 else _DEFAULT_PAGE_LIMIT

    # ------------------------------------------------------------------ clients

    async def _rest_client(self) -> Any:
        """The REST client with markets loaded (once; retried while the exchange is unreachable)."""
        async with self._rest_lock:
            if self._rest is None:
                self._rest = self._make_client()
            rest = self._rest
            if not rest.markets:

                async def load() -> object:
                    return cast(object, await rest.load_markets())

                await self._with_retries("load_markets", load)
        return rest

    def _make_client(self) -> Any:
        exchange_class = getattr(ccxt.pro, self.exchange)
        return exchange_class(_deep_merge(self._config))

    def _new_ws_client(self) -> Any:
        client = self._make_client()
        client.set_markets_from_exchange(self._rest)
        self._ws_clients.add(client)
        return client

    async def _close_client(self, client: Any) -> None:
        self._ws_clients.discard(client)
        closing = asyncio.create_task(self._close_quietly(client))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            # Being cancelled must not leak the socket: finish releasing it, then go on cancelling.
            await asyncio.wait([closing])
            raise

    async def _close_quietly(self, client: Any) -> None:
        try:
            # A dead peer may never answer the close handshake: do not wait on it forever.
            async with asyncio.timeout(self._close_timeout_s):
                await client.close()
        except Exception as exc:
            logger.warning(
                "closing ccxt client failed", extra={"exchange": self.exchange, "error": repr(exc)}
            )

    async def _with_retries(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        for attempt in itertools.count():
            try:
                return await call()
            except _REST_RETRYABLE as exc:
                if attempt + 1 >= self._rest_attempts:
                    raise
                delay = self._backoff.delay_s(attempt, self._rng)
                logger.warning(
                    "exchange request failed, retrying",
                    extra={
                        "exchange": self.exchange,
                        "request": what,
                        "attempt": attempt + 1,
                        "delay_s": round(delay, 3),
                        "error": str(exc),
                    },
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Stop every stream (their iterators end) and release sockets and HTTP sessions."""
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
        for client in list(self._ws_clients):
            await self._close_client(client)
        if self._rest is not None:
            rest, self._rest = self._rest, None
            await self._close_client(rest)


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

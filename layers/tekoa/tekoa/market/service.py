"""The market-stream service: trades → candles → PostgreSQL → `candle.closed` on EventBridge.

One asyncio process (the Fargate task, or a thread of `tekoa up`) that:

* streams trades for every followed market: the configured default symbols plus the markets of
  running bots (re-read every `poll_s`, so subscriptions change without a restart), one task
  per market so adding or dropping one never disturbs the others;
* aggregates them (`StreamingAggregator`, all timeframes); a clock tick every `tick_s` calls
  `advance(now)` so a quiet market's candle still closes on time;
* writes closed candles (never the forming one) with `announced = false`, then publishes their
  events in PutEvents batches of ten and marks them announced — a transactional outbox;
* repairs gaps from the source's REST history on start, after every stall or reconnect, and
  every `backfill_every_s` (see `tekoa.market.backfill`), and applies candle retention;
* keeps a `fresh` flag per market: false from start, while a feed is silent for
  `stale_after_s` and until the repair after it; true once history is whole and data flows;
* serves `GET /health` (JSON: per-market freshness, newest candle, counters), and every
  `metrics_every_s` publishes the age of the stalest market's newest closed candle as a
  CloudWatch metric (the candle-freshness alarm watches it);
* traces each candle write and event batch (`tekoa.observability.traced`);
* on SIGTERM: stops the sources, closes only candles whose time is over, writes and
  announces them, and exits within `stop_budget_s` (Fargate's stop timeout is 45 s).

Crash-only: the process may die at any line. Restart seeds the aggregator with the newest stored
candle of every series (`resume_from`), so nothing stored is rebuilt or re-announced; the
candles forming at the crash were never stored and come back from REST history as gaps; the
first candle of each timeframe after a (re)start or reconnect is built from part of its trades,
so it is re-fetched from REST once it has closed. Events are at-least-once: a crash between
publishing and marking a candle announced publishes it again after restart. Consumers
deduplicate on (exchange, symbol, timeframe, open_time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from aiohttp import web
from aws_lambda_powertools.metrics import MetricUnit

from tekoa.aws.events import BusEvent, EventPublisher
from tekoa.db import candles as candle_store
from tekoa.db.connection import Database, service_transaction
from tekoa.domain.candles import Candle, decimal_text
from tekoa.domain.timeframes import ALL_TIMEFRAMES, Timeframe
from tekoa.errors import NotFound
from tekoa.market.backfill import DEFAULT_PAGE_LIMIT, repair_series
from tekoa.market.sources import MarketSource, TradeBatch
from tekoa.market.streaming import StreamingAggregator
from tekoa.names import EventType
from tekoa.observability import CANDLE_AGE_METRIC, logger, metrics, start_process_tracing, traced

DAY_MS = 86_400_000


def candle_event(candle: Candle) -> BusEvent:
    """The `candle.closed` event of a stored candle: ms timestamps, decimals as strings."""
    return BusEvent(
        detail_type=EventType.CANDLE_CLOSED,
        detail={
            "exchange": candle.exchange,
            "symbol": candle.symbol,
            "timeframe": candle.timeframe.value,
            "open_time": candle.open_time,
            "close_time": candle.close_time,
            "open": decimal_text(candle.open),
            "high": decimal_text(candle.high),
            "low": decimal_text(candle.low),
            "close": decimal_text(candle.close),
            "volume": decimal_text(candle.volume),
            "trades": candle.trades,
        },
    )


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How the service behaves; `from_settings` maps the process settings onto it."""

    default_symbols: tuple[str, ...]
    timeframes: tuple[Timeframe, ...] = ALL_TIMEFRAMES
    follow_bots: bool = True
    tick_s: float = 1.0
    poll_s: float = 30.0
    backfill_every_s: float = 300.0
    history_days: float = 2.0
    stale_after_s: float = 30.0
    grace_ms: int = 2_000
    page_limit: int = DEFAULT_PAGE_LIMIT
    retention_days: Mapping[str, int | None] = field(default_factory=dict)
    retention_every_s: float = 3_600.0
    health_host: str = "127.0.0.1"
    health_port: int | None = 8080
    """None: no health server; 0: any free port (see `MarketStreamService.health_url`)."""
    stop_budget_s: float = 25.0
    retry_after_s: float = 5.0
    metrics_every_s: float | None = None
    """None: publish no metrics (locally, in tests); in AWS every minute."""


@dataclass(slots=True)
class _Suspect:
    """Trades in `[lo, hi]` may be missing; `done`: timeframes whose candles were replaced."""

    lo: int
    hi: int
    done: set[Timeframe] = field(default_factory=set)

    def due(self, timeframe: Timeframe, now_ms: int, grace_ms: int) -> bool:
        """Not yet replaced, and the last candle overlapping the range has closed."""
        return timeframe not in self.done and timeframe.open_time(self.hi) + timeframe.ms + grace_ms <= now_ms


@dataclass(slots=True)
class _Market:
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
    suspect: list[_Suspect] = field(default_factory=list)
    last_candle_open_ms: int | None = None
    batches: int = 0
    candles: int = 0
    stalls: int = 0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class MarketStreamService:
    """See the module docstring. `run()` until `request_stop()` (or a signal via `main`)."""

    def __init__(
        self,
        source: MarketSource,
        database: Database,
        publisher: EventPublisher | None,
        config: StreamConfig,
        *,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.source = source
        self.exchange = source.exchange
        self.database = database
        self.publisher = publisher
        self.config = config
        self.clock_ms = clock_ms or _wall_ms
        self.aggregator = StreamingAggregator(config.timeframes, grace_ms=config.grace_ms)
        self.markets: dict[str, _Market] = {}
        self._pending: list[Candle] = []
        # Serialises flushes: a repair's REST rows land after the stream's own rows for the same
        # buckets (a half-built candle must not win), and each candle is announced once.
        self._write_lock = asyncio.Lock()
        self._announce_due = True
        self._stop = asyncio.Event()
        self._repair_wakeup = asyncio.Event()
        self._last_tick_wall = time.monotonic()
        self._started_ms = self.clock_ms()
        self._last_metrics_wall = 0.0
        self._health_runner: web.AppRunner | None = None
        self.health_url: str | None = None
        self.counters: dict[str, int] = {
            "candles_written": 0,
            "events_published": 0,
            "publish_failures": 0,
            "write_failures": 0,
            "repairs": 0,
            "repair_failures": 0,
            "candles_repaired": 0,
            "retention_deleted": 0,
        }
        self._bots_query_failed = False

    # -- lifecycle -----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Begin a graceful stop (safe from a signal handler on the loop)."""
        self._stop.set()

    async def run(self) -> None:
        """Start, stream until asked to stop, then flush and return."""
        await self._start_health()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._follow(await self._desired_symbols())
            tasks = [
                asyncio.create_task(self._tick_loop(), name="market-tick"),
                asyncio.create_task(self._repair_loop(), name="market-repair"),
                asyncio.create_task(self._poll_loop(), name="market-poll"),
            ]
            stop_waiter = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([stop_waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            stop_waiter.cancel()
            for task in done:
                if task is not stop_waiter and task.exception() is not None:
                    logger.error("market stream loop died", extra={"task": task.get_name()})
                    raise task.exception()  # type: ignore[misc]
        finally:
            await asyncio.wait_for(self._shutdown(tasks), timeout=self.config.stop_budget_s)

    async def _shutdown(self, tasks: Sequence[asyncio.Task[None]]) -> None:
        started = time.monotonic()
        streams = [m.task for m in self.markets.values() if m.task is not None]
        for task in [*tasks, *streams]:
            task.cancel()
        await asyncio.gather(*tasks, *streams, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.source.close()
        # Close what is over (never the forming candle), write it, announce it.
        self._pending += self.aggregator.advance(self.clock_ms())
        try:
            await self._flush()
        except Exception:
            logger.exception("final flush failed; unannounced candles are published after restart")
        await self._stop_health()
        logger.info(
            "market stream stopped",
            extra={"seconds": round(time.monotonic() - started, 3), **self.counters},
        )

    # -- which markets ------------------------------------------------------------------------

    async def _desired_symbols(self) -> list[str]:
        wanted = list(self.config.default_symbols)
        if self.config.follow_bots:
            try:
                pairs = await asyncio.to_thread(self._bot_markets)
                wanted += [symbol for exchange, symbol in pairs if exchange == self.exchange]
                self._bots_query_failed = False
            except psycopg.errors.UndefinedTable:
                if not self._bots_query_failed:
                    logger.warning("no bots table yet: following the default symbols only")
                self._bots_query_failed = True
            except psycopg.Error:
                logger.exception("reading the bots' markets failed; keeping the current set")
                return list(self.markets)
        return list(dict.fromkeys(wanted))

    def _bot_markets(self) -> list[tuple[str, str]]:
        with self.database.connection() as conn, service_transaction(conn):
            return candle_store.markets_with_running_bots(conn)

    async def _follow(self, symbols: Sequence[str]) -> None:
        """Start streaming new symbols (after seeding them from the store); stop dropped ones."""
        wanted = set(symbols)
        for symbol in [s for s in self.markets if s not in wanted]:
            market = self.markets.pop(symbol)
            if market.task is not None:
                market.task.cancel()
                await asyncio.gather(market.task, return_exceptions=True)
            logger.info("market unsubscribed", extra={"exchange": self.exchange, "symbol": symbol})
        for symbol in symbols:
            if symbol in self.markets:
                continue
            last_closed = await asyncio.to_thread(self._register, symbol)
            self.aggregator.resume_from({(self.exchange, symbol, tf): t for tf, t in last_closed.items()})
            market = _Market(symbol=symbol, started_wall=time.monotonic())
            market.last_candle_open_ms = last_closed.get(self.config.timeframes[0])
            # The candle forming now is built from part of its trades: replace it once closed.
            now = self.clock_ms()
            market.suspect.append(_Suspect(now, now))
            self.markets[symbol] = market
            market.task = asyncio.create_task(self._stream(market), name=f"market-stream:{symbol}")
            logger.info("market subscribed", extra={"exchange": self.exchange, "symbol": symbol})
        self._repair_wakeup.set()

    def _register(self, symbol: str) -> dict[Timeframe, int]:
        with self.database.connection() as conn, service_transaction(conn):
            candle_store.ensure_market(conn, self.exchange, symbol)
            candle_store.set_freshness(conn, self.exchange, symbol, fresh=False, reason="starting")
            return candle_store.last_closed_open_times(conn, self.exchange, symbol)

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_s)
            await self._follow(await self._desired_symbols())

    # -- trades in ----------------------------------------------------------------------------

    async def _stream(self, market: _Market) -> None:
        """Feed one market's trades to the aggregator; restart the feed after errors.

        A stream that ends without an error (a replay reaching its end, a closed source) is
        restarted after `poll_s`; silence meanwhile is the watchdog's to judge.
        """
        while True:
            try:
                async for batch in self.source.stream_trades([market.symbol]):
                    self._on_batch(market, batch)
            except asyncio.CancelledError:
                raise
            except NotFound as exc:
                market.unavailable = exc.message
                logger.error("market not available on the exchange", extra={"symbol": market.symbol})
                await asyncio.sleep(self.config.poll_s)
                continue
            except Exception:
                logger.exception("trade stream failed; restarting", extra={"symbol": market.symbol})
                self._mark_stale(market, "stream error")
                await asyncio.sleep(self.config.retry_after_s)
                continue
            logger.info("trade stream ended", extra={"symbol": market.symbol})
            await asyncio.sleep(self.config.poll_s)

    def _on_batch(self, market: _Market, batch: TradeBatch) -> None:
        if len(batch) == 0:
            return
        market.last_batch_wall = time.monotonic()
        market.batches += 1
        market.unavailable = None
        first_ms = int(batch.timestamps_ms[0])
        if market.stale:
            self._recovered(market, first_ms)
        market.last_trade_ms = int(batch.timestamps_ms[-1])
        self._take(self.aggregator.ingest(batch))

    def _take(self, closed: list[Candle]) -> None:
        if not closed:
            return
        self._pending += closed
        finest = self.config.timeframes[0]
        for candle in closed:
            if candle.timeframe is finest:
                market = self.markets.get(candle.symbol)
                if market is not None:
                    market.last_candle_open_ms = candle.open_time
                    market.candles += 1

    def _mark_stale(self, market: _Market, reason: str) -> None:
        if market.stale:
            return
        market.stale = True
        market.stalls += 1
        logger.warning(
            "market feed stale", extra={"exchange": self.exchange, "symbol": market.symbol, "reason": reason}
        )

    def _recovered(self, market: _Market, resumed_ms: int) -> None:
        """Data flows again: what fell between the last trade and now must come from REST."""
        market.stale = False
        since = market.last_trade_ms if market.last_trade_ms is not None else resumed_ms
        market.suspect.append(_Suspect(since, resumed_ms))
        market.repaired = False
        market.repair_requested = True
        self._repair_wakeup.set()
        logger.info("market feed recovered", extra={"exchange": self.exchange, "symbol": market.symbol})

    def on_source_event(self, event: Any) -> None:
        """Hook for sources that report feed health (e.g. `CcxtSource(on_event=...)`)."""
        market = self.markets.get(str(getattr(event, "symbol", "")))
        kind = str(getattr(event, "kind", ""))
        if market is None:
            return
        if kind == "stale":
            self._mark_stale(market, str(getattr(event, "reason", "source")))
        elif kind == "reconnected" and not market.stale:
            # Reconnected before the watchdog noticed: still a hole to repair.
            market.stale = True
            self._recovered(market, self.clock_ms())

    # -- clock, writes, events ---------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            self._last_tick_wall = time.monotonic()
            self._take(self.aggregator.advance(self.clock_ms()))
            self._watch_staleness()
            try:
                await self._flush()
            except Exception:
                logger.exception("writing candles failed; retrying on the next tick")
            await self._publish_freshness()
            self._emit_metrics()

    def candle_age_s(self) -> float:
        """Seconds since the newest 1m (finest) candle of the stalest followed market closed.

        A market with no candle yet counts from when the service started following markets; with
        no market followed there is nothing to be stale (0).
        """
        now_ms = self.clock_ms()
        finest_ms = self.config.timeframes[0].ms
        ages = [
            now_ms
            - (m.last_candle_open_ms + finest_ms if m.last_candle_open_ms is not None else self._started_ms)
            for m in self.markets.values()
        ]
        return max(0.0, max(ages, default=0) / 1000)

    def _emit_metrics(self) -> None:
        every = self.config.metrics_every_s
        if every is None or time.monotonic() - self._last_metrics_wall < every:
            return
        self._last_metrics_wall = time.monotonic()
        metrics.add_metric(name=CANDLE_AGE_METRIC, unit=MetricUnit.Seconds, value=self.candle_age_s())
        metrics.flush_metrics()

    def _watch_staleness(self) -> None:
        now = time.monotonic()
        for market in self.markets.values():
            if market.stale or market.task is None:
                continue
            last = market.last_batch_wall if market.last_batch_wall is not None else market.started_wall
            if now - last > self.config.stale_after_s:
                self._mark_stale(market, "silent" if market.last_batch_wall else "no data yet")

    async def _flush(self) -> None:
        """Write pending closed candles (not yet announced), then announce what is unannounced."""
        async with self._write_lock:
            if self._pending:
                batch, self._pending = self._pending, []
                try:
                    await asyncio.to_thread(self._write, batch)
                except Exception:
                    self.counters["write_failures"] += 1
                    self._pending = batch + self._pending
                    raise
                self.counters["candles_written"] += len(batch)
                self._announce_due = True
            # Under the lock too: two concurrent announcers would publish the same candles.
            if self._announce_due and self.publisher is not None:
                await self._announce()

    def _write(self, candles: list[Candle]) -> None:
        with (
            traced("market-stream.write-candles"),
            self.database.connection() as conn,
            service_transaction(conn),
        ):
            candle_store.upsert_candles(conn, candles, announced=False)

    @staticmethod
    def _publish(publisher: EventPublisher, events: list[BusEvent]) -> None:
        with traced("market-stream.publish-events"):
            publisher.publish(events)

    async def _announce(self) -> None:
        publisher = self.publisher
        assert publisher is not None
        while True:
            pending = await asyncio.to_thread(self._unannounced)
            if not pending:
                self._announce_due = False
                return
            try:
                await asyncio.to_thread(self._publish, publisher, [candle_event(c) for c in pending])
            except Exception:
                self.counters["publish_failures"] += 1
                logger.exception(
                    "publishing candle events failed; retrying later", extra={"events": len(pending)}
                )
                return
            await asyncio.to_thread(self._mark_announced, pending)
            self.counters["events_published"] += len(pending)

    def _unannounced(self) -> list[Candle]:
        with self.database.connection() as conn, service_transaction(conn):
            return candle_store.unannounced_candles(conn, self.exchange, limit=500)

    def _mark_announced(self, candles: list[Candle]) -> None:
        with self.database.connection() as conn, service_transaction(conn):
            candle_store.mark_announced(conn, candles)

    async def _publish_freshness(self) -> None:
        changes = []
        for market in self.markets.values():
            fresh = market.repaired and not market.stale and market.unavailable is None
            if fresh != market.fresh:
                market.fresh = fresh
                reason = market.unavailable or ("stale feed" if market.stale else "repairing history")
                changes.append((market.symbol, fresh, reason))
        if changes:
            try:
                await asyncio.to_thread(self._write_freshness, changes)
            except Exception:
                for market in self.markets.values():
                    market.fresh = None  # unknown: write again next tick
                logger.exception("writing market freshness failed")

    def _write_freshness(self, changes: list[tuple[str, bool, str]]) -> None:
        with self.database.connection() as conn, service_transaction(conn):
            for symbol, fresh, reason in changes:
                candle_store.set_freshness(conn, self.exchange, symbol, fresh=fresh, reason=reason)
                logger.info("market freshness", extra={"symbol": symbol, "fresh": fresh, "reason": reason})

    # -- gap repair and retention ---------------------------------------------------------------

    async def _repair_loop(self) -> None:
        last_scheduled = time.monotonic()
        last_retention = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._repair_wakeup.wait(), timeout=self.config.tick_s)
            self._repair_wakeup.clear()
            if time.monotonic() - last_scheduled >= self.config.backfill_every_s:
                last_scheduled = time.monotonic()
                for market in self.markets.values():
                    market.repair_requested = True
            now = self.clock_ms()
            for market in list(self.markets.values()):
                if market.stale or market.unavailable is not None:
                    continue
                if market.repair_requested or self._suspect_due(market, now):
                    await self._repair(market, now)
            if (
                self.config.retention_days
                and time.monotonic() - last_retention >= self.config.retention_every_s
            ):
                last_retention = time.monotonic()
                await self._apply_retention(now)

    def _suspect_due(self, market: _Market, now_ms: int) -> bool:
        return any(
            suspect.due(tf, now_ms, self.config.grace_ms)
            for suspect in market.suspect
            for tf in self.config.timeframes
        )

    async def _repair(self, market: _Market, now_ms: int) -> None:
        history_start = now_ms - int(self.config.history_days * DAY_MS)
        due = {
            tf: [s for s in market.suspect if s.due(tf, now_ms, self.config.grace_ms)]
            for tf in self.config.timeframes
        }
        # Cleared before the awaits: a stall or request arriving meanwhile asks for another pass.
        market.repair_requested = False
        try:
            # Every candle the repair may replace has ended by `now_ms`: close and write the
            # stream's versions first, so the exchange's history is what stays.
            self._take(self.aggregator.advance(now_ms))
            await self._flush()
            repaired = 0
            for tf in self.config.timeframes:
                result = await repair_series(
                    self.source,
                    self.database,
                    market.symbol,
                    tf,
                    now_ms=now_ms,
                    history_start_ms=history_start,
                    overwrite=[(s.lo, tf.open_time(s.hi) + tf.ms) for s in due[tf]],
                    page_limit=self.config.page_limit,
                )
                repaired += result.written
                for suspect in due[tf]:
                    suspect.done.add(tf)
        except asyncio.CancelledError:
            market.repair_requested = True
            raise
        except Exception:
            market.repair_requested = True
            self.counters["repair_failures"] += 1
            logger.exception("gap repair failed; retrying later", extra={"symbol": market.symbol})
            return
        # A range stays suspect until the candle of every timeframe overlapping it was replaced.
        market.suspect = [s for s in market.suspect if len(s.done) < len(self.config.timeframes)]
        market.repaired = True
        self.counters["repairs"] += 1
        self.counters["candles_repaired"] += repaired

    async def _apply_retention(self, now_ms: int) -> None:
        try:
            deleted = await asyncio.to_thread(self._delete_old, now_ms)
        except Exception:
            logger.exception("candle retention failed")
            return
        self.counters["retention_deleted"] += deleted

    def _delete_old(self, now_ms: int) -> int:
        deleted = 0
        with self.database.connection() as conn, service_transaction(conn):
            for tf, days in self.config.retention_days.items():
                if days is not None:
                    deleted += candle_store.delete_older_than(conn, Timeframe(tf), now_ms - days * DAY_MS)
        return deleted

    # -- health ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """What GET /health answers: overall status, per-market feed state, counters."""
        wedged = time.monotonic() - self._last_tick_wall > max(30.0, 10 * self.config.tick_s)
        stats = self.aggregator.stats
        return {
            "status": "stopping" if self._stop.is_set() else ("wedged" if wedged else "ok"),
            "exchange": self.exchange,
            "now_ms": self.clock_ms(),
            "markets": {
                m.symbol: {
                    "fresh": bool(m.fresh),
                    "stale": m.stale,
                    "unavailable": m.unavailable,
                    "last_trade_ms": m.last_trade_ms,
                    "last_candle_open_ms": m.last_candle_open_ms,
                    "batches": m.batches,
                    "candles": m.candles,
                    "stalls": m.stalls,
                }
                for m in self.markets.values()
            },
            "counters": {
                **self.counters,
                "trades_in": stats.trades_in,
                "duplicates": stats.duplicates,
                "late_trades": stats.late_trades,
                "pending_candles": len(self._pending),
            },
        }

    async def _start_health(self) -> None:
        if self.config.health_port is None:
            return

        async def handle(_: web.Request) -> web.Response:
            body = self.health()
            status = 200 if body["status"] == "ok" else 503
            return web.Response(text=json.dumps(body), status=status, content_type="application/json")

        app = web.Application()
        app.router.add_get("/health", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.health_host, self.config.health_port)
        await site.start()
        self._health_runner = runner
        port = self.config.health_port
        server = getattr(site, "_server", None)
        if port == 0 and server is not None and server.sockets:
            port = int(server.sockets[0].getsockname()[1])
        self.health_url = f"http://{self.config.health_host}:{port}/health"

    async def _stop_health(self) -> None:
        if self._health_runner is not None:
            await self._health_runner.cleanup()
            self._health_runner = None


# -- process entry ---------------------------------------------------------------------------


def config_from_settings(settings: Any, **overrides: Any) -> StreamConfig:
    """The service's configuration from `tekoa.settings.Settings`."""
    values: dict[str, Any] = {
        "default_symbols": settings.market_symbol_list,
        "poll_s": settings.market_poll_s,
        "backfill_every_s": settings.market_backfill_every_s,
        "history_days": settings.market_history_days,
        "stale_after_s": settings.market_stale_after_s,
        "retention_days": dict(settings.candle_retention_days),
        "health_host": settings.market_health_host,
        "health_port": settings.market_health_port,
        "metrics_every_s": settings.market_metrics_every_s,
    }
    values.update(overrides)
    return StreamConfig(**values)


def build_source(
    settings: Any, on_event: Callable[[Any], None] | None = None
) -> tuple[MarketSource, Callable[[], int]]:
    """The configured source and the clock that closes its candles."""
    if settings.market_exchange == "simulated":
        from tekoa.market.simulated import SimulatedExchange

        simulated = SimulatedExchange(settings.market_symbol_list, speed=settings.market_simulated_speed)
        return simulated, simulated.now_ms
    from tekoa.market.ccxt_source import CcxtSource

    return CcxtSource(
        settings.market_exchange, stale_after_s=settings.market_stale_after_s, on_event=on_event
    ), _wall_ms


async def serve(settings: Any) -> None:
    """Run the service for this process's settings until SIGTERM/SIGINT."""
    from tekoa.aws.events import EventBridgePublisher
    from tekoa.aws.secrets import database_conninfo
    from tekoa.db.connection import PooledDatabase

    database = PooledDatabase(database_conninfo(settings), max_size=4)
    holder: list[MarketStreamService] = []
    source, clock = build_source(
        settings, on_event=lambda event: holder[0].on_source_event(event) if holder else None
    )
    service = MarketStreamService(
        source, database, EventBridgePublisher(settings), config_from_settings(settings), clock_ms=clock
    )
    holder.append(service)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)
    try:
        await service.run()
    finally:
        await asyncio.to_thread(database.close)


def main() -> None:
    """Process entry point (the Fargate container's command)."""
    from tekoa.settings import get_settings

    settings = get_settings()
    logger.setLevel(settings.log_level)
    start_process_tracing("tekoa-market-stream")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()

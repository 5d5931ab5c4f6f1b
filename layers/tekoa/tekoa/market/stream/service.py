"""The market-stream service: trades → candles → PostgreSQL → `candle.closed` on EventBridge.

One asyncio process (the Fargate task, or the `market-stream` part of `tekoa up`: the same
entry point, `main`, in both) that:

* streams trades for every followed market: the configured default symbols plus the markets of
  running bots (re-read every `poll_s`, so subscriptions change without a restart), one task
  per market so adding or dropping one never disturbs the others;
* aggregates them (`StreamingAggregator`, all timeframes); a clock tick every `tick_s` calls
  `advance(now)` so a quiet market's candle still closes on time;
* writes closed candles (never the forming one) and announces them (`outbox`);
* with `trading`: stores each followed market's rules, writes each market's last trade every
  tick and triggers resting paper orders the trades reach (`trading`);
* repairs gaps from the source's REST history and applies candle retention (`repair`);
* keeps a `fresh` flag per market: false from start, while a feed is silent for
  `stale_after_s` and until the repair after it; true once history is whole and data flows;
* serves `GET /health` (`health`: per-market freshness, newest candle, counters), and every
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
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from aws_lambda_powertools.metrics import MetricUnit

from tekoa.aws.events import EventPublisher
from tekoa.db import candles as candle_store
from tekoa.db.connection import Database, service_transaction
from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import Timeframe
from tekoa.errors import NotFound
from tekoa.market.sources import MarketSource, TradeBatch
from tekoa.market.stream.config import StreamConfig, config_from_settings
from tekoa.market.stream.feeds import MarketFeed, Suspect
from tekoa.market.stream.health import HealthServer
from tekoa.market.stream.outbox import CandleOutbox
from tekoa.market.stream.repair import GapRepair
from tekoa.market.stream.trading import StreamTrading
from tekoa.market.streaming import StreamingAggregator
from tekoa.observability import CANDLE_AGE_METRIC, logger, metrics, start_process_tracing


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
        trading: StreamTrading | None = None,
    ) -> None:
        self.source = source
        self.trading = trading
        self.exchange = source.exchange
        self.database = database
        self.config = config
        self.clock_ms = clock_ms or _wall_ms
        self.aggregator = StreamingAggregator(config.timeframes, grace_ms=config.grace_ms)
        self.markets: dict[str, MarketFeed] = {}
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
        self.outbox = CandleOutbox(self.exchange, database, publisher, self.counters)
        self.repair = GapRepair(
            source, database, config, self.markets, self.counters, self._close_ended, self.clock_ms
        )
        self._stop = asyncio.Event()
        self._last_tick_wall = time.monotonic()
        self._started_ms = self.clock_ms()
        self._last_metrics_wall = 0.0
        self._health: HealthServer | None = None
        self._bots_query_failed = False

    @property
    def health_url(self) -> str | None:
        """Where GET /health is served (None until started, or without a health port)."""
        return self._health.url if self._health is not None else None

    # -- lifecycle -----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Begin a graceful stop (safe from a signal handler on the loop)."""
        self._stop.set()

    async def run(self) -> None:
        """Start, stream until asked to stop, then flush and return."""
        if self.config.health_port is not None:
            self._health = HealthServer(self.config.health_host, self.config.health_port, self.health)
            await self._health.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._follow(await self._desired_symbols())
            tasks = [
                asyncio.create_task(self._tick_loop(), name="market-tick"),
                asyncio.create_task(self.repair.run(), name="market-repair"),
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
        self.outbox.add(self.aggregator.advance(self.clock_ms()))
        try:
            await self.outbox.flush()
        except Exception:
            logger.exception("final flush failed; unannounced candles are published after restart")
        if self.trading is not None:
            await self.trading.tick(list(self.markets))  # the last prices, triggers not yet sent
        if self._health is not None:
            await self._health.stop()
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
            market = MarketFeed(symbol=symbol, started_wall=time.monotonic())
            market.last_candle_open_ms = last_closed.get(self.config.timeframes[0])
            # The candle forming now is built from part of its trades: replace it once closed.
            now = self.clock_ms()
            market.suspect.append(Suspect(now, now))
            self.markets[symbol] = market
            market.task = asyncio.create_task(self._stream(market), name=f"market-stream:{symbol}")
            logger.info("market subscribed", extra={"exchange": self.exchange, "symbol": symbol})
        if self.trading is not None:
            await self.trading.follow(self.source, list(self.markets))
        self.repair.wakeup.set()

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

    async def _stream(self, market: MarketFeed) -> None:
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

    def _on_batch(self, market: MarketFeed, batch: TradeBatch) -> None:
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
        if self.trading is not None:
            self.trading.observe(batch)

    def _take(self, closed: list[Candle]) -> None:
        if not closed:
            return
        self.outbox.add(closed)
        finest = self.config.timeframes[0]
        for candle in closed:
            if candle.timeframe is finest:
                market = self.markets.get(candle.symbol)
                if market is not None:
                    market.last_candle_open_ms = candle.open_time
                    market.candles += 1

    async def _close_ended(self, now_ms: int) -> None:
        self._take(self.aggregator.advance(now_ms))
        await self.outbox.flush()

    def _mark_stale(self, market: MarketFeed, reason: str) -> None:
        if market.stale:
            return
        market.stale = True
        market.stalls += 1
        logger.warning(
            "market feed stale", extra={"exchange": self.exchange, "symbol": market.symbol, "reason": reason}
        )

    def _recovered(self, market: MarketFeed, resumed_ms: int) -> None:
        """Data flows again: what fell between the last trade and now must come from REST."""
        market.stale = False
        since = market.last_trade_ms if market.last_trade_ms is not None else resumed_ms
        market.suspect.append(Suspect(since, resumed_ms))
        market.repaired = False
        market.repair_requested = True
        self.repair.wakeup.set()
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

    # -- clock, freshness --------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            self._last_tick_wall = time.monotonic()
            self._take(self.aggregator.advance(self.clock_ms()))
            self._watch_staleness()
            try:
                await self.outbox.flush()
            except Exception:
                logger.exception("writing candles failed; retrying on the next tick")
            await self._publish_freshness()
            if self.trading is not None:
                await self.trading.tick(list(self.markets))
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
                "pending_candles": len(self.outbox.pending),
                "paper_triggers_sent": self.trading.triggers_sent if self.trading is not None else 0,
            },
        }


# -- process entry ---------------------------------------------------------------------------


def build_source(
    settings: Any, on_event: Callable[[Any], None] | None = None
) -> tuple[MarketSource, Callable[[], int]]:
    """The configured source and the clock that closes its candles."""
    if settings.market_exchange == "simulated":
        from tekoa.market.simulated import SimulatedExchange

        simulated = SimulatedExchange(settings.market_symbol_list, speed=settings.market_simulated_speed)
        return simulated, simulated.now_ms
    from tekoa.market.ccxt.source import CcxtSource

    return CcxtSource(
        settings.market_exchange, stale_after_s=settings.market_stale_after_s, on_event=on_event
    ), _wall_ms


async def serve(settings: Any) -> None:
    """Run the service for this process's settings until SIGTERM/SIGINT."""
    from tekoa.aws.events import EventBridgePublisher
    from tekoa.aws.queues import SqsOrderQueue
    from tekoa.aws.secrets import database_conninfo
    from tekoa.db.connection import PooledDatabase

    database = PooledDatabase(database_conninfo(settings), max_size=4)
    holder: list[MarketStreamService] = []
    source, clock = build_source(
        settings, on_event=lambda event: holder[0].on_source_event(event) if holder else None
    )
    service = MarketStreamService(
        source,
        database,
        EventBridgePublisher(settings),
        config_from_settings(settings),
        clock_ms=clock,
        trading=StreamTrading(source.exchange, database, SqsOrderQueue(settings)),
    )
    holder.append(service)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)
    stopping = threading.Event()
    threading.Thread(
        target=_forming_candles(settings, service, database).run,
        args=(stopping,),
        name="market-live",
        daemon=True,
    ).start()
    try:
        await service.run()
    finally:
        stopping.set()
        await asyncio.to_thread(database.close)


def _forming_candles(settings: Any, service: MarketStreamService, database: Any) -> Any:
    """What pushes the forming candles of the service's markets to WebSocket subscribers."""
    from tekoa.aws.push import ManagementApiPusher
    from tekoa.market.stream.live import FormingCandles
    from tekoa.realtime.fanout import FanOut

    pusher = ManagementApiPusher.from_boto3(settings.websocket_management_url, settings.aws_region)
    return FormingCandles(
        service.exchange,
        lambda symbol, timeframe: service.aggregator.forming(symbol, timeframe, exchange=service.exchange),
        FanOut(database, pusher),
        settings.forming_candle_every_s,
    )


def main() -> None:
    """Process entry point (the Fargate container's command, and `tekoa up`'s market-stream part)."""
    from tekoa.settings import get_settings

    settings = get_settings()
    logger.setLevel(settings.log_level)
    start_process_tracing("tekoa-market-stream")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()

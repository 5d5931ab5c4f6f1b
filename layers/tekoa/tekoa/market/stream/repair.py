"""Gap repair and retention for the market-stream service.

Repairs replace candles from the source's REST history: on start, after every stall or
reconnect, and every `backfill_every_s` (see `tekoa.market.backfill`). The first candle of each
timeframe after a (re)start or reconnect is built from part of its trades (a `Suspect` range),
so it is re-fetched once it has closed. Retention deletes candles older than each timeframe's
configured days, once every `retention_every_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from tekoa.db import candles as candle_store
from tekoa.db.connection import Database, service_transaction
from tekoa.domain.timeframes import Timeframe
from tekoa.market.backfill import repair_series
from tekoa.market.sources import MarketSource
from tekoa.market.stream.config import DAY_MS, StreamConfig
from tekoa.market.stream.feeds import MarketFeed
from tekoa.observability import logger


class GapRepair:
    """Repairs the followed `markets` when asked (`wakeup`) or due, and applies retention.

    `close_ended(now_ms)` must close, write and announce the stream's own candles that ended by
    `now_ms`, so the exchange's history written after them is what stays. `counters` is the
    service's counter dict (repairs, repair_failures, candles_repaired, retention_deleted).
    """

    def __init__(
        self,
        source: MarketSource,
        database: Database,
        config: StreamConfig,
        markets: dict[str, MarketFeed],
        counters: dict[str, int],
        close_ended: Callable[[int], Awaitable[None]],
        clock_ms: Callable[[], int],
    ) -> None:
        self.source = source
        self.database = database
        self.config = config
        self.markets = markets
        self.counters = counters
        self.close_ended = close_ended
        self.clock_ms = clock_ms
        self.wakeup = asyncio.Event()

    async def run(self) -> None:
        """Repair whatever is requested or due, every tick or when woken, until cancelled."""
        last_scheduled = time.monotonic()
        last_retention = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=self.config.tick_s)
            self.wakeup.clear()
            if time.monotonic() - last_scheduled >= self.config.backfill_every_s:
                last_scheduled = time.monotonic()
                for market in self.markets.values():
                    market.repair_requested = True
            now = self.clock_ms()
            for market in list(self.markets.values()):
                if market.stale or market.unavailable is not None:
                    continue
                if market.repair_requested or self._suspect_due(market, now):
                    await self.repair(market, now)
            if (
                self.config.retention_days
                and time.monotonic() - last_retention >= self.config.retention_every_s
            ):
                last_retention = time.monotonic()
                await self._apply_retention(now)

    def _suspect_due(self, market: MarketFeed, now_ms: int) -> bool:
        return any(
            suspect.due(tf, now_ms, self.config.grace_ms)
            for suspect in market.suspect
            for tf in self.config.timeframes
        )

    async def repair(self, market: MarketFeed, now_ms: int) -> None:
        """Fill every timeframe of `market` from REST history and replace its due suspects."""
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
            await self.close_ended(now_ms)
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

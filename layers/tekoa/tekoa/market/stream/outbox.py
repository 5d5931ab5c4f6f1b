"""Closed candles out: written with `announced = false`, then published and marked announced.

A transactional outbox: the write and the announcement are separate steps, and a crash between
them publishes the candle again after restart (events are at-least-once; consumers
deduplicate on exchange, symbol, timeframe and open time). Flushes are serialised: a repair's
REST rows land after the stream's own rows for the same buckets (a half-built candle must not
win), and two announcers never publish the same candles.
"""

from __future__ import annotations

import asyncio

from tekoa.aws.events import BusEvent, EventPublisher
from tekoa.db import candles as candle_store
from tekoa.db.connection import Database, service_transaction
from tekoa.domain.candles import Candle, decimal_text
from tekoa.names import EventType
from tekoa.observability import logger, traced

ANNOUNCE_BATCH = 500


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


class CandleOutbox:
    """Pending closed candles of one exchange, written and announced by `flush`.

    `counters` is the service's counter dict (candles_written, events_published,
    publish_failures, write_failures), updated in place.
    """

    def __init__(
        self, exchange: str, database: Database, publisher: EventPublisher | None, counters: dict[str, int]
    ) -> None:
        self.exchange = exchange
        self.database = database
        self.publisher = publisher
        self.counters = counters
        self.pending: list[Candle] = []
        self._lock = asyncio.Lock()
        self._announce_due = True

    def add(self, candles: list[Candle]) -> None:
        """Queue closed candles for the next flush."""
        self.pending += candles

    async def flush(self) -> None:
        """Write pending closed candles (not yet announced), then announce what is unannounced.

        A flush runs to its end even when the caller is cancelled (a stop cancels the tick loop):
        a batch published but not yet marked announced would be published again by the next flush.
        """
        flushing = asyncio.ensure_future(self._flush())
        try:
            await asyncio.shield(flushing)
        except asyncio.CancelledError:
            await asyncio.wait([flushing])
            raise

    async def _flush(self) -> None:
        async with self._lock:
            if self.pending:
                batch, self.pending = self.pending, []
                try:
                    await asyncio.to_thread(self._write, batch)
                except Exception:
                    self.counters["write_failures"] += 1
                    self.pending = batch + self.pending
                    raise
                self.counters["candles_written"] += len(batch)
                self._announce_due = True
            if self._announce_due and self.publisher is not None:
                await self._announce(self.publisher)

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

    async def _announce(self, publisher: EventPublisher) -> None:
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
            return candle_store.unannounced_candles(conn, self.exchange, limit=ANNOUNCE_BATCH)

    def _mark_announced(self, candles: list[Candle]) -> None:
        with self.database.connection() as conn, service_transaction(conn):
            candle_store.mark_announced(conn, candles)

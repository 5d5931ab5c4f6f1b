"""The market-stream service end to end on a real PostgreSQL, with the seeded simulated exchange.

The exchange runs on a virtual clock (it streams as fast as the service reads), so minutes of
market time pass in well under a second and every run sees the same trades. Each test is
bounded by `run(..., timeout)`; nothing asserts on durations.
"""

from __future__ import annotations

from typing import Any

from tekoa.domain.timeframes import Timeframe
from tekoa.market.stream.service import MarketStreamService
from tests.integration.market.market_support import (
    T0,
    M,
    RecordingPublisher,
    ScriptedSource,
    config,
    eventually,
    freshness,
    ohlcv,
    pooled,
    rest_history,
    run,
    simulated,
    start,
    stop,
    stored,
)

SYMBOL = "BTC/USDT"


def test_streamed_candles_equal_rest_history_and_the_forming_candle_is_never_stored(
    database_url: str,
) -> None:
    async def body() -> None:
        # Given a market streamed from T0 to 12.5 minutes later (the clock then stops mid-minute)
        stop_ms = T0 + 12 * M + 30_000
        exchange = simulated(start_ms=T0, stop_ms=stop_ms)
        publisher = RecordingPublisher()
        database = pooled(database_url)
        service = MarketStreamService(exchange, database, publisher, config(), clock_ms=exchange.now_ms)

        # When it runs until the clock has stopped and every closed minute is stored, then stops
        task = await start(service)
        await eventually(
            lambda: any(c.open_time == T0 + 11 * M for c in stored(database_url, SYMBOL, Timeframe.M1)),
            "the last closed minute stored",
        )
        await stop(service, task)
        database.close()

        # Then the stored 1m and 5m series equal the exchange's REST history, with no holes ...
        for timeframe in (Timeframe.M1, Timeframe.M5):
            expected = await rest_history(exchange, SYMBOL, timeframe, T0 - 10 * M, T0 + 12 * M)
            got = [c for c in stored(database_url, SYMBOL, timeframe) if c.open_time < T0 + 12 * M]
            assert ohlcv(got) == ohlcv([c for c in expected if c.open_time >= got[0].open_time])
        # ... the candle still forming when it stopped was not stored as closed, in any timeframe
        for timeframe in Timeframe:
            assert all(c.close_time <= stop_ms for c in stored(database_url, SYMBOL, timeframe))
        # ... and every streamed candle was announced exactly once
        keys = publisher.announced()
        assert len(keys) == len(set(keys))
        assert ("simulated", SYMBOL, "1m", T0 + 11 * M) in keys

    run(body)


def test_a_dropped_connection_leaves_no_gap_once_repaired(database_url: str) -> None:
    async def body() -> None:
        # Given a feed that loses every trade from minute 3:20 to minute 7:40 (mid-candle on
        # both ends) and then reconnects, reporting it as CcxtSource does
        stop_ms = T0 + 12 * M + 30_000
        exchange = simulated(start_ms=T0, stop_ms=stop_ms)
        source = ScriptedSource(exchange, drop=[(T0 + 3 * M + 20_000, T0 + 7 * M + 40_000)])
        database = pooled(database_url)
        service = MarketStreamService(
            source,
            database,
            RecordingPublisher(),
            config(timeframes=(Timeframe.M1, Timeframe.M5)),
            clock_ms=exchange.now_ms,
        )
        source.on_event = service.on_source_event

        # When the service runs past the outage and its repair
        task = await start(service)
        await eventually(
            lambda: (
                any(c.open_time == T0 + 11 * M for c in stored(database_url, SYMBOL, Timeframe.M1))
                and not service.markets[SYMBOL].suspect
            ),
            "the outage repaired",
        )
        await stop(service, task)
        database.close()

        # Then both series equal REST history: holes filled, half-built candles replaced
        for timeframe in (Timeframe.M1, Timeframe.M5):
            expected = await rest_history(exchange, SYMBOL, timeframe, T0 - 10 * M, T0 + 10 * M)
            got = [c for c in stored(database_url, SYMBOL, timeframe) if c.open_time < T0 + 10 * M]
            assert ohlcv(got) == ohlcv(expected), timeframe

    run(body)


def test_duplicates_replayed_after_a_reconnect_are_stored_once(database_url: str) -> None:
    async def body() -> None:
        # Given a source that, after a reconnect, replays the last seconds it already sent
        exchange = simulated(start_ms=T0, stop_ms=T0 + 6 * M + 30_000)

        class Replaying(ScriptedSource):
            async def stream_trades(self, symbols: Any) -> Any:
                previous = None
                async for batch in self.inner.stream_trades(symbols):
                    if previous is not None and batch.timestamps_ms[0] >= T0 + 3 * M and not self.replayed:
                        self.replayed = True
                        yield previous  # the venue re-sends what it sent before the reconnect
                    yield batch
                    previous = batch

        source = Replaying(exchange)
        source.replayed = False  # type: ignore[attr-defined]
        publisher = RecordingPublisher()
        database = pooled(database_url)
        service = MarketStreamService(source, database, publisher, config(), clock_ms=exchange.now_ms)

        # When streamed
        task = await start(service)
        await eventually(
            lambda: any(c.open_time == T0 + 5 * M for c in stored(database_url, SYMBOL, Timeframe.M1)),
            "minute 5 stored",
        )
        await stop(service, task)
        database.close()

        # Then the replay was dropped as duplicates: candles equal REST, each announced once
        assert service.aggregator.stats.duplicates > 0
        expected = await rest_history(exchange, SYMBOL, Timeframe.M1, T0, T0 + 6 * M)
        got = [c for c in stored(database_url, SYMBOL, Timeframe.M1) if T0 <= c.open_time < T0 + 6 * M]
        assert ohlcv(got) == ohlcv(expected)
        assert len(publisher.announced()) == len(set(publisher.announced()))

    run(body)


def test_a_silent_stall_marks_the_market_stale_until_it_recovers(database_url: str) -> None:
    async def body() -> None:
        # Given a running market that became fresh
        exchange = simulated(start_ms=T0)
        source = ScriptedSource(exchange)
        database = pooled(database_url)
        service = MarketStreamService(
            source, database, RecordingPublisher(), config(stale_after_s=0.3), clock_ms=exchange.now_ms
        )
        task = await start(service)
        await eventually(lambda: freshness(database_url, SYMBOL) is True, "fresh after the first repair")

        # When the feed goes silent (socket open, nothing delivered)
        source.gate.clear()

        # Then the market is marked stale, in the database and on the health document
        await eventually(lambda: freshness(database_url, SYMBOL) is False, "stale after the stall")
        assert service.health()["markets"][SYMBOL]["stale"] is True

        # And when data flows again, it is repaired and fresh again
        source.gate.set()
        await eventually(lambda: freshness(database_url, SYMBOL) is True, "fresh after recovery")
        await stop(service, task)
        database.close()

    run(body)


def test_a_restart_resumes_from_the_last_stored_candle(database_url: str) -> None:
    async def body() -> None:
        publisher = RecordingPublisher()
        database = pooled(database_url)

        # Given a first run that streamed until minute 6:30 and stopped
        first = simulated(start_ms=T0, stop_ms=T0 + 6 * M + 30_000)
        service = MarketStreamService(first, database, publisher, config(), clock_ms=first.now_ms)
        task = await start(service)
        await eventually(
            lambda: any(c.open_time == T0 + 5 * M for c in stored(database_url, SYMBOL, Timeframe.M1)),
            "minute 5 stored",
        )
        await stop(service, task)
        before = {c.open_time: c for c in stored(database_url, SYMBOL, Timeframe.M1)}

        # When a new process starts at minute 9 (the same market) and runs to minute 14:30
        second = simulated(start_ms=T0 + 9 * M, stop_ms=T0 + 14 * M + 30_000)
        service = MarketStreamService(second, database, publisher, config(), clock_ms=second.now_ms)
        task = await start(service)
        await eventually(
            lambda: any(c.open_time == T0 + 13 * M for c in stored(database_url, SYMBOL, Timeframe.M1)),
            "minute 13 stored",
        )
        # (the stream may get there before the repair of the downtime has run: wait for it too)
        await eventually(
            lambda: (
                service.markets[SYMBOL].repaired
                and all(Timeframe.M1 in s.done for s in service.markets[SYMBOL].suspect)
            ),
            "downtime and the first partial minute repaired",
        )
        await stop(service, task)
        database.close()

        # Then the series has no hole and equals REST history across both runs and the downtime
        expected = await rest_history(second, SYMBOL, Timeframe.M1, T0, T0 + 14 * M)
        got = [c for c in stored(database_url, SYMBOL, Timeframe.M1) if T0 <= c.open_time < T0 + 14 * M]
        assert ohlcv(got) == ohlcv(expected)
        # ... the candles stored before the restart were not rebuilt
        after = {c.open_time: c for c in stored(database_url, SYMBOL, Timeframe.M1)}
        assert all(after[t] == c for t, c in before.items())
        # ... and no candle was announced twice
        assert len(publisher.announced()) == len(set(publisher.announced()))

    run(body)


def test_candles_written_but_not_announced_before_a_crash_are_announced_after_restart(
    database_url: str,
) -> None:
    async def body() -> None:
        # Given a run whose event bus was down the whole time (the process then died)
        class DownBus(RecordingPublisher):
            def publish(self, events: Any) -> None:
                raise ConnectionError("bus unreachable")

        database = pooled(database_url)
        first = simulated(start_ms=T0, stop_ms=T0 + 3 * M + 30_000)
        service = MarketStreamService(first, database, DownBus(), config(), clock_ms=first.now_ms)
        task = await start(service)
        await eventually(
            lambda: any(c.open_time == T0 + 2 * M for c in stored(database_url, SYMBOL, Timeframe.M1)),
            "minute 2 stored",
        )
        await stop(service, task)
        assert service.counters["events_published"] == 0

        # When the next process starts with a working bus
        publisher = RecordingPublisher()
        second = simulated(start_ms=T0 + 4 * M, stop_ms=T0 + 5 * M + 30_000)
        service = MarketStreamService(second, database, publisher, config(), clock_ms=second.now_ms)
        task = await start(service)
        await eventually(
            lambda: ("simulated", SYMBOL, "1m", T0 + 2 * M) in publisher.announced(), "old event published"
        )
        await stop(service, task)
        database.close()

        # Then the earlier candles' events went out (at least once)
        assert {("simulated", SYMBOL, "1m", T0 + m * M) for m in range(3)} <= set(publisher.announced())

    run(body)

"""Gap repair through the real ccxt code against the loopback Binance: holes filled page by
page, the stored series equal to the exchange's klines, re-runs fetching nothing."""

from __future__ import annotations

from tekoa.db import candles as store
from tekoa.db.connection import connect, service_transaction
from tekoa.domain.candles import decimal_from_float
from tekoa.domain.timeframes import Timeframe
from tekoa.market.backfill import SeriesRepair, repair_series
from tekoa.market.ccxt.source import CcxtSource
from tests.fakes.exchange import FakeBinance
from tests.integration.market.market_support import pooled, run

M = 60_000
NOW = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000 + 90_000  # 90 s into a minute


def test_holes_are_filled_from_binance_klines_and_a_rerun_fetches_nothing(database_url: str) -> None:
    async def body() -> None:
        async with FakeBinance(clock_ms=lambda: NOW) as fake:
            source = CcxtSource("binance", url_overrides=fake.url_overrides(), clock_ms=lambda: NOW)
            database = pooled(database_url)
            start = Timeframe.M1.open_time(NOW) - 300 * M

            async def repair() -> SeriesRepair:
                return await repair_series(
                    source,
                    database,
                    "BTC/USDT",
                    Timeframe.M1,
                    now_ms=NOW,
                    history_start_ms=start,
                    page_limit=100,
                )

            try:
                # Given 300 minutes of history, repaired once, then two holes punched in it
                await repair()
                with connect(database_url) as conn:
                    conn.execute(
                        "DELETE FROM candles WHERE open_time >= %s AND open_time < %s OR open_time = %s",
                        (start + 10 * M, start + 130 * M, start + 200 * M),
                    )
                    conn.execute("DELETE FROM candle_coverage")  # the watermark is lost too

                # When repaired again, in pages of 100 klines
                fake.rest_requests.clear()
                repaired = await repair()
                calls = [q for path, q in fake.rest_requests if path.endswith("/klines")]

                # And once more (a retry after a crash)
                fake.rest_requests.clear()
                again = await repair()
                calls_again = [q for path, q in fake.rest_requests if path.endswith("/klines")]
            finally:
                await source.close()
                database.close()

        # Then only the holes were fetched (121 candles: two pages and one), and the stored series
        # equals Binance's klines exactly, with no hole up to the forming candle
        assert repaired.missing_before == 121 and repaired.written == 121
        assert [int(q["startTime"]) for q in calls] == [start + 10 * M, start + 110 * M, start + 200 * M]
        expected = fake.klines("BTC/USDT", "1m", start, NOW)
        with connect(database_url) as conn, service_transaction(conn):
            got = store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M1, limit=1_000)
            forming = Timeframe.M1.open_time(NOW)
            assert store.find_gaps(conn, "binance", "BTC/USDT", Timeframe.M1, start, forming) == []
        assert [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in got] == [
            (int(row[0]), *(decimal_from_float(v) for v in row[1:6])) for row in expected
        ]
        assert (again.missing_before, again.written, calls_again) == (0, 0, [])

    run(body)

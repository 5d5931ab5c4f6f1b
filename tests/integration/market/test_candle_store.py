"""Candle persistence on a real PostgreSQL: exact round trips, idempotent writes, gaps, retention."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from tekoa.db import candles as store
from tekoa.db.candle_copy import copy_ohlcv
from tekoa.db.connection import connect, service_transaction
from tekoa.domain.candles import Candle, decimal_from_float
from tekoa.domain.timeframes import Timeframe
from tekoa.market.sources import OhlcvRows

T0 = 1_717_200_000_000  # 2024-06-01T00:00Z
M = 60_000


@pytest.fixture
def conn(database_url: str) -> Any:
    with connect(database_url) as connection:
        yield connection


def candle(
    open_time: int, close: str = "60000.5", *, symbol: str = "BTC/USDT", trades: int | None = 3
) -> Candle:
    price = Decimal(close)
    return Candle(
        exchange="binance",
        symbol=symbol,
        timeframe=Timeframe.M1,
        open_time=open_time,
        open=price - 1,
        high=price + Decimal("2.25"),
        low=price - Decimal("3.125"),
        close=price,
        volume=Decimal("0.00012345678901234567"),
        trades=trades,
    )


def rows(n: int, start: int = T0, seed: int = 1) -> OhlcvRows:
    rng = np.random.default_rng(seed)
    close = np.round(60_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, n))), 2)
    open_ = np.concatenate(([close[0]], close[:-1]))
    return OhlcvRows(
        open_time_ms=start + np.arange(n, dtype=np.int64) * M,
        open=open_,
        high=np.maximum(open_, close) + 0.5,
        low=np.minimum(open_, close) - 0.25,
        close=close,
        volume=rng.lognormal(0, 1, n),  # 16-17 significant digits: exactness matters
    )


def count(conn: Any, symbol: str = "BTC/USDT") -> int:
    row = conn.execute(
        "SELECT count(*) FROM candles c JOIN candle_series s ON s.id = c.series_id WHERE s.symbol = %s",
        (symbol,),
    ).fetchone()
    return int(row[0])


def test_an_upserted_candle_reads_back_equal(conn: Any) -> None:
    # Given candles with many-digit decimals and an unknown trade count
    written = [candle(T0), candle(T0 + M, "60001.75", trades=None)]

    # When upserted and read back
    with service_transaction(conn):
        store.upsert_candles(conn, written)
    read = store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M1)

    # Then every field is equal, decimals exactly
    assert read == written


def test_upserting_the_same_candles_twice_stores_them_once(conn: Any) -> None:
    # Given a batch already stored
    batch = [candle(T0 + i * M) for i in range(5)]
    with service_transaction(conn):
        store.upsert_candles(conn, batch)

    # When the same batch (a replay) and a corrected candle arrive
    with service_transaction(conn):
        store.upsert_candles(conn, [*batch, candle(T0, "61000")])

    # Then there is still one row per open time, and the correction won
    assert count(conn) == 5
    assert store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M1, limit=1)[0].close == Decimal("61000")


def test_every_write_path_stores_the_decimal_each_float_stands_for(conn: Any) -> None:
    # Given history (as a REST backfill produces it) with float noise and values outside the
    # range the compiled encoder rounds itself
    history = rows(1_000)
    history.volume[:5] = [1e-12, 3.5889499999999996, 2.0**-22, 0.0, 123456789012345.67]
    history.high[5] = 1e16

    # When the first half is copied (straight into the table), then all of it (the merge
    # path: half stored, half new), and one candle is upserted from Decimals
    with service_transaction(conn):
        assert copy_ohlcv(conn, "binance", "BTC/USDT", Timeframe.M1, history.take(slice(0, 500))) == 500
    with service_transaction(conn):
        assert copy_ohlcv(conn, "binance", "BTC/USDT", Timeframe.M1, history) == 500
    upserted = Candle.from_floats(
        "binance", "ETH/USDT", Timeframe.M1, T0, (1.0, 1e16, 2.0**-22, 1.0, 3.5889499999999996), 1
    )
    with service_transaction(conn):
        store.upsert_candles(conn, [upserted])

    # Then each stored value is the float to 15 significant digits: decimal_from_float's
    # answer and PostgreSQL's own float8::numeric
    stored = store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M1, limit=2_000)
    columns = ("open", "high", "low", "close", "volume")
    assert [c.open_time for c in stored] == history.open_time_ms.tolist()
    for name in columns:
        floats = getattr(history, name).tolist()
        by_postgres = conn.execute("SELECT unnest(%s::float8[])::numeric", (floats,)).fetchall()
        expected = [decimal_from_float(value) for value in floats]
        assert [getattr(c, name) for c in stored] == expected == [row[0] for row in by_postgres], name
        assert all(c.trades is None for c in stored)
    assert store.read_candles(conn, "binance", "ETH/USDT", Timeframe.M1) == [upserted]
    assert upserted.volume == Decimal("3.58895") and upserted.high == Decimal("1E+16")


def test_copying_the_same_history_twice_stores_it_once_and_rewrites_nothing(conn: Any) -> None:
    # Given history already copied
    history = rows(500)
    with service_transaction(conn):
        first = copy_ohlcv(conn, "binance", "BTC/USDT", Timeframe.M1, history)

    # When the same backfill runs again (a retry after a crash)
    with service_transaction(conn):
        second = copy_ohlcv(conn, "binance", "BTC/USDT", Timeframe.M1, history)

    # Then nothing changed the second time and there is one row per candle
    assert (first, second) == (500, 0)
    assert count(conn) == 500


def test_copy_keeps_a_known_trade_count_when_history_has_none(conn: Any) -> None:
    # Given a streamed candle with its trade count
    history = rows(3)
    streamed = Candle.from_floats(
        "binance",
        "BTC/USDT",
        Timeframe.M1,
        T0,
        (
            float(history.open[0]),
            float(history.high[0]),
            float(history.low[0]),
            float(history.close[0]),
            float(history.volume[0]),
        ),
        7,
    )
    with service_transaction(conn):
        store.upsert_candles(conn, [streamed])

    # When REST history for the same candle is copied over it
    with service_transaction(conn):
        copy_ohlcv(conn, "binance", "BTC/USDT", Timeframe.M1, history)

    # Then the candle is unchanged, trade count included
    assert store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M1, limit=1)[0] == streamed


def test_misaligned_history_is_refused_before_anything_is_written(conn: Any) -> None:
    history = rows(3, start=T0 + 1)
    with pytest.raises(ValueError, match="aligned"), service_transaction(conn):
        copy_ohlcv(conn, "binance", "BTC/USDT", Timeframe.M1, history)
    assert count(conn) == 0


def test_find_gaps_names_every_missing_open_time(conn: Any) -> None:
    # Given minutes 0-9 stored except 3, 4 and 8
    with service_transaction(conn):
        store.upsert_candles(conn, [candle(T0 + i * M) for i in range(10) if i not in (3, 4, 8)])

    # When gaps are searched over minutes 0-11 (from an unaligned start)
    gaps = store.find_gaps(conn, "binance", "BTC/USDT", Timeframe.M1, T0 - 5, T0 + 12 * M)

    # Then the holes and the two unstored minutes at the end are named, nothing else
    assert gaps == [T0 + i * M for i in (3, 4, 8, 10, 11)]
    assert store.last_closed_open_time(conn, "binance", "BTC/USDT", Timeframe.M1) == T0 + 9 * M


def test_reading_pages_by_cursor_visits_every_candle_once(conn: Any) -> None:
    with service_transaction(conn):
        copy_ohlcv(conn, "binance", "BTC/USDT", Timeframe.M1, rows(25))
    seen: list[int] = []
    after: int | None = None
    while True:
        page = store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M1, limit=10, after_open_time=after)
        if not page:
            break
        seen += [c.open_time for c in page]
        after = page[-1].open_time
    assert seen == [T0 + i * M for i in range(25)]


def test_retention_deletes_only_old_candles_of_that_timeframe(conn: Any) -> None:
    # Given 1m and 1h candles
    with service_transaction(conn):
        copy_ohlcv(conn, "binance", "BTC/USDT", Timeframe.M1, rows(10))
        h1 = rows(3)
        copy_ohlcv(
            conn,
            "binance",
            "BTC/USDT",
            Timeframe.H1,
            OhlcvRows(
                T0 + np.arange(3, dtype=np.int64) * 3_600_000, h1.open, h1.high, h1.low, h1.close, h1.volume
            ),
        )

    # When 1m candles before minute 4 expire
    with service_transaction(conn):
        deleted = store.delete_older_than(conn, Timeframe.M1, T0 + 4 * M)

    # Then those four went, and every 1h candle stayed
    assert deleted == 4
    assert len(store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M1)) == 6
    assert len(store.read_candles(conn, "binance", "BTC/USDT", Timeframe.H1)) == 3


def test_the_app_role_may_read_market_data_and_it_is_shared(conn: Any) -> None:
    # Market data is not tenant data: any user's transaction reads it.
    import uuid

    from tekoa.db.connection import tenant_transaction

    with service_transaction(conn):
        store.upsert_candles(conn, [candle(T0)])
        store.set_freshness(conn, "binance", "BTC/USDT", fresh=True)
    with tenant_transaction(conn, uuid.uuid4()):
        assert len(store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M1)) == 1
        freshness = store.get_freshness(conn, "binance", "BTC/USDT")
    assert freshness is not None and freshness.fresh


def test_the_bots_query_lists_running_bots_markets(conn: Any) -> None:
    # The query runs against the real bots table (migration 0003); no bots yet: no markets.
    with service_transaction(conn):
        assert store.markets_with_running_bots(conn) == []


def test_history_replacing_a_half_built_candle_makes_its_trade_count_unknown(conn: Any) -> None:
    # Given a streamed candle built from part of its trades (the feed dropped mid-minute)
    with service_transaction(conn):
        store.upsert_candles(conn, [candle(T0, "60000.5", trades=4)])

    # When the exchange's history replaces it
    with service_transaction(conn):
        copy_ohlcv(conn, "binance", "BTC/USDT", Timeframe.M1, rows(1))

    # Then its values are the history's and its trade count is no longer claimed
    stored = store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M1)[0]
    assert stored.close == decimal_from_float(float(rows(1).close[0])) and stored.trades is None


def test_rewriting_an_announced_candle_unchanged_does_not_announce_it_again(conn: Any) -> None:
    # Given a candle written, announced and confirmed
    with service_transaction(conn):
        store.upsert_candles(conn, [candle(T0)], announced=False)
        store.mark_announced(conn, store.unannounced_candles(conn, "binance"))

    # When the same candle is written again (a replay, a flush after restart)
    with service_transaction(conn):
        store.upsert_candles(conn, [candle(T0)], announced=False)
        unchanged = store.unannounced_candles(conn, "binance")

    # Then nothing is due; a corrected candle, though, is announced again
    with service_transaction(conn):
        store.upsert_candles(conn, [candle(T0, close="60001.5")], announced=False)
        corrected = store.unannounced_candles(conn, "binance")
    assert unchanged == []
    assert [c.close for c in corrected] == [Decimal("60001.5")]


def test_frames_of_many_series_read_in_one_query_equal_the_rows_read_one_by_one(conn: Any) -> None:
    from tekoa.db.candle_copy import read_frames
    from tekoa.market.frame import CandleFrame

    with service_transaction(conn):
        copy_ohlcv(conn, "binance", "BTC/USDT", Timeframe.M1, rows(300, seed=1))
        copy_ohlcv(conn, "binance", "ETH/USDT", Timeframe.M1, rows(50, seed=2))
    windows = {
        ("binance", "BTC/USDT", Timeframe.M1): (T0 + 100 * M, T0 + 250 * M),
        ("binance", "ETH/USDT", Timeframe.M1): (0, 2**62),
        ("binance", "SOL/USDT", Timeframe.M1): (0, 2**62),  # never stored
    }
    with service_transaction(conn):
        frames = read_frames(conn, windows)
        expected = {
            key: CandleFrame.from_candles(
                key[2], store.read_candles(conn, key[0], key[1], key[2], start_ms=lo, end_ms=hi, limit=10_000)
            )
            for key, (lo, hi) in windows.items()
        }

    assert [len(frames[key]) for key in windows] == [150, 50, 0]
    for key, frame in frames.items():
        for column in ("open_time", "open", "high", "low", "close", "volume"):
            assert np.array_equal(getattr(frame, column), getattr(expected[key], column)), (key, column)
        frame.validate()

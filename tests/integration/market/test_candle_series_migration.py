"""Migration 0005 re-keys stored candles by series without losing or changing one."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import psycopg

from tekoa.db import candles as store
from tekoa.db.connection import connect, service_transaction
from tekoa.db.migrate import MIGRATIONS_DIR, migrate
from tekoa.domain.timeframes import Timeframe

T0 = 1_717_200_000_000
M = 60_000


def test_candles_stored_before_the_series_table_move_over_unchanged(
    empty_database_url: str, tmp_path: Path
) -> None:
    # Given a database at migration 0004 holding candles of two markets, one pending its event
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) <= 4:
            shutil.copy(path, tmp_path)
    migrate(empty_database_url, tmp_path)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume,"
            " trades, announced) VALUES"
            " ('binance', 'BTC/USDT', '1m', %s, 60000.5, 60010, 59990.25, 60001.75,"
            "  0.00012345678901234567, 3, true),"
            " ('binance', 'BTC/USDT', '1m', %s, 60001.75, 60002, 60000, 60000, 1.5, NULL, false),"
            " ('binance', 'BTC/USDT', '5m', %s, 1, 2, 0.5, 1.5, 10, 7, true),"
            " ('kraken', 'ETH/USD', '1m', %s, 3000, 3001, 2999, 3000.5, 2, 4, true)",
            (T0, T0 + M, T0, T0),
        )

    # When the rest of the migrations run
    assert migrate(empty_database_url)[0] == "0005_candle_series"

    # Then every candle reads back as it was, under its own series, announced or not
    with connect(empty_database_url) as conn, service_transaction(conn):
        btc = store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M1)
        assert [(c.open_time, c.volume, c.trades) for c in btc] == [
            (T0, Decimal("0.00012345678901234567"), 3),
            (T0 + M, Decimal("1.5"), None),
        ]
        assert [c.open_time for c in store.unannounced_candles(conn, "binance")] == [T0 + M]
        assert [c.close for c in store.read_candles(conn, "binance", "BTC/USDT", Timeframe.M5)] == [
            Decimal("1.5")
        ]
        assert store.latest_candle(conn, "kraken", "ETH/USD") is not None
        series = conn.execute("SELECT count(*) FROM candle_series").fetchone()
        assert series is not None and series[0] == 3

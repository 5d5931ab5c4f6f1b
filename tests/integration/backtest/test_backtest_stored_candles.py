"""`tekoa backtest --exchange ...` reads the candle store (real PostgreSQL) and trades exactly
as it does over the same candles from a CSV."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tekoa.db.candles import upsert_candles
from tekoa.db.connection import connect, service_transaction
from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import Timeframe
from tekoa.market.frame import CandleFrame
from tests.conftest import DATA_DIR
from tests.unit.backtest.test_parity_backtesting_py import SMA_CROSS

GOOG = DATA_DIR / "goog_1d_backtesting.csv"


def _store_goog(database_url: str) -> None:
    frame = CandleFrame.from_csv(GOOG, Timeframe.D1)
    candles = [
        Candle.from_floats(
            "simulated",
            "GOOG/USD",
            Timeframe.D1,
            int(frame.open_time[i]),
            (
                float(frame.open[i]),
                float(frame.high[i]),
                float(frame.low[i]),
                float(frame.close[i]),
                float(frame.volume[i]),
            ),
            1,
        )
        for i in range(len(frame))
    ]
    with connect(database_url) as conn, service_transaction(conn):
        upsert_candles(conn, candles)


def _backtest(tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    strategy_file = tmp_path / "sma.json"
    strategy_file.write_text(json.dumps(SMA_CROSS))
    out = tmp_path / f"{name}.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tekoa.cli",
            "backtest",
            "--strategy",
            str(strategy_file),
            *args,
            "--json-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "total return" in done.stdout
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def test_stored_candles_backtest_like_the_same_candles_from_csv(database_url: str, tmp_path: Path) -> None:
    # Given the GOOG candles in the candle store
    _store_goog(database_url)
    env = {**os.environ, "DATABASE_URL": database_url}

    # When the strategy is backtested over the store and over the CSV
    stored = _backtest(
        tmp_path, "stored", "--exchange", "simulated", "--symbol", "GOOG/USD",
        "--start", "2004-08-19", "--end", "2013-03-02", env=env,
    )  # fmt: skip
    from_csv = _backtest(tmp_path, "csv", "--data", str(GOOG))

    # Then both read the same 2148 candles and make the same trades
    assert stored["bars"] == from_csv["bars"] == 2148
    assert stored["trades"] == from_csv["trades"]
    assert stored["metrics"] == from_csv["metrics"]


def test_an_empty_range_of_the_store_is_a_clear_error(database_url: str, tmp_path: Path) -> None:
    strategy_file = tmp_path / "sma.json"
    strategy_file.write_text(json.dumps(SMA_CROSS))
    done = subprocess.run(
        [
            sys.executable, "-m", "tekoa.cli", "backtest", "--strategy", str(strategy_file),
            "--exchange", "simulated", "--symbol", "NOPE/USD", "--start", "2020-01-01", "--end", "2020-02-01",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "DATABASE_URL": database_url},
    )  # fmt: skip

    assert done.returncode == 2
    assert "no stored 1d candles of simulated NOPE/USD" in done.stderr

"""The ingest Lambda handler with real event shapes: on-demand backfill and the schedule."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pydantic
import pytest

from tekoa.db import candles as store
from tekoa.db.connection import connect
from tekoa.domain.timeframes import Timeframe

H = 3_600_000


@dataclass
class FakeLambdaContext:
    function_name: str = "tekoa-test-ingest"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tekoa-test-ingest"
    aws_request_id: str = "5b9e3c1e-0d4b-4c55-9d8e-7d2f4e3a1b00"
    remaining_ms: int = 600_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def handler(settings: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The handler module imported as Lambda would, with this test's database configured."""
    from tekoa.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TEKOA_STAGE", settings.stage)
    monkeypatch.setenv("TEKOA_MARKET_HISTORY_DAYS", "0.25")
    get_settings.cache_clear()
    import functions.ingest.handler as module

    module = importlib.reload(module)
    yield module
    module.database.close()
    get_settings.cache_clear()


def stored(database_url: str, symbol: str, timeframe: Timeframe) -> list[Any]:
    with connect(database_url) as conn:
        return store.read_candles(conn, "simulated", symbol, timeframe, limit=100_000)


def test_an_on_demand_backfill_fills_the_range_once(handler: ModuleType, settings: Any) -> None:
    # Given a request for six hours of 15m history that ended an hour ago
    now = time.time_ns() // 1_000_000
    end = now - now % H - H
    event = {
        "exchange": "simulated",
        "symbol": "BTC/USDT",
        "timeframe": "15m",
        "start": end - 6 * H,
        "end": end,
    }

    # When the handler runs, and then runs again (a retry)
    first = handler.handler(event, FakeLambdaContext())
    second = handler.handler(event, FakeLambdaContext())

    # Then the range is stored, every quarter hour once, and the retry wrote nothing
    candles = stored(settings.database_url, "BTC/USDT", Timeframe.M15)
    assert [c.open_time for c in candles] == [end - 6 * H + i * 900_000 for i in range(24)]
    assert (first["written"], second["written"], second["missing"]) == (24, 0, 0)


def test_the_schedule_repairs_every_followed_market_up_to_now(handler: ModuleType, settings: Any) -> None:
    # Given a market the platform follows, with a hole in its stored 1m history
    now = time.time_ns() // 1_000_000
    end = now - now % H - H
    handler.handler(
        {"exchange": "simulated", "symbol": "ETH/USDT", "timeframe": "1m", "start": end - H, "end": end},
        FakeLambdaContext(),
    )
    with connect(settings.database_url) as conn:
        conn.execute(
            "DELETE FROM candles WHERE open_time BETWEEN %s AND %s", (end - 30 * 60_000, end - 20 * 60_000)
        )

    # When EventBridge's schedule invokes the handler (its real event shape)
    scheduled = {
        "version": "0",
        "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2024-06-01T00:15:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/tekoa-test-ingest-schedule"],
        "detail": {},
    }
    result = handler.handler(scheduled, FakeLambdaContext())

    # Then every timeframe of the market is whole from the history start to the forming candle
    assert result["failed"] == [] and result["series"] == len(Timeframe)
    with connect(settings.database_url) as conn:
        for timeframe in Timeframe:
            start = now - int(0.25 * 86_400_000)
            gaps = store.find_gaps(conn, "simulated", "ETH/USDT", timeframe, start, timeframe.open_time(now))
            assert gaps == [], timeframe


def test_the_schedule_stops_starting_work_near_the_lambda_timeout(handler: ModuleType) -> None:
    # Given a known market and an invocation with less than a minute left
    now = time.time_ns() // 1_000_000
    handler.handler(
        {
            "exchange": "simulated",
            "symbol": "SOL/USDT",
            "timeframe": "1h",
            "start": now - 5 * H,
            "end": now - H,
        },
        FakeLambdaContext(),
    )
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}

    # When the schedule fires / Then it stops early, leaving the rest to the next run
    result = handler.handler(scheduled, FakeLambdaContext(remaining_ms=30_000))
    assert result["stopped_early"] is True and result["series"] == 0


@pytest.mark.parametrize(
    "event",
    [
        {"exchange": "simulated", "symbol": "BTC/USDT", "timeframe": "2m", "start": 0},
        {"exchange": "nosuchexchange", "symbol": "BTC/USDT", "timeframe": "1m", "start": 0},
        {"exchange": "simulated", "symbol": "btc-usdt", "timeframe": "1m", "start": 0},
        {"exchange": "simulated", "symbol": "BTC/USDT", "timeframe": "1m", "start": 10, "end": 5},
    ],
)
def test_a_malformed_request_is_refused_before_any_work(handler: ModuleType, event: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        handler.handler(event, FakeLambdaContext())


def test_a_run_leaves_no_connection_open_so_an_idle_database_can_pause(
    handler: ModuleType, settings: Any
) -> None:
    # Given a scheduled run that used the database
    handler.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, FakeLambdaContext())

    # Then, between runs, the frozen environment holds no session (Aurora auto-pause waits for
    # none). A closed session's backend leaves the server a moment after the client hung up
    # (longer on a loaded machine), and autovacuum's workers are not sessions: clients only.
    with connect(settings.database_url) as conn:  # autocommit: each look is a fresh snapshot
        deadline = time.monotonic() + 10
        while True:
            others = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchone()
            if others == (0,) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert others == (0,)

"""Pure rules of gap repair, events, ingest requests and the binary COPY encoding."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np
import pydantic
import pytest

from tekoa.db.candle_copy import finite_rows, validate_rows
from tekoa.domain.candles import Candle, decimal_text
from tekoa.domain.timeframes import Timeframe
from tekoa.market.backfill import fetch_range, merge_runs, missing_runs
from tekoa.market.ingest import BackfillRequest, ScheduledRepair, parse_event
from tekoa.market.sources import OhlcvRows
from tekoa.market.stream.outbox import candle_event

T0 = 1_717_200_000_000
M = 60_000


def history(open_times: list[int]) -> OhlcvRows:
    n = len(open_times)
    ones = np.ones(n)
    return OhlcvRows(np.array(open_times, dtype=np.int64), ones, ones * 2, ones / 2, ones, ones)


def test_missing_open_times_group_into_contiguous_runs() -> None:
    assert missing_runs([T0, T0 + M, T0 + 3 * M], M) == [(T0, T0 + 2 * M), (T0 + 3 * M, T0 + 4 * M)]
    assert missing_runs([], M) == []


def test_runs_merge_when_they_overlap_or_touch() -> None:
    assert merge_runs([(5, 9), (0, 3), (3, 4), (8, 12), (20, 20)]) == [(0, 4), (5, 12)]


class PagedHistory:
    """An exchange serving `page` candles per call from a fixed set, like a REST history."""

    exchange = "fake"

    def __init__(self, open_times: list[int], page: int) -> None:
        self.open_times = open_times
        self.page = page
        self.calls: list[tuple[int, int]] = []

    async def fetch_ohlcv(self, symbol: str, timeframe: Timeframe, since_ms: int, limit: int) -> OhlcvRows:
        self.calls.append((since_ms, limit))
        chosen = [t for t in self.open_times if t >= since_ms][: min(limit, self.page)]
        return history(chosen)


def test_history_is_fetched_page_by_page_and_empty_windows_are_skipped() -> None:
    # Given an exchange with a quiet hour in the middle, serving 3 candles per call
    times = [T0 + i * M for i in range(5)] + [T0 + (65 + i) * M for i in range(2)]
    source = PagedHistory(times, page=3)

    # When the range is fetched with pages of 10
    pages = asyncio.run(fetch_range(source, "BTC/USDT", Timeframe.M1, T0, T0 + 70 * M, page_limit=10))

    # Then every candle in the range arrives once, in order
    got = np.concatenate([p.open_time_ms for p in pages]).tolist()
    assert got == times
    assert all(since < T0 + 70 * M for since, _ in source.calls)


def test_rows_outside_the_range_or_with_missing_values_are_left_out() -> None:
    source = PagedHistory([T0, T0 + M, T0 + 2 * M], page=10)

    class WithHole(PagedHistory):
        async def fetch_ohlcv(
            self, symbol: str, timeframe: Timeframe, since_ms: int, limit: int
        ) -> OhlcvRows:
            rows = await super().fetch_ohlcv(symbol, timeframe, since_ms, limit)
            rows.close[0] = np.nan
            return rows

    pages = asyncio.run(fetch_range(WithHole(source.open_times, 10), "X/Y", Timeframe.M1, T0, T0 + 2 * M))
    assert np.concatenate([p.open_time_ms for p in pages]).tolist() == [T0 + M]


def test_inconsistent_or_misaligned_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="aligned"):
        validate_rows(history([T0 + 1]), Timeframe.M1)
    bad = history([T0])
    bad.high[0] = 0.1
    with pytest.raises(ValueError, match="inconsistent"):
        validate_rows(bad, Timeframe.M1)
    with pytest.raises(ValueError, match="twice"):
        validate_rows(history([T0 + M, T0, T0 + M]), Timeframe.M1)
    validate_rows(history([T0 + M, T0]), Timeframe.M1)  # order is free, repetition is not
    assert finite_rows(history([T0, T0 + M]))[1] == 0


def test_money_at_the_wire_has_one_spelling() -> None:
    assert [decimal_text(Decimal(x)) for x in ("101.0", "1E+2", "1E-7", "60000.10", "-0.0")] == [
        "101",
        "100",
        "0.0000001",
        "60000.1",
        "0",
    ]


def test_the_candle_closed_event_carries_ms_times_and_decimal_strings() -> None:
    candle = Candle.from_floats("binance", "BTC/USDT", Timeframe.M5, T0, (1.5, 2.0, 1.0, 1.75, 1e-07), 3)
    event = candle_event(candle)
    assert event.detail_type == "candle.closed"
    assert event.detail == {
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "5m",
        "open_time": T0,
        "close_time": T0 + 300_000,
        "open": "1.5",
        "high": "2",
        "low": "1",
        "close": "1.75",
        "volume": "0.0000001",
        "trades": 3,
    }


def test_ingest_events_parse_into_their_models() -> None:
    scheduled = parse_event(
        {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}, "id": "x"}
    )
    assert isinstance(scheduled, ScheduledRepair)
    request = parse_event({"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "start": T0})
    assert isinstance(request, BackfillRequest) and request.end is None


@pytest.mark.parametrize(
    "event",
    [
        {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m", "start": T0, "end": T0 + 10**12},
        {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m", "start": T0, "extra": 1},
        {"source": "aws.events", "detail-type": "Something Else"},
    ],
)
def test_bad_ingest_events_are_refused(event: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        parse_event(event)

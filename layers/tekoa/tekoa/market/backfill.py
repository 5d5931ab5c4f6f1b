"""Gap repair: make a stored candle series equal the exchange's REST history, with no holes.

How a series is repaired (`repair_series`):

1. Start at the series' coverage watermark (`candle_coverage.verified_until`: every open time
   before it was already compared with REST history), or `history_start_ms` for a series
   never checked.
2. Find the open times in `[start, until)` with no stored candle (`until` = the open time of
   the candle forming now: it is never history), plus any forced range (`overwrite`: after a
   reconnect or a restart the candles around the outage were built from part of their
   trades and must be replaced by the exchange's).
3. Fetch those runs from `source.fetch_ohlcv`, page by page (`page_limit` candles per call:
   the exchange's limit), and write each page by binary COPY. An empty page means the venue
   has nothing in the window it could have served, so the cursor moves on by a full page.
4. Commit each page together with the watermark it justifies. A crash loses at most the page
   in flight; re-running starts at the watermark and fetches only what is still missing.
5. At the end the watermark moves to `until`, except for the last `settle_ms`: an exchange
   may publish a just-closed candle a little late, so a recent bucket that is still empty is
   looked at again next time instead of being declared empty for ever.

Minutes without trades stay holes in the store when the venue has no candle for them
(the simulated exchange; Binance instead serves flat zero-volume candles): the watermark is
what records that they were checked, so they are not fetched on every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tekoa.db import candles as candle_store
from tekoa.db.candle_copy import copy_ohlcv, finite_rows
from tekoa.db.connection import Database, service_transaction
from tekoa.domain.timeframes import Timeframe
from tekoa.market.sources import OhlcvRows
from tekoa.observability import logger

DEFAULT_PAGE_LIMIT = 500
"""ccxt's default page; Binance serves up to 1000 klines per request."""

DEFAULT_SETTLE_MS = 120_000
"""How long a recent empty bucket is re-checked before the watermark passes it."""

_GAP_SCAN_CHUNK = 100_000


class HistorySource(Protocol):
    """What gap repair needs of a market source: its name and paged OHLCV history."""

    exchange: str

    async def fetch_ohlcv(
        self, symbol: str, timeframe: Timeframe, since_ms: int, limit: int
    ) -> OhlcvRows: ...


@dataclass(frozen=True, slots=True)
class SeriesRepair:
    """What one repair of one series did."""

    exchange: str
    symbol: str
    timeframe: Timeframe
    missing_before: int
    fetched: int
    written: int
    pages: int
    verified_until: int


def missing_runs(open_times: Sequence[int], step: int) -> list[tuple[int, int]]:
    """Contiguous runs `[start, end)` of ascending aligned open times."""
    runs: list[tuple[int, int]] = []
    for open_time in open_times:
        if runs and runs[-1][1] == open_time:
            runs[-1] = (runs[-1][0], open_time + step)
        else:
            runs.append((open_time, open_time + step))
    return runs


def merge_runs(runs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of half-open ranges, ascending and non-overlapping."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(runs):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _slice(rows: OhlcvRows, start_ms: int, end_ms: int) -> OhlcvRows:
    return rows.take((rows.open_time_ms >= start_ms) & (rows.open_time_ms < end_ms))


def _find_missing(
    database: Database, exchange: str, symbol: str, timeframe: Timeframe, start_ms: int, until_ms: int
) -> list[int]:
    missing: list[int] = []
    chunk = _GAP_SCAN_CHUNK * timeframe.ms
    with database.connection() as conn, service_transaction(conn):
        for lo in range(start_ms, until_ms, chunk):
            missing += candle_store.find_gaps(
                conn, exchange, symbol, timeframe, lo, min(until_ms, lo + chunk)
            )
    return missing


def _coverage(database: Database, exchange: str, symbol: str, timeframe: Timeframe) -> int | None:
    with database.connection() as conn, service_transaction(conn):
        candle_store.ensure_market(conn, exchange, symbol)
        return candle_store.get_verified_until(conn, exchange, symbol, timeframe)


def _write_page(
    database: Database,
    exchange: str,
    symbol: str,
    timeframe: Timeframe,
    rows: OhlcvRows,
    verified_until: int | None,
) -> int:
    with database.connection() as conn, service_transaction(conn):
        written = copy_ohlcv(conn, exchange, symbol, timeframe, rows) if len(rows) else 0
        if verified_until is not None:
            candle_store.set_verified_until(conn, exchange, symbol, timeframe, verified_until)
        return written


async def fetch_range(
    source: HistorySource,
    symbol: str,
    timeframe: Timeframe,
    start_ms: int,
    end_ms: int,
    *,
    page_limit: int = DEFAULT_PAGE_LIMIT,
) -> list[OhlcvRows]:
    """REST history of `[start_ms, end_ms)` as pages (each within the range, finite values)."""
    pages: list[OhlcvRows] = []
    since = start_ms
    while since < end_ms:
        wanted = min(page_limit, -(-(end_ms - since) // timeframe.ms))
        rows = await source.fetch_ohlcv(symbol, timeframe, since, wanted)
        if len(rows) == 0:
            since += wanted * timeframe.ms
            continue
        last_open = int(rows.open_time_ms.max())
        page, dropped = finite_rows(_slice(rows, since, end_ms))
        if dropped:
            logger.warning(
                "history rows with missing values skipped",
                extra={
                    "exchange": source.exchange,
                    "symbol": symbol,
                    "timeframe": timeframe.value,
                    "rows": dropped,
                },
            )
        pages.append(page)
        since = max(since + timeframe.ms, last_open + timeframe.ms)
    return pages


async def repair_series(
    source: HistorySource,
    database: Database,
    symbol: str,
    timeframe: Timeframe,
    *,
    now_ms: int,
    history_start_ms: int,
    overwrite: Sequence[tuple[int, int]] = (),
    page_limit: int = DEFAULT_PAGE_LIMIT,
    settle_ms: int = DEFAULT_SETTLE_MS,
) -> SeriesRepair:
    """Fill every hole of one series up to the candle forming at `now_ms` (see module doc).

    `overwrite`: ranges `[start, end)` to re-fetch and replace even where candles are stored.
    Idempotent and resumable; database calls run in worker threads.
    """
    exchange = source.exchange
    step = timeframe.ms
    until = timeframe.open_time(now_ms)
    verified = await asyncio.to_thread(_coverage, database, exchange, symbol, timeframe)
    start = timeframe.open_time(history_start_ms) if verified is None else verified
    missing = (
        await asyncio.to_thread(_find_missing, database, exchange, symbol, timeframe, start, until)
        if start < until
        else []
    )
    forced = [
        (timeframe.open_time(lo), min(until, timeframe.open_time(hi - 1) + step))
        for lo, hi in overwrite
        if hi > lo
    ]
    runs = merge_runs(missing_runs(missing, step) + forced)
    # A watermark never passes `settled`: a bucket that is empty only because the venue has
    # not published it yet must be looked at again.
    settled = max(start, min(until, timeframe.open_time(now_ms - settle_ms)))
    fetched = written = pages_done = 0
    for index, (run_start, run_end) in enumerate(runs):
        for page in await fetch_range(source, symbol, timeframe, run_start, run_end, page_limit=page_limit):
            fetched += len(page)
            written += await asyncio.to_thread(_write_page, database, exchange, symbol, timeframe, page, None)
            pages_done += 1
        # Everything before the next run is now stored or known to be empty.
        next_start = runs[index + 1][0] if index + 1 < len(runs) else until
        await asyncio.to_thread(
            _write_page, database, exchange, symbol, timeframe, _empty_rows(), min(next_start, settled)
        )
    await asyncio.to_thread(_write_page, database, exchange, symbol, timeframe, _empty_rows(), settled)
    final = settled
    if missing or written:
        logger.info(
            "candle series repaired",
            extra={
                "exchange": exchange,
                "symbol": symbol,
                "timeframe": timeframe.value,
                "missing": len(missing),
                "fetched": fetched,
                "written": written,
                "pages": pages_done,
            },
        )
    return SeriesRepair(exchange, symbol, timeframe, len(missing), fetched, written, pages_done, final)


async def repair_market(
    source: HistorySource,
    database: Database,
    symbol: str,
    timeframes: Iterable[Timeframe],
    *,
    now_ms: int,
    history_start_ms: int,
    overwrite_since_ms: int | None = None,
    page_limit: int = DEFAULT_PAGE_LIMIT,
) -> list[SeriesRepair]:
    """`repair_series` for each timeframe of one market.

    `overwrite_since_ms`: the feed was interrupted after this time (a reconnect, a restart):
    the candles from the one containing it up to the one forming now are re-fetched.
    """
    results = []
    for timeframe in timeframes:
        overwrite = [] if overwrite_since_ms is None else [(overwrite_since_ms, now_ms)]
        results.append(
            await repair_series(
                source,
                database,
                symbol,
                timeframe,
                now_ms=now_ms,
                history_start_ms=history_start_ms,
                overwrite=overwrite,
                page_limit=page_limit,
            )
        )
    return results


async def backfill_range(
    source: HistorySource,
    database: Database,
    symbol: str,
    timeframe: Timeframe,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    page_limit: int = DEFAULT_PAGE_LIMIT,
) -> SeriesRepair:
    """Fill the holes of `[start_ms, end_ms)` (capped at the forming candle), on demand.

    The coverage watermark moves only when the range touches it, so an old range filled on
    demand cannot claim that the stretch after it was checked.
    """
    exchange = source.exchange
    step = timeframe.ms
    lo = -(-start_ms // step) * step
    hi = min(timeframe.open_time(now_ms), -(-end_ms // step) * step)
    if hi <= lo:
        return SeriesRepair(exchange, symbol, timeframe, 0, 0, 0, 0, lo)
    verified = await asyncio.to_thread(_coverage, database, exchange, symbol, timeframe)
    missing = await asyncio.to_thread(_find_missing, database, exchange, symbol, timeframe, lo, hi)
    fetched = written = pages_done = 0
    for run_start, run_end in missing_runs(missing, step):
        for page in await fetch_range(source, symbol, timeframe, run_start, run_end, page_limit=page_limit):
            fetched += len(page)
            written += await asyncio.to_thread(_write_page, database, exchange, symbol, timeframe, page, None)
            pages_done += 1
    settled = min(hi, timeframe.open_time(now_ms - DEFAULT_SETTLE_MS))
    touches = verified is not None and lo <= verified < settled
    if touches:
        await asyncio.to_thread(_write_page, database, exchange, symbol, timeframe, _empty_rows(), settled)
    return SeriesRepair(
        exchange, symbol, timeframe, len(missing), fetched, written, pages_done, settled if touches else lo
    )


def _empty_rows() -> OhlcvRows:
    ints = np.empty(0, dtype=np.int64)
    floats = np.empty(0, dtype=np.float64)
    return OhlcvRows(ints, floats, floats, floats, floats, floats)

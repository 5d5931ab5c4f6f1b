"""Market-data benchmarks: batch aggregation against ccxt and pandas, and streaming throughput.

Run: `python bench/market_data.py` (under a minute on one core). Every figure comes from
this run on this machine, so the ratios compare like with like. Sections are plain functions
returning rows: batch aggregation, streaming, and candle persistence (on an embedded
PostgreSQL 16 the run starts in a temp dir; its rates are rows/s).
"""

from __future__ import annotations

import gc
import os
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ccxt
import numpy as np
import pandas as pd

from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import ALL_TIMEFRAMES, Timeframe
from tekoa.market.aggregation import aggregate_trades, aggregate_trades_all
from tekoa.market.sources import OhlcvRows, TradeBatch
from tekoa.market.streaming import StreamingAggregator

T0 = 1_717_200_000_000  # 2024-06-01T00:00Z
TRADES = 1_000_000
CCXT_TRADES = 100_000
SYMBOLS = 50


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    section: str
    case: str
    trades_per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    note: str = ""


def synthetic_trades(
    n: int, seed: int = 42, span_ms: int = 3 * 86_400_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` ascending trades over `span_ms`: Poisson arrivals, random-walk prices on a tick."""
    rng = np.random.default_rng(seed)
    timestamps = T0 + np.cumsum(rng.exponential(span_ms / n, n)).astype(np.int64)
    prices = np.round(60_000 * np.exp(np.cumsum(rng.normal(0, 2e-4, n))), 2)
    amounts = np.round(rng.lognormal(-4, 1.2, n), 5)
    return timestamps, prices, amounts


def timed(function: Callable[[], object], repeats: int) -> np.ndarray:
    """Wall seconds of each of `repeats` calls."""
    samples = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        function()
        samples[i] = time.perf_counter() - start
    return samples


def peak_traced_mb(function: Callable[[], object]) -> float:
    """Peak Python/numpy heap (MB) allocated during one call."""
    gc.collect()
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def pandas_ohlcv(timestamps: np.ndarray, prices: np.ndarray, amounts: np.ndarray, rule: str) -> pd.DataFrame:
    """The idiomatic pandas way, from arrays: resample().ohlc() plus volume and count."""
    index = pd.to_datetime(timestamps, unit="ms", utc=True)
    frame = pd.DataFrame({"price": prices, "amount": amounts}, index=index)
    resampled = frame.resample(rule)
    out = resampled["price"].ohlc()
    out["volume"] = resampled["amount"].sum()
    out["count"] = resampled["amount"].count()
    return out.dropna()


def bench_batch_aggregation() -> list[Row]:
    """(a) 1M trades into all six timeframes, next to ccxt and pandas for one timeframe."""
    timestamps, prices, amounts = synthetic_trades(TRADES)
    aggregate_trades_all(timestamps[:1000], prices[:1000], amounts[:1000])  # compile / load cache
    rows: list[Row] = []

    all_six = timed(lambda: aggregate_trades_all(timestamps, prices, amounts), 30)
    one = timed(lambda: aggregate_trades(timestamps, prices, amounts, Timeframe.M1), 30)
    memory = peak_traced_mb(lambda: aggregate_trades_all(timestamps, prices, amounts))
    ours_rate = TRADES / np.median(all_six)
    rows.append(
        Row(
            "batch",
            f"tekoa aggregate_trades_all, 6 timeframes, {TRADES:,} trades",
            ours_rate,
            float(np.percentile(all_six, 50) * 1e3),
            float(np.percentile(all_six, 99) * 1e3),
            f"peak alloc {memory:.1f} MB",
        )
    )
    one_rate = TRADES / np.median(one)
    rows.append(
        Row(
            "batch",
            "tekoa aggregate_trades, 1m",
            one_rate,
            float(np.percentile(one, 50) * 1e3),
            float(np.percentile(one, 99) * 1e3),
        )
    )

    exchange = ccxt.Exchange()
    subset = [
        {"timestamp": int(t), "price": float(p), "amount": float(a)}
        for t, p, a in zip(timestamps[:CCXT_TRADES], prices[:CCXT_TRADES], amounts[:CCXT_TRADES], strict=True)
    ]
    ccxt_runs = timed(lambda: exchange.build_ohlcvc(subset, "1m"), 3)
    ccxt_rate = CCXT_TRADES / np.median(ccxt_runs)
    rows.append(
        Row(
            "batch",
            f"ccxt build_ohlcvc, 1m, {CCXT_TRADES:,} trades (dicts prebuilt)",
            ccxt_rate,
            float(np.percentile(ccxt_runs, 50) * 1e3),
            float(np.percentile(ccxt_runs, 99) * 1e3),
        )
    )

    pandas_runs = timed(lambda: pandas_ohlcv(timestamps, prices, amounts, "1min"), 5)
    pandas_rate = TRADES / np.median(pandas_runs)
    rows.append(
        Row(
            "batch",
            f"pandas resample().ohlc(), 1m, {TRADES:,} trades",
            pandas_rate,
            float(np.percentile(pandas_runs, 50) * 1e3),
            float(np.percentile(pandas_runs, 99) * 1e3),
        )
    )
    rows.append(
        Row(
            "batch",
            "ratio tekoa 6 tf / ccxt 1 tf",
            ours_rate / ccxt_rate,
            note=f"1 tf vs 1 tf: {one_rate / ccxt_rate:,.0f}x",
        )
    )
    rows.append(
        Row(
            "batch",
            "ratio tekoa 6 tf / pandas 1 tf",
            ours_rate / pandas_rate,
            note=f"1 tf vs 1 tf: {one_rate / pandas_rate:,.0f}x",
        )
    )
    return rows


def streaming_batches(seed: int = 7) -> list[TradeBatch]:
    """1M trades over 50 symbols in 6 hours (~9 trades/s each), as batches of 100-1000 trades.

    Batches are delivered in order of their first trade, as a multiplexed feed would; the
    clock is the first trade time of the batch being delivered, so no trade is late.
    """
    rng = np.random.default_rng(seed)
    per_symbol = TRADES // SYMBOLS
    batches: list[tuple[int, TradeBatch]] = []
    for s in range(SYMBOLS):
        timestamps, prices, amounts = synthetic_trades(per_symbol, seed=seed + s, span_ms=6 * 3_600_000)
        ids = np.arange(per_symbol, dtype=np.int64) + 1
        start = 0
        while start < per_symbol:
            stop = min(per_symbol, start + int(rng.integers(100, 1001)))
            batch = TradeBatch(
                "bench",
                f"S{s:02d}/USDT",
                timestamps[start:stop],
                prices[start:stop],
                amounts[start:stop],
                ids[start:stop],
            )
            batches.append((int(timestamps[start]), batch))
            start = stop
    batches.sort(key=lambda item: item[0])  # the order a multiplexed feed would deliver them
    return [batch for _, batch in batches]


def bench_streaming() -> list[Row]:
    """(b) StreamingAggregator over 50 symbols and six timeframes, one core."""
    batches = streaming_batches()
    warm = StreamingAggregator(ALL_TIMEFRAMES)  # compile / load cache
    for batch in batches[:200]:
        warm.ingest(batch)
    warm.advance(T0 + 10 * 86_400_000)

    aggregator = StreamingAggregator(ALL_TIMEFRAMES)
    latencies = np.empty(len(batches))
    closed = 0
    gc.collect()
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        batch_start = time.perf_counter()
        closed += len(aggregator.ingest(batch))
        if i % SYMBOLS == 0:  # the clock ticks about once per round of symbols
            closed += len(aggregator.advance(int(batch.timestamps_ms[0])))
        latencies[i] = time.perf_counter() - batch_start
    elapsed = time.perf_counter() - start
    stats = aggregator.stats
    sizes = np.array([len(b) for b in batches])
    return [
        Row(
            "streaming",
            f"StreamingAggregator, {SYMBOLS} symbols x 6 tf, {len(batches):,} batches "
            f"(mean {sizes.mean():.0f} trades)",
            stats.trades_in / elapsed,
            float(np.percentile(latencies, 50) * 1e3),
            float(np.percentile(latencies, 99) * 1e3),
            f"{closed:,} candles closed, {stats.late_trades} late, {stats.duplicates} dup",
        )
    ]


PERSIST_SERIES = 20
PERSIST_ROWS_PER_SERIES = 50_000
PERSIST_WORKERS = 2
UPSERT_ROWS = 100_000
UPSERT_BATCH = 2_000


def synthetic_history(n: int, seed: int, start_ms: int = T0) -> OhlcvRows:
    """`n` consecutive 1m candles of a random walk, as a REST backfill returns them."""
    rng = np.random.default_rng(seed)
    close = np.round(60_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, n))), 2)
    open_ = np.concatenate(([close[0]], close[:-1]))
    return OhlcvRows(
        open_time_ms=start_ms + np.arange(n, dtype=np.int64) * 60_000,
        open=open_,
        high=np.maximum(open_, close) + np.round(rng.random(n) * 5, 2),
        low=np.minimum(open_, close) - np.round(rng.random(n) * 5, 2),
        close=close,
        volume=np.round(rng.lognormal(0, 1, n), 5),
    )


def bench_persistence() -> list[Row]:
    """(c) Candle writes on the embedded PostgreSQL 16 this run starts in a temp dir:
    bulk backfill by binary COPY (fresh, then re-run: idempotent) and the stream's upserts."""
    from tekoa.db.candle_copy import copy_ohlcv
    from tekoa.db.candles import upsert_candles
    from tekoa.db.connection import connect, service_transaction
    from tekoa.db.migrate import migrate
    from tekoa.local.postgres import EmbeddedPostgres, ensure_database

    rows: list[Row] = []
    histories = [synthetic_history(PERSIST_ROWS_PER_SERIES, seed) for seed in range(PERSIST_SERIES)]
    total = PERSIST_SERIES * PERSIST_ROWS_PER_SERIES
    with tempfile.TemporaryDirectory(prefix="tekoa-bench-pg-") as data_dir:
        server = EmbeddedPostgres(Path(data_dir))
        admin = server.start()
        try:
            url = ensure_database(admin, "bench")
            migrate(url)
            with connect(url) as conn:

                def copy_all(label: str, market: str) -> None:
                    latencies = np.empty(PERSIST_SERIES)
                    written = 0
                    start = time.perf_counter()
                    for i, history in enumerate(histories):
                        batch_start = time.perf_counter()
                        with service_transaction(conn):
                            written += copy_ohlcv(
                                conn, "bench", f"{market}{i:02d}/USDT", Timeframe.M1, history
                            )
                        latencies[i] = time.perf_counter() - batch_start
                    elapsed = time.perf_counter() - start
                    rows.append(
                        Row(
                            "persist",
                            f"binary COPY, {label}, {PERSIST_SERIES} x {PERSIST_ROWS_PER_SERIES:,} rows"
                            " (rows/s)",
                            total / elapsed,
                            float(np.percentile(latencies, 50) * 1e3),
                            float(np.percentile(latencies, 99) * 1e3),
                            f"{written:,} rows written/changed; batch = one series",
                        )
                    )

                copy_all("fresh (straight into candles)", "S")
                copy_all("re-run (all stored: staging + merge)", "S")
                for i, history in enumerate(histories):  # a repair: the older half is stored already
                    with service_transaction(conn):
                        copy_ohlcv(
                            conn,
                            "bench",
                            f"H{i:02d}/USDT",
                            Timeframe.M1,
                            history.take(slice(0, len(history) // 2)),
                        )
                copy_all("half stored (staging + merge)", "H")

                # Backfills of different markets are independent: two connections at once
                # (threads; psycopg releases the GIL while PostgreSQL works).
                def copy_share(worker: int) -> None:
                    with connect(url) as own:
                        for i in range(worker, PERSIST_SERIES, PERSIST_WORKERS):
                            with service_transaction(own):
                                copy_ohlcv(own, "bench", f"P{i:02d}/USDT", Timeframe.M1, histories[i])

                start = time.perf_counter()
                with ThreadPoolExecutor(PERSIST_WORKERS) as pool:
                    list(pool.map(copy_share, range(PERSIST_WORKERS)))
                elapsed = time.perf_counter() - start
                rows.append(
                    Row(
                        "persist",
                        f"binary COPY, fresh, {PERSIST_WORKERS} connections in parallel (rows/s)",
                        total / elapsed,
                        note=f"{PERSIST_WORKERS} markets at a time on {os.cpu_count()} cores",
                    )
                )

                candles = [
                    Candle.from_floats(
                        "bench",
                        f"U{i // 10_000:02d}/USDT",
                        Timeframe.M1,
                        T0 + (i % 10_000) * 60_000,
                        (60_000.0, 60_010.5, 59_990.25, 60_001.75, 1.23456),
                        42,
                    )
                    for i in range(UPSERT_ROWS)
                ]
                batches = [candles[i : i + UPSERT_BATCH] for i in range(0, UPSERT_ROWS, UPSERT_BATCH)]
                for label in ("new rows", "replayed rows"):
                    latencies = np.empty(len(batches))
                    start = time.perf_counter()
                    for i, batch in enumerate(batches):
                        batch_start = time.perf_counter()
                        with service_transaction(conn):
                            upsert_candles(conn, batch, announced=False)
                        latencies[i] = time.perf_counter() - batch_start
                    elapsed = time.perf_counter() - start
                    rows.append(
                        Row(
                            "persist",
                            f"upsert_candles (Decimal rows, unnest + ON CONFLICT), {label}, "
                            f"batches of {UPSERT_BATCH:,} (rows/s)",
                            UPSERT_ROWS / elapsed,
                            float(np.percentile(latencies, 50) * 1e3),
                            float(np.percentile(latencies, 99) * 1e3),
                        )
                    )

                def one_series() -> None:
                    with service_transaction(conn):
                        copy_ohlcv(conn, "bench", "MEM/USDT", Timeframe.M1, histories[0])

                memory = peak_traced_mb(one_series)
                rows.append(
                    Row(
                        "persist",
                        "peak Python/numpy alloc of one 50k-row COPY batch (MB)",
                        memory,
                        note="tracemalloc",
                    )
                )
        finally:
            server.stop()
    return rows


def print_table(rows: list[Row]) -> None:
    """Fixed-width table: section, case, trades/s, p50/p99 ms, note."""
    header = f"{'section':<10} {'case':<92} {'trades/s | ratio':>17} {'p50 ms':>9} {'p99 ms':>9}  note"
    print(header)
    print("-" * len(header))
    for row in rows:
        rate = f"{row.trades_per_s:,.1f}x" if row.case.startswith("ratio") else f"{row.trades_per_s:,.0f}"
        p50 = "" if row.p50_ms is None else f"{row.p50_ms:.3f}"
        p99 = "" if row.p99_ms is None else f"{row.p99_ms:.3f}"
        print(f"{row.section:<10} {row.case:<92} {rate:>17} {p50:>9} {p99:>9}  {row.note}")


def main() -> None:
    """Run every section and print one table."""
    started = time.perf_counter()
    rows = bench_batch_aggregation() + bench_streaming() + bench_persistence()
    print_table(rows)
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS {max_rss_mb:.0f} MB; total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

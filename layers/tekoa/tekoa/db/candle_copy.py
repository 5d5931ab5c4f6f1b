"""Bulk candle writes: binary COPY from columnar numpy arrays, straight into `candles` when
the batch's range holds no stored candle (a backfill), else through a staging table and a merge.

The COPY stream is built by numba in one pass (`tekoa.db.binary_copy`): prices and volumes go
out as NUMERIC in its binary form, rounded to 15 significant digits exactly as
`tekoa.domain.candles.decimal_from_float` does, so a candle written here equals the one the
stream upserts and the server converts nothing. Under the series' write lock, one index probe
decides the path: an empty range takes the COPY as it is (the server's multi-row insert);
otherwise rows land in a transaction-local table shaped like `candles`, an UPDATE rewrites
stored rows that differ and an anti-join INSERT adds the missing ones. Re-running a backfill
stores each candle once and rewrites nothing that is unchanged. (An `INSERT … ON CONFLICT`
merge does the same in one statement but measured 1.7x slower: speculative insertion per row.)

Kept out of `tekoa.db.candles` because it imports numpy, which the API must not load at start.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from tekoa.db.binary_copy import CANDLE_COLUMNS, encode_candle_copy
from tekoa.db.candles import ensure_series, lock_series, series_ids, series_lock_key
from tekoa.domain.timeframes import Timeframe
from tekoa.market.frame import CandleFrame
from tekoa.market.sources import OhlcvRows

_FLOAT_COLUMNS = ("open", "high", "low", "close", "volume")
_COPY_INTO = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)")


def validate_rows(rows: OhlcvRows, timeframe: Timeframe) -> None:
    """Refuse misaligned or repeated open times and inconsistent OHLCV (what the table leaves unchecked)."""
    times = rows.open_time_ms
    if np.any(times % timeframe.ms):
        raise ValueError(f"open times not aligned to {timeframe}")
    if not np.all(times[1:] > times[:-1]) and np.unique(times).size != times.size:
        raise ValueError("an open time occurs twice in the batch")
    low_ok = rows.low <= np.minimum(rows.open, rows.close)
    high_ok = np.maximum(rows.open, rows.close) <= rows.high
    if not (np.all(low_ok & high_ok) and np.all(rows.volume >= 0)):
        raise ValueError("inconsistent OHLCV rows (low/high outside open/close, or negative volume)")


def finite_rows(rows: OhlcvRows) -> tuple[OhlcvRows, int]:
    """Drop rows with a missing (NaN) or infinite value; return the rest and how many were dropped."""
    keep = np.ones(len(rows), dtype=bool)
    for name in _FLOAT_COLUMNS:
        keep &= np.isfinite(getattr(rows, name))
    dropped = int(len(rows) - keep.sum())
    if not dropped:
        return rows, 0
    return rows.take(keep), dropped


def copy_ohlcv(
    conn: psycopg.Connection[Any],
    exchange: str,
    symbol: str,
    timeframe: Timeframe,
    rows: OhlcvRows,
    trades: npt.NDArray[np.int64] | None = None,
) -> int:
    """Write one series' candles by binary COPY and merge them; return rows written or changed.

    Must run inside a transaction (the staging table lives until it commits). Rows must be
    finite (see `finite_rows`); `validate_rows` refuses misaligned or inconsistent ones with
    ValueError before anything is sent. `trades` may be None (REST history): a stored trade
    count is then kept while the candle is unchanged, and becomes unknown (NULL) when the
    history replaces its values (a half-built candle repaired after an outage).
    """
    if len(rows) == 0:
        return 0
    validate_rows(rows, timeframe)
    lock_series(conn, [series_lock_key(exchange, symbol, timeframe)])
    series_id = ensure_series(conn, [(exchange, symbol, timeframe)])[(exchange, symbol, timeframe)]
    values = np.stack([getattr(rows, name) for name in _FLOAT_COLUMNS])
    stream = encode_candle_copy(series_id, rows.open_time_ms, values, trades)
    with conn.cursor() as cursor:
        # One index probe: does the batch touch stored candles at all? A backfill does not,
        # and then the COPY goes straight into the table.
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM candles WHERE series_id = %s AND open_time BETWEEN %s AND %s)",
            (series_id, int(rows.open_time_ms.min()), int(rows.open_time_ms.max())),
        )
        overlap = cursor.fetchone()
        if overlap is None or not overlap[0]:
            with cursor.copy(_COPY_INTO.format(sql.Identifier("candles"), CANDLE_COLUMNS)) as copy:
                copy.write(stream.data)
            return len(rows)
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS candle_stage (LIKE candles) ON COMMIT DROP")
        with cursor.copy(_COPY_INTO.format(sql.Identifier("candle_stage"), CANDLE_COLUMNS)) as copy:
            copy.write(stream.data)
        # Stored rows that differ (a repair after a reconnect, a corrected history) ...
        cursor.execute(
            "UPDATE candles c SET open = s.open, high = s.high, low = s.low, close = s.close,"
            " volume = s.volume,"
            # A count no longer matches values the exchange replaced: unknown unless given.
            " trades = CASE WHEN (c.open, c.high, c.low, c.close, c.volume)"
            "     IS DISTINCT FROM (s.open, s.high, s.low, s.close, s.volume)"
            "     THEN s.trades ELSE COALESCE(s.trades, c.trades) END"
            " FROM candle_stage s WHERE c.series_id = %s AND c.open_time = s.open_time"
            " AND (c.open, c.high, c.low, c.close, c.volume, c.trades) IS DISTINCT FROM"
            "     (s.open, s.high, s.low, s.close, s.volume, COALESCE(s.trades, c.trades))",
            (series_id,),
        )
        written = cursor.rowcount
        # ... then the new ones (the series lock keeps other writers out between check and insert).
        cursor.execute(
            sql.SQL(
                "INSERT INTO candles ({columns}) SELECT {columns} FROM candle_stage s"
                " WHERE NOT EXISTS (SELECT 1 FROM candles c"
                "                   WHERE c.series_id = %s AND c.open_time = s.open_time)"
            ).format(columns=CANDLE_COLUMNS),
            (series_id,),
        )
        written += cursor.rowcount
        cursor.execute("TRUNCATE candle_stage")
    return written


# -- reading frames -------------------------------------------------------------------------

# One COPY row per candle: series id (int4), open time (int8), then open, high, low, close and
# volume as float8 — fixed widths, so the whole stream is one numpy record array (big-endian,
# each field preceded by its length) with no per-row Python. The columns are NOT NULL.
_FRAME_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("series_len", ">i4"),
        ("series_id", ">i4"),
        ("time_len", ">i4"),
        ("open_time", ">i8"),
        *[(f, t) for name in _FLOAT_COLUMNS for f, t in ((f"{name}_len", ">i4"), (name, ">f8"))],
    ]
)
_COPY_HEADER = 19  # PGCOPY signature, flags, header extension length
_READ_FRAMES = (
    "COPY (SELECT c.series_id, c.open_time, c.open::float8, c.high::float8, c.low::float8,"
    " c.close::float8, c.volume::float8"
    " FROM unnest(%s::integer[], %s::bigint[], %s::bigint[]) AS w(series_id, lo, hi)"
    " JOIN candles c ON c.series_id = w.series_id AND c.open_time >= w.lo AND c.open_time < w.hi"
    " ORDER BY c.series_id, c.open_time) TO STDOUT (FORMAT BINARY)"
)


def read_frames(
    conn: psycopg.Connection[Any], windows: dict[tuple[str, str, Timeframe], tuple[int, int]]
) -> dict[tuple[str, str, Timeframe], CandleFrame]:
    """The stored candles of many series at once, each within its `[start_ms, end_ms)` window,
    as frames: one query and one binary COPY whatever the number of series (the evaluator's
    read of every market it decides on). Series with no candles get an empty frame."""
    keys = list(windows)
    ids = series_ids(conn, keys)
    known = [key for key in keys if key in ids]
    chunks: list[bytes] = []
    if known:
        with conn.cursor().copy(
            _READ_FRAMES,
            (
                [ids[key] for key in known],
                [windows[key][0] for key in known],
                [windows[key][1] for key in known],
            ),
        ) as copy:
            chunks = [bytes(chunk) for chunk in copy]
    data = b"".join(chunks)
    body = data[_COPY_HEADER:-2] if data else b""  # header, then rows, then the -1 trailer
    rows = np.frombuffer(body, dtype=_FRAME_ROW) if body else np.empty(0, dtype=_FRAME_ROW)
    series = rows["series_id"]
    frames = {}
    for key in keys:
        timeframe = key[2]
        if key not in ids:
            frames[key] = CandleFrame.empty(timeframe)
            continue
        start, end = np.searchsorted(series, [ids[key], ids[key] + 1])
        part = rows[start:end]
        frames[key] = CandleFrame(
            timeframe,
            part["open_time"].astype(np.int64),
            *(part[name].astype(np.float64) for name in _FLOAT_COLUMNS),
        )
    return frames

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

# One row per series: its candles' columns as arrays, each sent in the array's binary form
# (`array_send`: a 20-byte header, then each element as its length and its big-endian value).
# The columns are NOT NULL and fixed-width, so each array is one numpy view: a hundred rows for
# a hundred markets rather than a COPY row (and a Python iteration) per candle.
_ARRAY_HEADER = 20  # ndim, has-nulls flag, element type, length, lower bound
_INT8_ELEMENTS = np.dtype([("size", ">i4"), ("value", ">i8")])
_FLOAT8_ELEMENTS = np.dtype([("size", ">i4"), ("value", ">f8")])
_READ_FRAMES = (
    "SELECT w.series_id, array_send(array_agg(c.open_time ORDER BY c.open_time)),"
    " array_send(array_agg(c.open::float8 ORDER BY c.open_time)),"
    " array_send(array_agg(c.high::float8 ORDER BY c.open_time)),"
    " array_send(array_agg(c.low::float8 ORDER BY c.open_time)),"
    " array_send(array_agg(c.close::float8 ORDER BY c.open_time)),"
    " array_send(array_agg(c.volume::float8 ORDER BY c.open_time))"
    " FROM unnest(%b::integer[], %b::bigint[], %b::bigint[]) AS w(series_id, lo, hi)"
    " JOIN candles c ON c.series_id = w.series_id AND c.open_time >= w.lo AND c.open_time < w.hi"
    " GROUP BY w.series_id"
)


def _column(data: bytes, elements: np.dtype[Any], native: type[np.generic]) -> npt.NDArray[Any]:
    return np.frombuffer(data, dtype=elements, offset=_ARRAY_HEADER)["value"].astype(native)


def read_frames(
    conn: psycopg.Connection[Any], windows: dict[tuple[str, str, Timeframe], tuple[int, int]]
) -> dict[tuple[str, str, Timeframe], CandleFrame]:
    """The stored candles of many series at once, each within its `[start_ms, end_ms)` window,
    as frames: one query whatever the number of series, one row per series (the evaluator's
    read of every market it decides on). Series with no candles get an empty frame."""
    keys = list(windows)
    ids = series_ids(conn, keys)
    known = [key for key in keys if key in ids]
    columns: dict[int, tuple[bytes, ...]] = {}
    if known:
        with conn.cursor(binary=True) as cursor:
            cursor.execute(
                _READ_FRAMES,
                (
                    [ids[key] for key in known],
                    [windows[key][0] for key in known],
                    [windows[key][1] for key in known],
                ),
            )
            columns = {row[0]: row[1:] for row in cursor.fetchall()}
    frames = {}
    for key in keys:
        found = columns.get(ids[key]) if key in ids else None
        if found is None:
            frames[key] = CandleFrame.empty(key[2])
            continue
        frames[key] = CandleFrame(
            key[2],
            _column(found[0], _INT8_ELEMENTS, np.int64),
            *(_column(data, _FLOAT8_ELEMENTS, np.float64) for data in found[1:]),
        )
    return frames

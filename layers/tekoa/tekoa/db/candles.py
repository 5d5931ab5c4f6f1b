"""Candles, their coverage watermark and per-market freshness: the market-data repository.

Row-level access for the stream, the API and gap repair. Bulk history goes through binary
COPY in `tekoa.db.candle_copy` (kept apart because it needs numpy, which the API must not
import at start).

Every function runs on the caller's connection and transaction; writers belong inside one
transaction (`service_transaction`) so a batch and the watermark that covers it commit together.
Times are UTC milliseconds since the epoch (`bigint`), as in the domain and at the wire.
Candles are keyed by (series_id, open_time); `candle_series` names each series (migration 0005).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import Timeframe

UPSERT_BATCH = 2_000
"""Rows per upsert statement (arrays bound as parameters: one round trip per batch)."""

MAX_GAP_SCAN = 200_000
"""Most open times one `find_gaps` call may examine (about 139 days of 1m candles)."""

_NO_LOWER = -(2**62)
_NO_UPPER = 2**62

# On conflict, rewrite a stored candle only when something differs, so replaying a batch
# leaves no dead tuples behind. A REST row (trades NULL) keeps a known trade count.
# `announced` only ever moves towards "not yet": a candle pending its event stays pending.
# A rewrite with identical values changes nothing (an announced candle stays announced);
# a corrected candle takes the new values and, written as unannounced, is announced again.
_UPSERT = """
INSERT INTO candles (series_id, open_time, open, high, low, close, volume, trades, announced)
SELECT s.id, u.open_time, u.open, u.high, u.low, u.close, u.volume, u.trades, u.announced
FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::numeric[], %s::numeric[],
            %s::numeric[], %s::numeric[], %s::numeric[], %s::integer[], %s::boolean[])
     AS u(exchange, symbol, timeframe, open_time, open, high, low, close, volume, trades, announced)
JOIN candle_series s USING (exchange, symbol, timeframe)
ON CONFLICT (series_id, open_time) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume, trades = COALESCE(EXCLUDED.trades, candles.trades),
    announced = candles.announced AND EXCLUDED.announced
WHERE (candles.open, candles.high, candles.low, candles.close, candles.volume, candles.trades)
   IS DISTINCT FROM
      (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume,
       COALESCE(EXCLUDED.trades, candles.trades))
"""

# Every writer of a series holds its transaction-scoped advisory lock, so the bulk path may
# insert with a plain anti-join (no speculative insertion: measured 1.7x faster) without
# racing the stream's upserts. Keys are taken in sorted order, so writers cannot deadlock.
_LOCK_SERIES = (
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
    " FROM (SELECT DISTINCT unnest(%s::text[]) AS k ORDER BY 1) AS keys"
)


# Only the missing series reach the INSERT, so known ones do not use up identity values.
_ENSURE_SERIES = """
INSERT INTO candle_series (exchange, symbol, timeframe)
SELECT DISTINCT k.exchange, k.symbol, k.timeframe
FROM unnest(%s::text[], %s::text[], %s::text[]) AS k(exchange, symbol, timeframe)
WHERE NOT EXISTS (SELECT 1 FROM candle_series s
                  WHERE (s.exchange, s.symbol, s.timeframe) = (k.exchange, k.symbol, k.timeframe))
ON CONFLICT DO NOTHING
"""

# Every candle query reads through the series table: callers name a series, rows carry its id.
_SELECT_CANDLES = sql.SQL(
    "SELECT s.exchange, s.symbol, s.timeframe, c.open_time, c.open, c.high, c.low, c.close, c.volume,"
    " c.trades FROM candles c JOIN candle_series s ON s.id = c.series_id "
)
_OF_SERIES = sql.SQL("WHERE s.exchange = %s AND s.symbol = %s AND s.timeframe = %s ")

SeriesKey = tuple[str, str, Timeframe]
"""(exchange, symbol, timeframe): one candle series."""


def ensure_series(conn: psycopg.Connection[Any], keys: Iterable[SeriesKey]) -> dict[SeriesKey, int]:
    """The ids of these series, creating the ones not stored yet (a series is never deleted)."""
    unique = sorted(set(keys), key=lambda key: (key[0], key[1], key[2].value))
    if not unique:
        return {}
    columns = ([k[0] for k in unique], [k[1] for k in unique], [k[2].value for k in unique])
    conn.execute(_ENSURE_SERIES, columns)
    rows = conn.execute(
        "SELECT k.exchange, k.symbol, k.timeframe, s.id"
        " FROM unnest(%s::text[], %s::text[], %s::text[]) AS k(exchange, symbol, timeframe)"
        " JOIN candle_series s USING (exchange, symbol, timeframe)",
        columns,
    ).fetchall()
    return {(exchange, symbol, Timeframe(timeframe)): int(id_) for exchange, symbol, timeframe, id_ in rows}


def series_ids(conn: psycopg.Connection[Any], keys: Iterable[SeriesKey]) -> dict[SeriesKey, int]:
    """The ids of the series among `keys` that are stored (none is created)."""
    unique = list(set(keys))
    rows = conn.execute(
        "SELECT s.exchange, s.symbol, s.timeframe, s.id FROM candle_series s"
        " JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(exchange, symbol, timeframe)"
        " ON (s.exchange, s.symbol, s.timeframe) = (k.exchange, k.symbol, k.timeframe)",
        ([k[0] for k in unique], [k[1] for k in unique], [k[2].value for k in unique]),
    ).fetchall()
    return {(str(e), str(s), Timeframe(t)): int(i) for e, s, t, i in rows}


def series_lock_key(exchange: str, symbol: str, timeframe: Timeframe) -> str:
    """The advisory-lock name of one candle series."""
    return f"candles|{exchange}|{symbol}|{timeframe.value}"


def lock_series(conn: psycopg.Connection[Any], keys: Iterable[str]) -> None:
    """Hold the write locks of these series until the transaction ends."""
    conn.execute(_LOCK_SERIES, (sorted(set(keys)),))


@dataclass(frozen=True, slots=True)
class MarketFreshness:
    """Whether a market's stored data can be trusted now, and why not when it cannot."""

    exchange: str
    symbol: str
    fresh: bool
    reason: str | None
    changed_at: datetime


def upsert_candles(
    conn: psycopg.Connection[Any],
    candles: Iterable[Candle],
    *,
    announced: bool = True,
    batch_size: int = UPSERT_BATCH,
) -> int:
    """Insert or update closed candles, one statement per batch; return how many were sent.

    Idempotent: writing the same candles again changes nothing (rows are rewritten only when
    a value differs). A key given twice keeps its last candle. `announced=False` marks them
    as awaiting their `candle.closed` event (see `unannounced_candles`). Call it inside a
    transaction: it takes the series' write locks (see `lock_series`).
    """
    latest: dict[tuple[str, str, Timeframe, int], Candle] = {}
    for candle in candles:
        latest[(candle.exchange, candle.symbol, candle.timeframe, candle.open_time)] = candle
    if not latest:
        return 0
    lock_series(conn, (series_lock_key(c.exchange, c.symbol, c.timeframe) for c in latest.values()))
    rows = list(latest.values())
    ensure_series(conn, ((c.exchange, c.symbol, c.timeframe) for c in rows))
    for start in range(0, len(rows), batch_size):
        conn.execute(_UPSERT, _columns(rows[start : start + batch_size], announced))
    return len(rows)


def _columns(candles: Sequence[Candle], announced: bool) -> tuple[list[Any], ...]:
    return (
        [c.exchange for c in candles],
        [c.symbol for c in candles],
        [c.timeframe.value for c in candles],
        [c.open_time for c in candles],
        [c.open for c in candles],
        [c.high for c in candles],
        [c.low for c in candles],
        [c.close for c in candles],
        [c.volume for c in candles],
        [c.trades for c in candles],
        [announced] * len(candles),
    )


def _candle(row: Sequence[Any]) -> Candle:
    exchange, symbol, timeframe, open_time, open_, high, low, close, volume, trades = row
    return Candle(
        exchange=exchange,
        symbol=symbol,
        timeframe=Timeframe(timeframe),
        open_time=int(open_time),
        open=Decimal(open_),
        high=Decimal(high),
        low=Decimal(low),
        close=Decimal(close),
        volume=Decimal(volume),
        trades=None if trades is None else int(trades),
    )


def read_candles(
    conn: psycopg.Connection[Any],
    exchange: str,
    symbol: str,
    timeframe: Timeframe,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = 500,
    after_open_time: int | None = None,
) -> list[Candle]:
    """Stored candles with `start_ms <= open_time < end_ms`, ascending, at most `limit`.

    `after_open_time` is the keyset cursor: only candles opening strictly after it.
    """
    lower = _NO_LOWER if start_ms is None else start_ms
    if after_open_time is not None:
        lower = max(lower, after_open_time + 1)
    rows = conn.execute(
        _SELECT_CANDLES
        + _OF_SERIES
        + sql.SQL("AND c.open_time >= %s AND c.open_time < %s ORDER BY c.open_time LIMIT %s"),
        (exchange, symbol, timeframe.value, lower, _NO_UPPER if end_ms is None else end_ms, limit),
    ).fetchall()
    return [_candle(row) for row in rows]


def latest_candle(
    conn: psycopg.Connection[Any], exchange: str, symbol: str, timeframe: Timeframe = Timeframe.M1
) -> Candle | None:
    """The newest stored candle of a series, or None."""
    row = conn.execute(
        _SELECT_CANDLES + _OF_SERIES + sql.SQL("ORDER BY c.open_time DESC LIMIT 1"),
        (exchange, symbol, timeframe.value),
    ).fetchone()
    return None if row is None else _candle(row)


def last_closed_open_time(
    conn: psycopg.Connection[Any], exchange: str, symbol: str, timeframe: Timeframe
) -> int | None:
    """Open time of the newest stored (so closed) candle of a series, or None."""
    row = conn.execute(
        "SELECT max(c.open_time) FROM candles c JOIN candle_series s ON s.id = c.series_id"
        " WHERE s.exchange = %s AND s.symbol = %s AND s.timeframe = %s",
        (exchange, symbol, timeframe.value),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def last_closed_open_times(conn: psycopg.Connection[Any], exchange: str, symbol: str) -> dict[Timeframe, int]:
    """`last_closed_open_time` of every timeframe of a market that has candles (one index probe each)."""
    rows = conn.execute(
        "SELECT s.timeframe, (SELECT max(c.open_time) FROM candles c WHERE c.series_id = s.id)"
        " FROM candle_series s WHERE s.exchange = %s AND s.symbol = %s",
        (exchange, symbol),
    ).fetchall()
    return {Timeframe(tf): int(open_time) for tf, open_time in rows if open_time is not None}


def find_gaps(
    conn: psycopg.Connection[Any],
    exchange: str,
    symbol: str,
    timeframe: Timeframe,
    since_ms: int,
    until_ms: int,
) -> list[int]:
    """Open times in `[since_ms, until_ms)` (aligned to the timeframe) with no stored candle.

    A generate_series anti-join on the primary key. A range of more than `MAX_GAP_SCAN`
    candles is refused: scan it in pieces.
    """
    step = timeframe.ms
    first = -(-since_ms // step) * step
    last = (until_ms - 1) // step * step
    if last < first:
        return []
    if (last - first) // step + 1 > MAX_GAP_SCAN:
        raise ValueError(f"gap scan of more than {MAX_GAP_SCAN} candles: split the range")
    rows = conn.execute(
        "SELECT t FROM generate_series(%s::bigint, %s::bigint, %s::bigint) AS t"
        " WHERE NOT EXISTS (SELECT 1 FROM candles c WHERE c.open_time = t AND c.series_id = (SELECT id"
        "                   FROM candle_series WHERE exchange = %s AND symbol = %s AND timeframe = %s))"
        " ORDER BY t",
        (first, last, step, exchange, symbol, timeframe.value),
    ).fetchall()
    return [int(row[0]) for row in rows]


def delete_older_than(conn: psycopg.Connection[Any], timeframe: Timeframe, cutoff_ms: int) -> int:
    """Retention: delete every market's candles of `timeframe` opening before `cutoff_ms`."""
    cursor = conn.execute(
        "DELETE FROM candles c USING candle_series s"
        " WHERE s.id = c.series_id AND s.timeframe = %s AND c.open_time < %s",
        (timeframe.value, cutoff_ms),
    )
    return cursor.rowcount


# -- the candle.closed outbox ------------------------------------------------------------------


def unannounced_candles(conn: psycopg.Connection[Any], exchange: str, limit: int = 500) -> list[Candle]:
    """Stored candles whose `candle.closed` event is not yet confirmed published, oldest first."""
    rows = conn.execute(
        _SELECT_CANDLES + sql.SQL("WHERE NOT c.announced AND s.exchange = %s ORDER BY c.open_time LIMIT %s"),
        (exchange, limit),
    ).fetchall()
    return [_candle(row) for row in rows]


def mark_announced(conn: psycopg.Connection[Any], candles: Sequence[Candle]) -> None:
    """Record that these candles' events were published."""
    if not candles:
        return
    conn.execute(
        "UPDATE candles c SET announced = true"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[])"
        "      AS k(exchange, symbol, timeframe, open_time)"
        " JOIN candle_series s USING (exchange, symbol, timeframe)"
        " WHERE c.series_id = s.id AND c.open_time = k.open_time AND NOT c.announced",
        (
            [c.exchange for c in candles],
            [c.symbol for c in candles],
            [c.timeframe.value for c in candles],
            [c.open_time for c in candles],
        ),
    )


# -- coverage: how far a series has been checked against the exchange -----------------------


def get_verified_until(
    conn: psycopg.Connection[Any], exchange: str, symbol: str, timeframe: Timeframe
) -> int | None:
    """Every open time before this was checked against REST history (None: never checked)."""
    row = conn.execute(
        "SELECT verified_until FROM candle_coverage WHERE exchange = %s AND symbol = %s AND timeframe = %s",
        (exchange, symbol, timeframe.value),
    ).fetchone()
    return None if row is None else int(row[0])


def set_verified_until(
    conn: psycopg.Connection[Any], exchange: str, symbol: str, timeframe: Timeframe, verified_until: int
) -> None:
    """Move the watermark forward (never back: a slower concurrent repair cannot undo a faster one)."""
    conn.execute(
        "INSERT INTO candle_coverage (exchange, symbol, timeframe, verified_until) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (exchange, symbol, timeframe) DO UPDATE"
        " SET verified_until = greatest(candle_coverage.verified_until, EXCLUDED.verified_until),"
        "     updated_at = now()",
        (exchange, symbol, timeframe.value, verified_until),
    )


# -- freshness and the set of markets ---------------------------------------------------------


def set_freshness(
    conn: psycopg.Connection[Any], exchange: str, symbol: str, *, fresh: bool, reason: str | None = None
) -> None:
    """Record whether a market's data is trustworthy now (`reason` says why not)."""
    conn.execute(
        "INSERT INTO market_freshness (exchange, symbol, fresh, reason) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (exchange, symbol) DO UPDATE SET fresh = EXCLUDED.fresh, reason = EXCLUDED.reason,"
        " changed_at = CASE WHEN market_freshness.fresh = EXCLUDED.fresh"
        "                   THEN market_freshness.changed_at ELSE now() END",
        (exchange, symbol, fresh, None if fresh else reason),
    )


def get_freshness(conn: psycopg.Connection[Any], exchange: str, symbol: str) -> MarketFreshness | None:
    """The market's freshness record, or None if the platform never followed it."""
    row = conn.execute(
        "SELECT exchange, symbol, fresh, reason, changed_at FROM market_freshness"
        " WHERE exchange = %s AND symbol = %s",
        (exchange, symbol),
    ).fetchone()
    return None if row is None else MarketFreshness(*row)


def list_freshness(conn: psycopg.Connection[Any], exchange: str | None = None) -> list[MarketFreshness]:
    """Every known market (optionally of one exchange), ordered by exchange and symbol."""
    rows = conn.execute(
        "SELECT exchange, symbol, fresh, reason, changed_at FROM market_freshness"
        " WHERE exchange = COALESCE(%s, exchange) ORDER BY exchange, symbol",
        (exchange,),
    ).fetchall()
    return [MarketFreshness(*row) for row in rows]


def ensure_market(conn: psycopg.Connection[Any], exchange: str, symbol: str) -> None:
    """Register a market (not fresh until its history is repaired); no-op if known."""
    conn.execute(
        "INSERT INTO market_freshness (exchange, symbol, fresh, reason) VALUES (%s, %s, false, 'new')"
        " ON CONFLICT (exchange, symbol) DO NOTHING",
        (exchange, symbol),
    )


def markets_with_running_bots(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(exchange, symbol) of every running bot, across tenants (call in a service_transaction)."""
    rows = conn.execute(
        "SELECT DISTINCT exchange, symbol FROM bots WHERE status = 'running' ORDER BY exchange, symbol"
    ).fetchall()
    return [(str(exchange), str(symbol)) for exchange, symbol in rows]

"""Charts: content-addressed rows per user, and the stamps of the data a chart is drawn from.

Every query names its owner (RLS backs it up); a chart row is unique per (user, digest).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tekoa.charts.spec import Chart, ChartDocument, ChartOrigin, DataStamp

_COLUMNS = sql.SQL(
    "id, user_id, bot_id, digest, object_key, document, status, error, origin, queued_at, rendered_at,"
    " created_at"
)


def claim_chart(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    chart_id: UUID,
    digest: str,
    object_key: str,
    document: ChartDocument,
    origin: ChartOrigin,
) -> tuple[Chart, bool]:
    """The user's chart of `digest`: inserted as pending with `chart_id`, or the existing one.
    Answers (chart, created)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO charts (id, user_id, bot_id, digest, object_key, document, origin)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, digest) DO NOTHING"
                " RETURNING {}"
            ).format(_COLUMNS),
            (
                chart_id,
                user_id,
                document.bot_id,
                digest,
                object_key,
                Jsonb(document.model_dump(mode="json")),
                origin,
            ),
        )
        row = cur.fetchone()
        if row is not None:
            return Chart.model_validate(row), True
        cur.execute(
            sql.SQL("SELECT {} FROM charts WHERE user_id = %s AND digest = %s").format(_COLUMNS),
            (user_id, digest),
        )
        row = cur.fetchone()
    assert row is not None  # the conflicting row exists and charts are never deleted by users
    return Chart.model_validate(row), False


def get_chart(conn: psycopg.Connection[Any], user_id: UUID, chart_id: UUID) -> Chart | None:
    """The user's chart, or None (also for another user's id)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM charts WHERE user_id = %s AND id = %s").format(_COLUMNS),
            (user_id, chart_id),
        )
        row = cur.fetchone()
    return None if row is None else Chart.model_validate(row)


def mark_queued(conn: psycopg.Connection[Any], user_id: UUID, chart_id: UUID) -> None:
    """Pending again (its object expired, rendering failed, or its request got lost)."""
    conn.execute(
        "UPDATE charts SET status = 'pending', error = NULL, rendered_at = NULL, queued_at = now()"
        " WHERE user_id = %s AND id = %s",
        (user_id, chart_id),
    )


def mark_rendered(conn: psycopg.Connection[Any], user_id: UUID, chart_id: UUID) -> None:
    conn.execute(
        "UPDATE charts SET status = 'ready', error = NULL, rendered_at = now()"
        " WHERE user_id = %s AND id = %s",
        (user_id, chart_id),
    )


def mark_failed(conn: psycopg.Connection[Any], user_id: UUID, chart_id: UUID, error: str) -> None:
    conn.execute(
        "UPDATE charts SET status = 'failed', error = %s, rendered_at = NULL WHERE user_id = %s AND id = %s",
        (error[:1000], user_id, chart_id),
    )


def candle_stamp(
    conn: psycopg.Connection[Any], exchange: str, symbol: str, timeframe: str, start_ms: int, end_ms: int
) -> DataStamp:
    """How many candles of the series are stored in `[start, end)`, and the first and last."""
    row = conn.execute(
        "SELECT count(*), min(c.open_time), max(c.open_time) FROM candles c"
        " JOIN candle_series s ON s.id = c.series_id"
        " WHERE s.exchange = %s AND s.symbol = %s AND s.timeframe = %s"
        " AND c.open_time >= %s AND c.open_time < %s",
        (exchange, symbol, timeframe, start_ms, end_ms),
    ).fetchone()
    assert row is not None
    return DataStamp(candles=int(row[0]), first=row[1], last=row[2])

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


_BOT_TRADES = """
SELECT p.average_entry, p.exit_quantity, p.exit_value, p.closed_at IS NOT NULL AS closed, p.protection,
       min(f.executed_at) FILTER (WHERE o.side = 'buy') AS entry_time,
       max(f.executed_at) FILTER (WHERE o.side = 'sell') AS exit_time
FROM positions p
JOIN orders o ON o.position_id = p.id AND o.user_id = p.user_id
JOIN fills f ON f.order_id = o.id AND f.user_id = o.user_id
WHERE p.user_id = %(user_id)s AND p.bot_id = %(bot_id)s
GROUP BY p.id
HAVING min(f.executed_at) < %(end)s
   AND (p.closed_at IS NULL OR max(f.executed_at) FILTER (WHERE o.side = 'sell') >= %(start)s)
ORDER BY entry_time
"""


def bot_positions(
    conn: psycopg.Connection[Any], user_id: UUID, bot_id: UUID, start_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    """The bot's positions that traded in `[start, end)`: average entry and exit, the first
    buy's and last sell's execution times (ms), whether closed, and the armed protection."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_BOT_TRADES, {"user_id": user_id, "bot_id": bot_id, "start": start_ms, "end": end_ms})
        return list(cur.fetchall())


def bot_stamp(conn: psycopg.Connection[Any], user_id: UUID, bot_id: UUID) -> tuple[int, int]:
    """(fills, last change of its positions in ms) of a bot: what its chart's trades depend on."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM fills f JOIN orders o ON o.id = f.order_id AND o.user_id = f.user_id"
        "        WHERE o.user_id = %(user_id)s AND o.bot_id = %(bot_id)s),"
        " (SELECT coalesce(floor(extract(epoch FROM max(updated_at)) * 1000), 0)::bigint FROM positions"
        "        WHERE user_id = %(user_id)s AND bot_id = %(bot_id)s)",
        {"user_id": user_id, "bot_id": bot_id},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def closing_fill_time(conn: psycopg.Connection[Any], user_id: UUID, order_id: UUID) -> int | None:
    """When this order's last fill executed (ms), if the position it moved is closed (its fills
    ended a round trip); None otherwise."""
    row = conn.execute(
        "SELECT max(f.executed_at) FROM orders o"
        " JOIN positions p ON p.id = o.position_id AND p.user_id = o.user_id"
        " JOIN fills f ON f.order_id = o.id AND f.user_id = o.user_id"
        " WHERE o.user_id = %s AND o.id = %s AND p.closed_at IS NOT NULL AND p.exit_quantity > 0",
        (user_id, order_id),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])

"""The evaluator's reads and writes, set-based: one statement per kind of fact for every bot of
a tick (never a query per bot), as the platform's service role across tenants.

Reads: the running bots of some markets with their pinned strategy, account and runtime; their
open positions, working orders and unseen fills; the accounts' money; the users' risk rows and
open positions; the markets' last trades and minimum notionals. Writes: the evaluations (the
UNIQUE (bot_id, candle_open_time) key makes a repeated tick a no-op: only bots whose row went
in have their runtime updated and their intents sent), the runtime, the fills shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from tekoa.domain.execution import WORKING_STATUSES
from tekoa.domain.orders import NATIVE_STOP_LEG

_BOTS = """
SELECT b.id, b.user_id, b.exchange, b.symbol, b.timeframe, b.mode, b.risk::text AS risk,
       b.strategy_id, b.strategy_version,
       a.id AS account_id, a.trading_state AS account_state, a.trading_state_reason AS account_reason,
       r.memory::text AS memory, r.orders::text AS orders, r.last_candle, r.skips
FROM bots b
JOIN strategy_versions v ON v.strategy_id = b.strategy_id AND v.version = b.strategy_version
LEFT JOIN accounts a ON a.user_id = b.user_id AND a.exchange = b.exchange AND a.mode = b.mode
LEFT JOIN bot_runtime r ON r.bot_id = b.id
WHERE b.status = 'running' AND b.archived_at IS NULL
  AND (%(exchange)s::text IS NULL
       OR (b.exchange, b.symbol, b.timeframe) = (%(exchange)s, %(symbol)s, %(timeframe)s))
  AND (%(shards)s::int IS NULL OR abs(hashtext(b.exchange || '|' || b.symbol)) %% %(shards)s = %(shard)s)
"""


@dataclass(frozen=True, slots=True)
class MarketFilter:
    """Which bots a tick takes: one series (a `candle.closed` event), one shard, or all."""

    exchange: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    shard: int | None = None
    shards: int | None = None


def running_bots(conn: psycopg.Connection[Any], where: MarketFilter) -> list[dict[str, Any]]:
    """The running bots (and what the evaluator needs of each) that `where` selects."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _BOTS,
            {
                "exchange": where.exchange,
                "symbol": where.symbol,
                "timeframe": where.timeframe,
                "shard": where.shard,
                "shards": where.shards,
            },
        )
        return cur.fetchall()


def strategy_definitions(
    conn: psycopg.Connection[Any], keys: Iterable[tuple[UUID, int]]
) -> dict[tuple[UUID, int], str]:
    """The definition (JSON text) of each (strategy_id, version)."""
    wanted = list(keys)
    if not wanted:
        return {}
    found = conn.execute(
        "SELECT v.strategy_id, v.version, v.definition::text FROM strategy_versions v"
        " JOIN unnest(%b::uuid[], %b::int[]) AS k(strategy_id, version)"
        " ON (v.strategy_id, v.version) = (k.strategy_id, k.version)",
        ([k[0] for k in wanted], [k[1] for k in wanted]),
    ).fetchall()
    return {(strategy_id, version): text for strategy_id, version, text in found}


def count_running_bots(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM bots WHERE status = 'running' AND archived_at IS NULL"
    ).fetchone()
    return int(row[0]) if row else 0


def open_positions(conn: psycopg.Connection[Any], bot_ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT bot_id, id, quantity, average_entry, entry_quantity, protection::text AS protection,"
            " (extract(epoch FROM opened_at) * 1000)::bigint AS opened_ms"
            " FROM positions WHERE bot_id = ANY(%b) AND closed_at IS NULL",
            (list(bot_ids),),
        )
        return {row["bot_id"]: row for row in cur.fetchall()}


def bots_with_native_stops(conn: psycopg.Connection[Any], bot_ids: Sequence[UUID]) -> set[UUID]:
    """The bots whose position's stop works on the exchange (a working `nstop-` order)."""
    if not bot_ids:
        return set()
    rows = conn.execute(
        "SELECT DISTINCT bot_id FROM orders WHERE bot_id = ANY(%b) AND intent->>'leg' LIKE %s"
        " AND status = ANY(%s)",
        (list(bot_ids), NATIVE_STOP_LEG + "%", sorted(s.value for s in WORKING_STATUSES)),
    ).fetchall()
    return {row[0] for row in rows}


def order_statuses(conn: psycopg.Connection[Any], ids: Iterable[str]) -> dict[str, str]:
    """The status of each of `ids` the executor has recorded as an order."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(
        "SELECT client_order_id, status FROM orders WHERE client_order_id = ANY(%b)", (wanted,)
    ).fetchall()
    return {str(cid): str(status) for cid, status in rows}


def unseen_fills(conn: psycopg.Connection[Any], bot_ids: Sequence[UUID]) -> dict[UUID, list[dict[str, Any]]]:
    """Fills of the bots' orders not yet shown to their bot, oldest first."""
    out: dict[UUID, list[dict[str, Any]]] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT o.bot_id, f.id, o.client_order_id, o.intent ->> 'leg' AS leg, o.side, f.quantity,"
            " f.price, f.fee, f.executed_at"
            " FROM fills f JOIN orders o ON o.id = f.order_id"
            " JOIN bot_runtime r ON r.bot_id = o.bot_id"
            " WHERE o.bot_id = ANY(%b) AND f.created_at > r.fills_after"
            " AND NOT EXISTS (SELECT 1 FROM bot_fills_seen s WHERE s.fill_id = f.id)"
            " ORDER BY f.executed_at, f.id",
            (list(bot_ids),),
        )
        for row in cur.fetchall():
            out.setdefault(row["bot_id"], []).append(row)
    return out


def account_money(
    conn: psycopg.Connection[Any], account_ids: Sequence[UUID]
) -> dict[UUID, dict[str, Decimal]]:
    """Per account: quote `available` and `held`, `capital` put in, and `positions` (its open
    positions valued at the last trade, or at their entry price when none is known)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT a.id,"
            " coalesce((SELECT amount FROM balances b WHERE b.account_id = a.id"
            "   AND b.asset = a.quote_currency AND b.book = 'available'), 0) AS available,"
            " coalesce((SELECT amount FROM balances b WHERE b.account_id = a.id"
            "   AND b.asset = a.quote_currency AND b.book = 'held'), 0) AS held,"
            " -coalesce((SELECT amount FROM balances b WHERE b.account_id = a.id"
            "   AND b.asset = a.quote_currency AND b.book = 'capital'), 0) AS capital,"
            " coalesce((SELECT sum(p.quantity * coalesce(t.price, p.average_entry)) FROM positions p"
            "   LEFT JOIN market_last_trades t ON (t.exchange, t.symbol) = (p.exchange, p.symbol)"
            "   WHERE p.account_id = a.id AND p.closed_at IS NULL), 0) AS positions"
            " FROM accounts a WHERE a.id = ANY(%b)",
            (list(account_ids),),
        )
        return {row.pop("id"): row for row in cur.fetchall()}


def user_accounts(conn: psycopg.Connection[Any], user_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
    out: dict[UUID, list[UUID]] = {}
    for user_id, account_id in conn.execute(
        "SELECT user_id, id FROM accounts WHERE user_id = ANY(%b)", (list(user_ids),)
    ).fetchall():
        out.setdefault(user_id, []).append(account_id)
    return out


def open_position_counts(conn: psycopg.Connection[Any], user_ids: Sequence[UUID]) -> dict[UUID, int]:
    rows = conn.execute(
        "SELECT user_id, count(*) FROM positions WHERE user_id = ANY(%b) AND closed_at IS NULL"
        " GROUP BY user_id",
        (list(user_ids),),
    ).fetchall()
    return {user_id: int(count) for user_id, count in rows}


def recent_order_counts(conn: psycopg.Connection[Any], bot_ids: Sequence[UUID]) -> dict[UUID, int]:
    """Orders each bot placed in the last minute (the order-rate check)."""
    rows = conn.execute(
        "SELECT bot_id, count(*) FROM orders WHERE bot_id = ANY(%b)"
        " AND created_at > now() - interval '1 minute'"
        " GROUP BY bot_id",
        (list(bot_ids),),
    ).fetchall()
    return {bot_id: int(count) for bot_id, count in rows}


def markets(
    conn: psycopg.Connection[Any], keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (exchange, symbol): last trade price and time, minimum notional (None when unknown)."""
    unique = list(set(keys))
    rows = conn.execute(
        "SELECT k.exchange, k.symbol, t.price, t.trade_time, r.min_notional"
        " FROM unnest(%b::text[], %b::text[]) AS k(exchange, symbol)"
        " LEFT JOIN market_last_trades t ON (t.exchange, t.symbol) = (k.exchange, k.symbol)"
        " LEFT JOIN market_rules r ON (r.exchange, r.symbol) = (k.exchange, k.symbol)",
        ([k[0] for k in unique], [k[1] for k in unique]),
    ).fetchall()
    return {
        (exchange, symbol): {"last_price": price, "last_trade_time": time, "min_notional": min_notional}
        for exchange, symbol, price, time, min_notional in rows
    }


# -- writes --------------------------------------------------------------------------------------


class EvaluationRow(NamedTuple):
    """One evaluation; `matched`, `risk` and `intents` are JSON arrays, serialised already (a
    tuple: 10,000 of them a tick, and a frozen dataclass's __init__ costs ten times more)."""

    user_id: UUID
    bot_id: UUID
    candle_open_time: int
    timeframe: str
    strategy_version: int | None
    outcome: str
    signal: str
    reason: str
    score: float | None = None
    matched: str = "[]"
    risk_verdict: str | None = None
    risk: str = "[]"
    intents: str = "[]"


def insert_evaluations(conn: psycopg.Connection[Any], rows: Sequence[EvaluationRow]) -> dict[UUID, int]:
    """Insert the evaluations that are new; {bot_id: evaluation id} of those that went in (a
    bot whose evaluation of that candle exists already is left out: the tick is a repeat)."""
    if not rows:
        return {}
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns[7] = [reason[:1000] for reason in columns[7]]
    cursor = conn.execute(
        "INSERT INTO evaluations (user_id, bot_id, candle_open_time, timeframe, strategy_version, outcome,"
        " signal, reason, score, matched, risk_verdict, risk, intents)"
        " SELECT * FROM unnest(%b::uuid[], %b::uuid[], %b::bigint[], %b::text[], %b::int[], %b::text[],"
        " %b::text[], %b::text[], %b::float8[], %b::jsonb[], %b::text[], %b::jsonb[], %b::jsonb[])"
        " ON CONFLICT ON CONSTRAINT evaluations_once_per_candle DO NOTHING RETURNING bot_id, id",
        columns,
    )
    return {bot_id: int(id_) for bot_id, id_ in cursor.fetchall()}


class RuntimeRow(NamedTuple):
    bot_id: UUID
    user_id: UUID
    memory: str
    orders: str | None
    """None: unchanged (the stored value stays, and is neither parsed nor compressed again)."""
    last_candle: int
    skips: int
    exists: bool = True
    """False for a bot that has no runtime row yet."""


def save_runtime(conn: psycopg.Connection[Any], rows: Sequence[RuntimeRow]) -> None:
    if not rows:
        return
    missing = [r for r in rows if not r.exists]
    if missing:
        conn.execute(
            "INSERT INTO bot_runtime (bot_id, user_id) SELECT * FROM unnest(%b::uuid[], %b::uuid[])"
            " ON CONFLICT (bot_id) DO NOTHING",
            ([r.bot_id for r in missing], [r.user_id for r in missing]),
        )
    conn.execute(
        "UPDATE bot_runtime r SET memory = t.m, orders = coalesce(t.p, r.orders), last_candle = t.c,"
        " skips = t.s, last_evaluated_at = now()"
        " FROM unnest(%b::uuid[], %b::jsonb[], %b::jsonb[], %b::bigint[], %b::int[]) AS t(b, m, p, c, s)"
        " WHERE r.bot_id = t.b",
        (
            [r.bot_id for r in rows],
            [r.memory for r in rows],
            [r.orders for r in rows],
            [r.last_candle for r in rows],
            [r.skips for r in rows],
        ),
    )


def mark_fills_seen(conn: psycopg.Connection[Any], seen: Sequence[tuple[UUID, UUID, UUID]]) -> None:
    """Record (fill, user, bot) as shown to its bot."""
    if not seen:
        return
    conn.execute(
        "INSERT INTO bot_fills_seen (fill_id, user_id, bot_id) SELECT * FROM unnest(%b::uuid[], %b::uuid[],"
        " %b::uuid[]) ON CONFLICT DO NOTHING",
        ([s[0] for s in seen], [s[1] for s in seen], [s[2] for s in seen]),
    )


def mark_sent(conn: psycopg.Connection[Any], evaluation_ids: Sequence[int]) -> None:
    if evaluation_ids:
        conn.execute("UPDATE evaluations SET sent_at = now() WHERE id = ANY(%b)", (list(evaluation_ids),))


def unsent(conn: psycopg.Connection[Any], *, older_than_s: int, limit: int) -> list[dict[str, Any]]:
    """Evaluations whose intents were decided but never confirmed sent (a crash in between)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT e.id, e.user_id, e.bot_id, e.intents::text AS intents, b.exchange, b.symbol,"
            " a.id AS account_id"
            " FROM evaluations e JOIN bots b ON b.id = e.bot_id"
            " JOIN accounts a ON a.user_id = b.user_id AND a.exchange = b.exchange AND a.mode = b.mode"
            " WHERE e.sent_at IS NULL AND e.intents <> '[]'::jsonb"
            " AND e.evaluated_at < now() - make_interval(secs => %s)"
            " AND e.evaluated_at > now() - interval '1 hour'"
            " ORDER BY e.evaluated_at LIMIT %s",
            (older_than_s, limit),
        )
        return cur.fetchall()


def forget_old_fills(conn: psycopg.Connection[Any], *, keep_s: int) -> None:
    """Move every bot's fill horizon to `keep_s` ago and drop the seen marks behind it."""
    conn.execute(
        "UPDATE bot_runtime SET fills_after = now() - make_interval(secs => %s)"
        " WHERE fills_after < now() - make_interval(secs => %s) * 2",
        (keep_s, keep_s),
    )
    conn.execute(
        "DELETE FROM bot_fills_seen WHERE seen_at < now() - make_interval(secs => %s) * 3", (keep_s,)
    )


def newest_candles(
    conn: psycopg.Connection[Any], keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], int]:
    """Open time of the newest stored candle of each (exchange, symbol, timeframe) that has one."""
    unique = list(set(keys))
    rows = conn.execute(
        "SELECT s.exchange, s.symbol, s.timeframe,"
        " (SELECT c.open_time FROM candles c WHERE c.series_id = s.id ORDER BY c.open_time DESC LIMIT 1)"
        " FROM candle_series s"
        " JOIN unnest(%b::text[], %b::text[], %b::text[]) AS k(exchange, symbol, timeframe)"
        " ON (s.exchange, s.symbol, s.timeframe) = (k.exchange, k.symbol, k.timeframe)",
        ([k[0] for k in unique], [k[1] for k in unique], [k[2] for k in unique]),
    ).fetchall()
    return {(e, s, t): int(o) for e, s, t, o in rows if o is not None}


def feed_ages(conn: psycopg.Connection[Any], keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], float]:
    """Seconds since the market stream last recorded a trade of each market (wall clock)."""
    unique = list(set(keys))
    rows = conn.execute(
        "SELECT t.exchange, t.symbol, extract(epoch FROM now() - t.updated_at)::float8"
        " FROM market_last_trades t JOIN unnest(%b::text[], %b::text[]) AS k(exchange, symbol)"
        " ON (t.exchange, t.symbol) = (k.exchange, k.symbol)",
        ([k[0] for k in unique], [k[1] for k in unique]),
    ).fetchall()
    return {(e, s): float(age) for e, s, age in rows}


def start_runtime(conn: psycopg.Connection[Any], user_id: UUID, bot_id: UUID) -> None:
    """A bot (re)starts: it runs its strategy's current version from now on, with a clean count
    of skips and fills shown from now (memory and the orders it asked for are kept)."""
    conn.execute(
        "UPDATE bots b SET strategy_version = s.version FROM strategies s"
        " WHERE b.user_id = %s AND b.id = %s AND s.id = b.strategy_id",
        (user_id, bot_id),
    )
    conn.execute(
        "INSERT INTO bot_runtime (bot_id, user_id) VALUES (%s, %s)"
        " ON CONFLICT (bot_id) DO UPDATE SET skips = 0, fills_after = now()",
        (bot_id, user_id),
    )


def listed_symbols(conn: psycopg.Connection[Any], exchange: str) -> set[str]:
    """The active markets Tekoa knows on `exchange` (the market stream stores their rules)."""
    rows = conn.execute(
        "SELECT symbol FROM market_rules WHERE exchange = %s AND active", (exchange,)
    ).fetchall()
    return {str(row[0]) for row in rows}

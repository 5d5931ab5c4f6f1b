"""Trading facts about markets: precision and limits (`market_rules`) and the last trade."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from tekoa.exchanges.rules import MarketRules

_RULE_FIELDS = (
    "base",
    "quote",
    "amount_step",
    "price_step",
    "min_amount",
    "max_amount",
    "min_price",
    "max_price",
    "min_notional",
    "max_notional",
    "active",
)


def upsert_rules(conn: psycopg.Connection[Any], rules: Sequence[MarketRules]) -> None:
    """Store (or refresh) markets' rules (service role: the market stream and the executor)."""
    if not rules:
        return
    columns = ("exchange", "symbol", *_RULE_FIELDS)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rules))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _RULE_FIELDS)
    conn.execute(
        f"INSERT INTO market_rules ({', '.join(columns)}) VALUES {placeholders}"  # noqa: S608 -- fixed names
        f" ON CONFLICT (exchange, symbol) DO UPDATE SET {updates}, updated_at = now()",
        [getattr(rule, name) for rule in rules for name in columns],
    )


def get_rules(conn: psycopg.Connection[Any], exchange: str, symbol: str) -> MarketRules | None:
    row = conn.execute(
        f"SELECT exchange, symbol, {', '.join(_RULE_FIELDS)} FROM market_rules"  # noqa: S608 -- fixed names
        " WHERE exchange = %s AND symbol = %s",
        (exchange, symbol),
    ).fetchone()
    return None if row is None else MarketRules(*row)


@dataclass(frozen=True, slots=True)
class LastTrade:
    exchange: str
    symbol: str
    price: Decimal
    trade_time: int


def record_last_trades(conn: psycopg.Connection[Any], trades: Sequence[LastTrade]) -> None:
    """Store each market's newest trade; an older one never replaces a newer one."""
    if not trades:
        return
    placeholders = ", ".join(["(%s, %s, %s, %s)"] * len(trades))
    conn.execute(
        f"INSERT INTO market_last_trades (exchange, symbol, price, trade_time) VALUES {placeholders}"  # noqa: S608
        " ON CONFLICT (exchange, symbol) DO UPDATE SET price = EXCLUDED.price, trade_time ="
        " EXCLUDED.trade_time,"
        " updated_at = now() WHERE market_last_trades.trade_time <= EXCLUDED.trade_time",
        [v for t in trades for v in (t.exchange, t.symbol, t.price, t.trade_time)],
    )


def last_trade(conn: psycopg.Connection[Any], exchange: str, symbol: str) -> LastTrade | None:
    row = conn.execute(
        "SELECT exchange, symbol, price, trade_time FROM market_last_trades WHERE exchange = %s AND symbol ="
        " %s",
        (exchange, symbol),
    ).fetchone()
    return None if row is None else LastTrade(*row)

"""Market data for the API: exchanges, symbols, stored candles, the last price, and whether the
markets the platform streams are ready (for /health).

Market data is shared by every user (no tenant filter): reads still run as the calling user
(`tenant_transaction`), the least privileged role, which may read the market tables.

Where metadata comes from — never from an exchange's network, so the API stays fast and
available when a venue is not:
* exchanges: ccxt's exchange ids (a snapshot in `tekoa.domain.exchanges`; the API does not
  import ccxt) plus `simulated`;
* symbols: the markets the platform follows or has stored (`market_freshness`), plus the
  configured stream symbols for the configured exchange. A symbol Tekoa has no data for is
  unknown here even if the venue lists it: ask the ingest function to backfill it first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from tekoa.db import candles as candle_store
from tekoa.db.connection import Database, service_transaction, tenant_transaction
from tekoa.domain.candles import Candle
from tekoa.domain.exchanges import EXCHANGE_IDS
from tekoa.domain.timeframes import Timeframe
from tekoa.errors import NotFound, ValidationFailed
from tekoa.settings import Settings

PRICE_MAX_AGE_MS = 180_000
"""A last price older than this (three 1m candles) is not fresh, whatever the flag says."""


@dataclass(frozen=True, slots=True)
class ExchangeInfo:
    """An exchange id and what Tekoa has for it."""

    id: str
    streamed: bool
    markets: int


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """A market Tekoa follows or has stored."""

    symbol: str
    fresh: bool
    streamed: bool


@dataclass(frozen=True, slots=True)
class LastPrice:
    """The newest closed 1m candle's close, when it closed, and whether it can be trusted."""

    exchange: str
    symbol: str
    price: Decimal | None
    as_of: int | None
    fresh: bool
    reason: str | None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _require_exchange(exchange: str) -> None:
    if exchange not in EXCHANGE_IDS:
        raise NotFound(
            f"unknown exchange {exchange!r}: use a ccxt exchange id or 'simulated'", field="exchange"
        )


def list_exchanges(database: Database, settings: Settings, user_id: UUID) -> list[ExchangeInfo]:
    """Every exchange id Tekoa accepts, with the number of markets it has data for."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        known = candle_store.list_freshness(conn)
    counts: dict[str, int] = {}
    for market in known:
        counts[market.exchange] = counts.get(market.exchange, 0) + 1
    return [
        ExchangeInfo(
            id=exchange, streamed=exchange == settings.market_exchange, markets=counts.get(exchange, 0)
        )
        for exchange in sorted(EXCHANGE_IDS)
    ]


def list_symbols(database: Database, settings: Settings, user_id: UUID, exchange: str) -> list[SymbolInfo]:
    """Markets of `exchange` that Tekoa follows or has stored (404 for an unknown exchange)."""
    _require_exchange(exchange)
    with database.connection() as conn, tenant_transaction(conn, user_id):
        known = {m.symbol: m.fresh for m in candle_store.list_freshness(conn, exchange)}
    streamed = set(settings.market_symbol_list) if exchange == settings.market_exchange else set()
    return [
        SymbolInfo(symbol=symbol, fresh=known.get(symbol, False), streamed=symbol in streamed)
        for symbol in sorted(set(known) | streamed)
    ]


def _require_symbol(
    database: Database, settings: Settings, user_id: UUID, exchange: str, symbol: str
) -> None:
    _require_exchange(exchange)
    if exchange == settings.market_exchange and symbol in settings.market_symbol_list:
        return
    with database.connection() as conn, tenant_transaction(conn, user_id):
        known = candle_store.get_freshness(conn, exchange, symbol)
    if known is None:
        raise NotFound(f"no market data for {symbol} on {exchange}", field="symbol")


def get_candles(
    database: Database,
    settings: Settings,
    user_id: UUID,
    *,
    exchange: str,
    symbol: str,
    timeframe: Timeframe,
    start_ms: int | None,
    end_ms: int | None,
    after_open_time: int | None,
    limit: int,
) -> list[Candle]:
    """Stored candles ascending by open time in `[start, end)`.

    Without `start`, the window is the `limit` candle lengths before `end` (default now): the
    latest candles, which is what a chart asks for first.
    """
    _require_symbol(database, settings, user_id, exchange, symbol)
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise ValidationFailed("start must be before end", field="start")
    if start_ms is None:
        start_ms = timeframe.open_time(
            (end_ms if end_ms is not None else _now_ms()) - (limit - 1) * timeframe.ms
        )
        start_ms = max(0, start_ms)
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return candle_store.read_candles(
            conn,
            exchange,
            symbol,
            timeframe,
            start_ms=start_ms,
            end_ms=end_ms,
            limit=limit,
            after_open_time=after_open_time,
        )


def get_price(
    database: Database,
    settings: Settings,
    user_id: UUID,
    *,
    exchange: str,
    symbol: str,
    now_ms: int | None = None,
) -> LastPrice:
    """The last close, its time, and `fresh`: the stream says the market is whole and live and
    the candle is recent (a crashed stream cannot leave a stale price marked fresh)."""
    _require_symbol(database, settings, user_id, exchange, symbol)
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return _last_price(conn, exchange, symbol, now_ms if now_ms is not None else _now_ms())


def streamed_markets(database: Database, settings: Settings, *, now_ms: int | None = None) -> list[LastPrice]:
    """The last price of every market the stream always follows (`market_symbols`): all of
    them fresh means market data is ready."""
    now = now_ms if now_ms is not None else _now_ms()
    with database.connection() as conn, service_transaction(conn):
        return [
            _last_price(conn, settings.market_exchange, symbol, now) for symbol in settings.market_symbol_list
        ]


def _last_price(conn: Any, exchange: str, symbol: str, now: int) -> LastPrice:
    candle = candle_store.latest_candle(conn, exchange, symbol, Timeframe.M1)
    flag = candle_store.get_freshness(conn, exchange, symbol)
    if candle is None:
        loading = flag.reason if flag is not None and not flag.fresh and flag.reason else None
        return LastPrice(exchange, symbol, None, None, False, loading or "no candles stored yet")
    recent = now - candle.close_time <= PRICE_MAX_AGE_MS
    fresh = flag is not None and flag.fresh and recent
    reason: str | None = None
    if not fresh:
        if flag is not None and not flag.fresh:
            reason = flag.reason or "stale"
        elif not recent:
            reason = "last candle is too old"
        else:
            reason = "not streamed"
    return LastPrice(exchange, symbol, candle.close, candle.close_time, fresh, reason)

"""/v1/market over HTTP: exchanges, symbols, candles with cursors, price and freshness, errors."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import numpy as np

from tekoa.db import candles as store
from tekoa.db.candle_copy import copy_ohlcv
from tekoa.db.connection import connect, service_transaction
from tekoa.domain.timeframes import Timeframe
from tekoa.market.sources import OhlcvRows
from tests.integration.api.auth_support import settings as settings
from tests.integration.api.trading_support import new_user

M = 60_000


def seed_candles(database_url: str, symbol: str, first_open: int, n: int, *, fresh: bool = True) -> None:
    """Store `n` 1m candles of `symbol` on `binance` (as the stream or a backfill would)."""
    close = 100 + np.arange(n, dtype=np.float64) / 4
    rows = OhlcvRows(
        open_time_ms=first_open + np.arange(n, dtype=np.int64) * M,
        open=close - 0.25,
        high=close + 0.5,
        low=close - 0.5,
        close=close,
        volume=np.full(n, 0.1),
    )
    with connect(database_url) as conn, service_transaction(conn):
        copy_ohlcv(conn, "binance", symbol, Timeframe.M1, rows)
        store.set_freshness(conn, "binance", symbol, fresh=fresh, reason=None if fresh else "stale feed")


def now_minute() -> int:
    now = time.time_ns() // 1_000_000
    return now - now % M


def test_market_endpoints_need_a_signed_in_user(api: httpx.Client) -> None:
    response = api.get("/v1/market/exchanges")
    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "UNAUTHORIZED"


def test_exchanges_and_symbols_list_what_tekoa_knows(api: httpx.Client, settings: Any) -> None:
    # Given stored data for one binance market
    caller = new_user(api)
    seed_candles(settings.database_url, "ADA/USDT", now_minute() - 10 * M, 10)

    # When the exchanges and binance's symbols are listed
    exchanges = api.get("/v1/market/exchanges", headers=caller.headers).json()
    symbols = api.get("/v1/market/symbols", params={"exchange": "binance"}, headers=caller.headers).json()
    simulated = api.get("/v1/market/symbols", params={"exchange": "simulated"}, headers=caller.headers).json()

    # Then ccxt's exchanges and the simulated one are there, with what has data
    by_id = {e["id"]: e for e in exchanges}
    assert by_id["binance"]["markets"] == 1 and by_id["kraken"]["markets"] == 0
    assert by_id["simulated"]["streamed"] is True
    assert symbols == [{"symbol": "ADA/USDT", "fresh": True, "streamed": False}]
    assert {s["symbol"] for s in simulated} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}


def test_candles_page_by_cursor_in_order_with_decimal_strings(api: httpx.Client, settings: Any) -> None:
    # Given 130 stored minutes
    caller = new_user(api)
    first = now_minute() - 200 * M
    seed_candles(settings.database_url, "ADA/USDT", first, 130)

    # When read 50 at a time from the first
    params: dict[str, Any] = {"exchange": "binance", "symbol": "ADA/USDT", "timeframe": "1m", "start": first}
    seen: list[dict[str, Any]] = []
    pages = 0
    while True:
        response = api.get("/v1/market/candles", params={**params, "limit": 50}, headers=caller.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["items"]
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]

    # Then every candle comes once, ascending, with ms times and exact decimal strings
    assert pages == 3
    assert [c["open_time"] for c in seen] == [first + i * M for i in range(130)]
    assert seen[1]["close"] == "100.25" and seen[1]["close_time"] == first + 2 * M
    assert Decimal(seen[0]["volume"]) == Decimal("0.1") and seen[0]["trades"] is None


def test_candles_without_a_start_are_the_latest(api: httpx.Client, settings: Any) -> None:
    caller = new_user(api)
    first = now_minute() - 120 * M
    seed_candles(settings.database_url, "ADA/USDT", first, 120)
    body = api.get(
        "/v1/market/candles",
        params={"exchange": "binance", "symbol": "ADA/USDT", "timeframe": "1m", "limit": 10},
        headers=caller.headers,
    ).json()
    assert [c["open_time"] for c in body["items"]][-1] == first + 119 * M


def test_price_is_the_last_close_and_says_whether_it_is_fresh(api: httpx.Client, settings: Any) -> None:
    # Given a fresh market with a candle that just closed, and a market flagged stale
    caller = new_user(api)
    minute = now_minute()
    seed_candles(settings.database_url, "ADA/USDT", minute - 5 * M, 5)
    seed_candles(settings.database_url, "DOT/USDT", minute - 5 * M, 5, fresh=False)

    # When their prices are asked for
    fresh = api.get(
        "/v1/market/price", params={"exchange": "binance", "symbol": "ADA/USDT"}, headers=caller.headers
    )
    stale = api.get(
        "/v1/market/price", params={"exchange": "binance", "symbol": "DOT/USDT"}, headers=caller.headers
    )

    # Then both give the last close and when it closed; only the first is fresh
    assert fresh.json() == {
        "exchange": "binance",
        "symbol": "ADA/USDT",
        "price": "101",
        "as_of": minute,
        "fresh": True,
        "reason": None,
    }
    assert stale.json()["fresh"] is False and stale.json()["reason"] == "stale feed"


def test_price_of_a_market_that_was_fresh_long_ago_is_not_fresh(api: httpx.Client, settings: Any) -> None:
    # A stream that crashed never cleared its flag: the age of the candle decides.
    caller = new_user(api)
    seed_candles(settings.database_url, "ADA/USDT", now_minute() - 60 * M, 5, fresh=True)
    body = api.get(
        "/v1/market/price", params={"exchange": "binance", "symbol": "ADA/USDT"}, headers=caller.headers
    )
    assert body.json()["fresh"] is False and body.json()["reason"] == "last candle is too old"


def test_unknown_exchange_symbol_or_timeframe_is_a_clear_client_error(api: httpx.Client) -> None:
    caller = new_user(api)
    base = {"exchange": "binance", "symbol": "ADA/USDT", "timeframe": "1m"}

    cases = [
        ("/v1/market/symbols", {"exchange": "nosuchexchange"}, 404, "exchange"),
        ("/v1/market/candles", {**base, "exchange": "nosuchexchange"}, 404, "exchange"),
        ("/v1/market/candles", {**base, "symbol": "NOPE/USDT"}, 404, "symbol"),
        ("/v1/market/candles", {**base, "timeframe": "2m"}, 422, "timeframe"),
        ("/v1/market/price", {"exchange": "binance", "symbol": "NOPE/USDT"}, 404, "symbol"),
        (
            "/v1/market/candles",
            {**base, "exchange": "simulated", "symbol": "BTC/USDT", "cursor": "garbage"},
            422,
            "cursor",
        ),
    ]
    for path, params, status, field in cases:
        response = api.get(path, params=params, headers=caller.headers)
        assert response.status_code == status, (path, params, response.text)
        assert response.json()["detail"]["field"] == field, response.text


def test_market_data_is_the_same_for_every_user(api: httpx.Client, settings: Any) -> None:
    # Market data is shared: two tenants read identical candles.
    first = now_minute() - 30 * M
    seed_candles(settings.database_url, "ADA/USDT", first, 5)
    params = {"exchange": "binance", "symbol": "ADA/USDT", "timeframe": "1m", "start": first}
    alice, bob = new_user(api), new_user(api)
    assert (
        api.get("/v1/market/candles", params=params, headers=alice.headers).json()
        == api.get("/v1/market/candles", params=params, headers=bob.headers).json()
    )

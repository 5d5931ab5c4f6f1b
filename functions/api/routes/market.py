"""/v1/market: exchanges, symbols, candles (cursor-paged) and the last price.

Timestamps are UTC milliseconds; prices and volumes are decimal strings. Market data is the
same for every user; a signed-in user (any token) may read it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from functions.api.context import Context
from functions.api.cursors import invalid_cursor
from functions.api.errors import error_responses
from functions.api.pagination import Page, PageParams
from functions.api.security import CurrentUser
from tekoa.domain.candles import Candle, decimal_text
from tekoa.domain.timeframes import Timeframe
from tekoa.services import market_data as service

router = APIRouter(prefix="/v1/market", tags=["market"])

Exchange = Annotated[str, Query(min_length=1, max_length=40, description="ccxt exchange id or 'simulated'.")]
Symbol = Annotated[str, Query(min_length=3, max_length=64, description="ccxt unified symbol, e.g. BTC/USDT.")]
Millis = Annotated[int | None, Query(ge=0, le=2**53, description="UTC milliseconds since the epoch.")]


class ExchangeOut(BaseModel):
    id: str
    streamed: bool = Field(description="The market stream follows this exchange.")
    markets: int = Field(description="Markets with stored data.")


class SymbolOut(BaseModel):
    symbol: str
    fresh: bool
    streamed: bool


class CandleOut(BaseModel):
    open_time: int = Field(description="UTC ms, inclusive.")
    close_time: int = Field(description="UTC ms, exclusive.")
    open: str = Field(description="Decimal string.", examples=["60000.1"])
    high: str
    low: str
    close: str
    volume: str
    trades: int | None = Field(description="Null for candles from an exchange's REST history.")

    @classmethod
    def of(cls, candle: Candle) -> CandleOut:
        return cls(
            open_time=candle.open_time,
            close_time=candle.close_time,
            open=decimal_text(candle.open),
            high=decimal_text(candle.high),
            low=decimal_text(candle.low),
            close=decimal_text(candle.close),
            volume=decimal_text(candle.volume),
            trades=candle.trades,
        )


class PriceOut(BaseModel):
    exchange: str
    symbol: str
    price: str | None = Field(description="Close of the newest stored 1m candle (decimal string).")
    as_of: int | None = Field(description="UTC ms when that candle closed.")
    fresh: bool = Field(description="The market's data is whole, live and recent.")
    reason: str | None = Field(description="Why not fresh.")


@router.get("/exchanges", response_model=list[ExchangeOut], responses=error_responses(401))
def list_exchanges(principal: CurrentUser, context: Context) -> list[ExchangeOut]:
    """Every exchange id Tekoa accepts, with the markets it has data for."""
    rows = service.list_exchanges(context.database, context.settings, principal.user_id)
    return [ExchangeOut(id=r.id, streamed=r.streamed, markets=r.markets) for r in rows]


@router.get("/symbols", response_model=list[SymbolOut], responses=error_responses(401, 404, 422))
def list_symbols(principal: CurrentUser, context: Context, exchange: Exchange) -> list[SymbolOut]:
    """Markets of an exchange that Tekoa follows or has stored."""
    rows = service.list_symbols(context.database, context.settings, principal.user_id, exchange)
    return [SymbolOut(symbol=r.symbol, fresh=r.fresh, streamed=r.streamed) for r in rows]


@router.get("/candles", response_model=Page[CandleOut], responses=error_responses(401, 404, 422))
def list_candles(
    principal: CurrentUser,
    context: Context,
    page: PageParams,
    exchange: Exchange,
    symbol: Symbol,
    timeframe: Annotated[Timeframe, Query(description="1m 5m 15m 1h 4h 1d")],
    start: Millis = None,
    end: Millis = None,
) -> Page[CandleOut]:
    """Closed candles ascending by open time in `[start, end)`; without `start`, the latest
    `limit` candle lengths before `end` (default now)."""
    after = page.after("open_time")
    if after is not None and not isinstance(after[0], int):
        raise invalid_cursor()
    candles = service.get_candles(
        context.database,
        context.settings,
        principal.user_id,
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        start_ms=start,
        end_ms=end,
        after_open_time=None if after is None else int(after[0]),
        limit=page.limit + 1,
    )
    return Page[CandleOut].build(
        [CandleOut.of(c) for c in candles], page, lambda c: {"open_time": c.open_time}
    )


@router.get("/price", response_model=PriceOut, responses=error_responses(401, 404, 422))
def last_price(principal: CurrentUser, context: Context, exchange: Exchange, symbol: Symbol) -> PriceOut:
    """The last close of a market, when it closed, and whether the data is fresh."""
    price = service.get_price(
        context.database, context.settings, principal.user_id, exchange=exchange, symbol=symbol
    )
    return PriceOut(
        exchange=price.exchange,
        symbol=price.symbol,
        price=None if price.price is None else decimal_text(price.price),
        as_of=price.as_of,
        fresh=price.fresh,
        reason=price.reason,
    )

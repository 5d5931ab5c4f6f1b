"""Typed details of the bus events that code consumes (EventBridge `detail`).

The producer builds the detail from the model and the consumer parses it with the same model,
so a field renamed on one side fails a test instead of a bot silently never trading.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from tekoa.domain.symbols import Symbol
from tekoa.domain.timeframes import Timeframe

Millis = Annotated[int, Field(ge=0, le=2**53)]
Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class CandleClosed(BaseModel):
    """`candle.closed`: a candle was stored closed (at least once: consumers deduplicate on
    exchange, symbol, timeframe and open time). Decimals travel as strings."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # The stream's own exchange name (the stored candle's), not checked against ccxt's list.
    exchange: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    symbol: Symbol
    timeframe: Timeframe
    open_time: Millis
    close_time: Millis
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Price
    trades: int | None = Field(None, ge=0, description="Trades that built it; none for REST history.")

"""Market data as the market stream leaves it once loaded, for tests of /health."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any


def markets_ready(settings: Any, *, fresh: bool = True) -> None:
    """What the market stream leaves once it has loaded: a recent 1m candle of every market it
    always follows, each marked fresh (or still loading)."""
    from tekoa.db.candles import ensure_market, set_freshness, upsert_candles
    from tekoa.db.connection import connect, service_transaction
    from tekoa.domain.candles import Candle
    from tekoa.domain.timeframes import Timeframe

    minute = Timeframe.M1.open_time(int(time.time() * 1000)) - Timeframe.M1.ms
    with connect(settings.database_url) as conn, service_transaction(conn):
        for symbol in settings.market_symbol_list:
            ensure_market(conn, settings.market_exchange, symbol)
            price = Decimal(100)
            upsert_candles(
                conn,
                [
                    Candle(
                        settings.market_exchange,
                        symbol,
                        Timeframe.M1,
                        minute,
                        price,
                        price,
                        price,
                        price,
                        Decimal(1),
                        3,
                    )
                ],
            )
            set_freshness(conn, settings.market_exchange, symbol, fresh=fresh, reason="repairing history")

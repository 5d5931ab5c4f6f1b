"""The closed (or forming) OHLCV candle of one market, with money as Decimal.

The numeric hot path (aggregation, indicators) works on float64 columns; a `Candle` is
what crosses into persistence, events and the API, where money must be exact decimals.
Floats become decimals rounded to 15 significant digits (DBL_DIG: every decimal of up to
15 digits survives the trip through a double and back), so `60000.1` becomes
`Decimal("60000.1")` rather than the binary expansion `60000.100000000002910...`, and a sum
that picked up float noise (`3.5889499999999996`) becomes the decimal it adds up to
(`3.58895`). PostgreSQL's `float8::numeric` uses the same rule, and the bulk COPY path
(`tekoa.db.binary_copy`) computes it in compiled code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from tekoa.domain.timeframes import Timeframe


def decimal_from_float(value: float) -> Decimal:
    """The decimal a float64 was meant to be: rounded to 15 significant digits (`0.1` -> `Decimal("0.1")`)."""
    as_float = float(value)
    if not math.isfinite(as_float):
        raise ValueError(f"not a finite number: {as_float!r}")
    return Decimal(format(as_float, ".15g"))


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle: the trades of `[open_time, open_time + timeframe.ms)` on one market.

    `open_time` is UTC milliseconds since the epoch, aligned to the timeframe. `trades` is
    how many trades built it; a flat gap-filling candle has `trades == 0` and zero volume, and
    a candle from an exchange's REST history has `trades is None` (ccxt's OHLCV omits it).
    """

    exchange: str
    symbol: str
    timeframe: Timeframe
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int | None

    def __post_init__(self) -> None:
        if self.open_time % self.timeframe.ms != 0:
            raise ValueError(f"open_time {self.open_time} is not aligned to {self.timeframe}")
        if not self.low <= min(self.open, self.close) <= max(self.open, self.close) <= self.high:
            raise ValueError(f"inconsistent OHLC: {self.open} {self.high} {self.low} {self.close}")
        if self.volume < 0 or (self.trades is not None and self.trades < 0):
            raise ValueError("volume and trades must not be negative")

    @property
    def close_time(self) -> int:
        """First millisecond after the candle (when it closes)."""
        return self.open_time + self.timeframe.ms

    @classmethod
    def from_floats(
        cls,
        exchange: str,
        symbol: str,
        timeframe: Timeframe,
        open_time: int,
        ohlcv: tuple[float, float, float, float, float],
        trades: int,
    ) -> Candle:
        """Build a candle from float64 OHLCV (as the aggregation kernels produce them)."""
        open_, high, low, close, volume = (decimal_from_float(x) for x in ohlcv)
        return cls(
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            open_time=int(open_time),
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=volume,
            trades=int(trades),
        )


def decimal_text(value: Decimal) -> str:
    """Money at the wire: plain notation, no exponent, no trailing fractional zeros.

    One spelling per number whichever path stored it (`Decimal("101.0")` from a float repr and
    NUMERIC `101` from a COPY both read "101"; `Decimal("1E-7")` reads "0.0000001").
    """
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text

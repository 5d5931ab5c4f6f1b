"""How records are written at the wire: instants as UTC milliseconds since the epoch, money as
canonical decimal strings — one convention for the whole API.

Records keep timezone-aware `datetime`s and `Decimal`s in Python (what PostgreSQL returns,
what code computes with); these annotations change only their JSON: `EpochMillis` writes an
integer of milliseconds (market data already travels so: `open_time`, `as_of`), `DecimalText`
one spelling per number (`decimal_text`: "10000", never "10000.00000000" or "0E-8").
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from tekoa.domain.candles import decimal_text


def to_millis(instant: datetime) -> int:
    """The instant as UTC milliseconds since the epoch."""
    return int(instant.timestamp() * 1000)


def from_millis(millis: int) -> datetime:
    """A UTC datetime from milliseconds since the epoch."""
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


EpochMillis = Annotated[
    datetime,
    PlainSerializer(to_millis, return_type=int, when_used="json"),
    WithJsonSchema({"type": "integer", "format": "int64", "description": "UTC ms since the epoch."}),
]
"""A datetime that is written as UTC milliseconds since the epoch."""

MAX_EPOCH_MILLIS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z, the last instant a datetime holds."""


def _instant_from_millis(value: object) -> datetime:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 15:
        value = int(value)  # a query parameter arrives as text
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer: UTC milliseconds since the epoch")
    if not 0 <= value <= MAX_EPOCH_MILLIS:
        raise ValueError(f"must be between 0 and {MAX_EPOCH_MILLIS} (UTC milliseconds since the epoch)")
    return from_millis(value)


EpochMillisInput = Annotated[
    datetime,
    BeforeValidator(_instant_from_millis),
    WithJsonSchema(
        {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "maximum": MAX_EPOCH_MILLIS,
            "description": "UTC ms since the epoch.",
        }
    ),
]
"""An instant the API is given, as UTC milliseconds since the epoch (as it writes them)."""


DecimalText = Annotated[Decimal, PlainSerializer(decimal_text, return_type=str, when_used="json")]
"""A Decimal that is written as its canonical decimal string."""

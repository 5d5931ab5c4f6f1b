"""Shared number types and the base model of every strategy model.

Unit convention (one for the whole strategy language):

* a field ending in `_pct` is a **percentage**: `5` means 5 %, `0.5` means half a percent;
* a field ending in `_fraction` is a **fraction** of one: `0.5` means half;
* prices and amounts are `Decimal` in the quote currency unless the field says otherwise.

Numbers are `Decimal`, never float. JSON accepts numbers or strings (`"0.1"` is exact; a
JSON number is read through its decimal text) and emits strings, so values round-trip exactly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from tekoa.domain.numbers import BoundedDecimals

MAX_AMOUNT = Decimal("1e12")
"""Ceiling for prices and amounts: above any real market, below NUMERIC overflow."""


class StrictModel(BoundedDecimals):
    """Immutable model that rejects unknown fields, so typos fail instead of being ignored, and
    numbers no market has (`tekoa.domain.numbers`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


PositiveAmount = Annotated[Decimal, Field(gt=0, le=MAX_AMOUNT)]
"""A price or amount: strictly positive, finite, at most 10^12."""

OpenPct = Annotated[Decimal, Field(gt=0, lt=100)]
"""A percentage strictly between 0 and 100, e.g. a drop or a stop distance below a price."""

UnitFraction = Annotated[Decimal, Field(gt=0, le=1)]
"""A fraction in (0, 1]."""


class OrderSize(StrictModel):
    """How much to buy per order: an amount of the quote currency (USDT in BTC/USDT) or of the base."""

    amount: PositiveAmount = Field(description="Order amount, in the currency chosen by `unit`.")
    unit: Literal["quote", "base"] = Field(
        "quote", description="`quote`: amount is quote currency to spend; `base`: amount is base to buy."
    )


def drop_nested_discriminator(schema: dict[str, Any]) -> None:
    """JSON-schema hook for a discriminated union whose members include another one.

    Pydantic writes the inner union's whole schema as a value of the outer `discriminator.mapping`,
    but OpenAPI allows only reference strings there (FastAPI refuses to build the document).
    Dropping the outer discriminator leaves a plain `oneOf` of members with constant tags,
    which is unambiguous; the inner discriminator and its mapping stay intact.
    """
    discriminator = schema.get("discriminator")
    if isinstance(discriminator, dict) and any(
        not isinstance(target, str) for target in discriminator.get("mapping", {}).values()
    ):
        del schema["discriminator"]

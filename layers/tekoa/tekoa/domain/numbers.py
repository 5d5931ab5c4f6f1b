"""Decimals at the door: every number a user sends has a size arithmetic can handle.

`Decimal` parses exponents far beyond any context ("1E-999999999999999999") and digits of any
script; a value like that passes `gt=0` and then overflows the first computation that uses
it. Prices, amounts and percentages never need more than 18 digits before the point, nor more
digits after it than the default decimal context carries (28), so models of user input refuse
anything else at the door (422 naming the field).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, field_validator

MAX_INTEGER_DIGITS = 18
MAX_FRACTION_DIGITS = 28


def bounded_decimal(value: Decimal) -> Decimal:
    """Return `value` if it is finite, with at most 18 digits before the point and 28 after."""
    if not value.is_finite():
        raise ValueError("must be a finite number")
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    fraction_digits = max(0, -(exponent + trailing_zeros))
    integer_digits = max(0, len(digits) + exponent) if any(digits) else 0
    if fraction_digits > MAX_FRACTION_DIGITS:
        raise ValueError(f"must have at most {MAX_FRACTION_DIGITS} digits after the decimal point")
    if integer_digits > MAX_INTEGER_DIGITS:
        raise ValueError(f"must have at most {MAX_INTEGER_DIGITS} digits before the decimal point")
    return value


class BoundedDecimals(BaseModel):
    """Base of input models: every `Decimal` field (or list of them) is `bounded_decimal`."""

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_decimals(cls, value: Any) -> Any:
        if isinstance(value, Decimal):
            return bounded_decimal(value)
        if isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, Decimal):
                    bounded_decimal(item)
        return value

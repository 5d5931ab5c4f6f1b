"""Decimals at the door: finite, at most 18 digits before the point and 28 after."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tekoa.domain.numbers import bounded_decimal


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-0",
        "1",
        "0.000000000000000001",
        "0.0000000000000000000000000001",
        "999999999999999999",
        "1.000000000000000000000000",
        "1E+17",
        "١٢٣",
    ],
)
def test_numbers_a_market_can_have_pass(text: str) -> None:
    assert bounded_decimal(Decimal(text)) == Decimal(text)


@pytest.mark.parametrize(
    "text",
    [
        "0.00000000000000000000000000001",
        "1E-29",
        "1E-999999999999999999",
        "1E+18",
        "1E+999999999999999999",
        "NaN",
        "-Infinity",
    ],
)
def test_numbers_no_market_has_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"finite|digits"):
        bounded_decimal(Decimal(text))

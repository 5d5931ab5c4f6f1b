"""Symbols: ccxt unified notation, normalised at the door."""

import pytest
from pydantic import TypeAdapter, ValidationError

from tekoa.domain.symbols import Symbol, SymbolParts, is_derivative, split_symbol

SYMBOL = TypeAdapter(Symbol)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BTC/USDT", "BTC/USDT"),
        (" btc / usdt ", "BTC/USDT"),
        ("eth/usdc", "ETH/USDC"),
        ("1000shib/usdt", "1000SHIB/USDT"),
        ("btc/usdt:usdt", "BTC/USDT:USDT"),
    ],
)
def test_valid_symbols_are_normalised(raw: str, expected: str) -> None:
    assert SYMBOL.validate_python(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "BTCUSDT",
        "BTC-USDT",
        "BTC/",
        "/USDT",
        "BTC/USDT/ETH",
        "BTC/USDT:",
        "BTC/USDT:USDT-241227",
        "BT$/USDT",
        "",
    ],
)
def test_malformed_symbols_are_rejected_with_the_expected_shape(raw: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        SYMBOL.validate_python(raw)
    assert "BASE/QUOTE" in str(excinfo.value)


def test_same_base_and_quote_is_rejected() -> None:
    with pytest.raises(ValidationError, match="base and quote must differ"):
        SYMBOL.validate_python("usdt/USDT")


def test_non_strings_are_not_coerced() -> None:
    with pytest.raises(ValidationError, match="must be a string"):
        SYMBOL.validate_python(123)


def test_split_and_derivative_detection() -> None:
    assert split_symbol("BTC/USDT") == SymbolParts("BTC", "USDT", None)
    assert split_symbol("BTC/USDT:USDT") == SymbolParts("BTC", "USDT", "USDT")
    assert not is_derivative("BTC/USDT")
    assert is_derivative("BTC/USDT:USDT")

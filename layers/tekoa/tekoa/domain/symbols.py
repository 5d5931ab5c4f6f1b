"""Market symbols in ccxt's unified notation: `BASE/QUOTE` for spot, `BASE/QUOTE:SETTLE` for
derivatives (perpetual swaps and futures settled in `SETTLE`).

`Symbol` is the annotated type every model uses: it strips whitespace, upper-cases, and
rejects anything else with a message that shows the expected shape. Expiry and option
suffixes (`BTC/USDT:USDT-241227`) are not accepted: Tekoa trades spot and perpetuals only.
"""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, BeforeValidator, Field

_CODE = r"[A-Z0-9]{1,20}"
SYMBOL_PATTERN = rf"^{_CODE}/{_CODE}(:{_CODE})?$"
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
_WHITESPACE_RE = re.compile(r"\s+")


class SymbolParts(NamedTuple):
    """The currencies a symbol names; `settle` is None for spot markets."""

    base: str
    quote: str
    settle: str | None


def normalize_symbol(value: str) -> str:
    """Return `value` as a canonical unified symbol, or raise ValueError saying why not.

    Whitespace anywhere is dropped and letters are upper-cased, so `" btc / usdt "` becomes
    `"BTC/USDT"`. Currency codes are 1-20 ASCII letters or digits (`1000SHIB` is fine).
    """
    candidate = _WHITESPACE_RE.sub("", value).upper()
    if not _SYMBOL_RE.fullmatch(candidate):
        raise ValueError(
            f"symbol must look like BASE/QUOTE (e.g. BTC/USDT) or BASE/QUOTE:SETTLE for "
            f"derivatives (e.g. BTC/USDT:USDT), with 1-20 letters or digits per code; got {value!r}"
        )
    parts = split_symbol(candidate)
    if parts.base == parts.quote:
        raise ValueError(f"symbol base and quote must differ; got {value!r}")
    return candidate


def split_symbol(symbol: str) -> SymbolParts:
    """Split a normalised symbol into base, quote and (for derivatives) settle currency."""
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    return SymbolParts(base=base, quote=quote, settle=settle or None)


def is_derivative(symbol: str) -> bool:
    """True for `BASE/QUOTE:SETTLE` symbols (swaps, futures), false for spot."""
    return ":" in symbol


def _require_str(value: object) -> object:
    # Only strings are symbols; a number or list must not be coerced into one.
    if not isinstance(value, str):
        raise ValueError("symbol must be a string such as 'BTC/USDT'")
    return value


Symbol = Annotated[
    str,
    BeforeValidator(_require_str),
    AfterValidator(normalize_symbol),
    Field(
        description="Market in ccxt unified notation: BASE/QUOTE for spot (BTC/USDT), "
        "BASE/QUOTE:SETTLE for perpetuals (BTC/USDT:USDT). Case and whitespace are normalised.",
        examples=["BTC/USDT", "ETH/USDC", "BTC/USDT:USDT"],
        json_schema_extra={
            "pattern": r"^\s*[A-Za-z0-9]{1,20}\s*/\s*[A-Za-z0-9]{1,20}(\s*:\s*[A-Za-z0-9]{1,20})?\s*$"
        },
    ),
]
"""A validated, normalised ccxt unified symbol (see module docstring)."""

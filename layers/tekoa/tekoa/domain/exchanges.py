"""Exchange ids a bot or broker credential may name: ccxt's exchange ids plus `simulated`.

The API layer must not import ccxt (it is heavy and not part of the API's slim Lambda
layer), so the list is a snapshot of `ccxt.exchanges` for the pinned ccxt version
(4.5.64). A unit test compares it with the installed ccxt and fails when an upgrade
adds or removes an exchange, so the snapshot cannot drift silently.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

SIMULATED_EXCHANGE = "simulated"
"""The local random-walk market (tekoa.market); trades nowhere real."""

CCXT_EXCHANGE_IDS: frozenset[str] = frozenset(
    {
        "aftermath",
        "alpaca",
        "apex",
        "aster",
        "backpack",
        "bequant",
        "bigone",
        "binance",
        "binancecoinm",
        "binanceus",
        "binanceusdm",
        "bingx",
        "bit2c",
        "bitbank",
        "bitbns",
        "bitfinex",
        "bitflyer",
        "bitget",
        "bithumb",
        "bitmart",
        "bitmex",
        "bitopro",
        "bitrue",
        "bitso",
        "bitstamp",
        "bitteam",
        "bittrade",
        "bitvavo",
        "blockchaincom",
        "blofin",
        "btcbox",
        "btcmarkets",
        "btcturk",
        "bullish",
        "bybit",
        "bybiteu",
        "bydfi",
        "cex",
        "coinbase",
        "coinbaseexchange",
        "coinbaseinternational",
        "coincheck",
        "coinex",
        "coinmate",
        "coinone",
        "coinsph",
        "coinspot",
        "cryptocom",
        "cryptomus",
        "deepcoin",
        "delta",
        "deribit",
        "derive",
        "digifinex",
        "dydx",
        "exmo",
        "extended",
        "fmfwio",
        "foxbit",
        "gate",
        "gateeu",
        "gemini",
        "grvt",
        "hashkey",
        "hibachi",
        "hitbtc",
        "hollaex",
        "htx",
        "hyperliquid",
        "independentreserve",
        "indodax",
        "kraken",
        "krakenfutures",
        "kucoin",
        "kucoineu",
        "kucoinfutures",
        "latoken",
        "lbank",
        "lighter",
        "luno",
        "mercado",
        "mexc",
        "modetrade",
        "mudrex",
        "myokx",
        "ndax",
        "okx",
        "okxus",
        "onetrading",
        "p2b",
        "pacifica",
        "paradex",
        "paymium",
        "phemex",
        "poloniex",
        "tokocrypto",
        "toobit",
        "upbit",
        "weex",
        "whitebit",
        "woo",
        "woofipro",
        "xt",
        "zaif",
        "zebpay",
    }
)
"""`ccxt.exchanges` of ccxt 4.5.64."""

EXCHANGE_IDS: frozenset[str] = CCXT_EXCHANGE_IDS | {SIMULATED_EXCHANGE}
"""Every exchange id Tekoa accepts."""


def validate_exchange_id(value: str) -> str:
    """Return `value` if it is a known exchange id, else raise ValueError listing how to fix it."""
    if value not in EXCHANGE_IDS:
        raise ValueError(
            f"unknown exchange {value!r}: use a ccxt exchange id in lower case "
            f"(e.g. binance, kraken, coinbase) or {SIMULATED_EXCHANGE!r}"
        )
    return value


def _require_str(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("exchange must be a string such as 'binance'")
    return value


ExchangeId = Annotated[
    str,
    BeforeValidator(_require_str),
    AfterValidator(validate_exchange_id),
    Field(
        description="A ccxt exchange id (lower case, e.g. binance) or 'simulated'.",
        examples=["simulated", "binance"],
        json_schema_extra={"enum": sorted(EXCHANGE_IDS)},
    ),
]
"""A validated exchange id (see module docstring)."""

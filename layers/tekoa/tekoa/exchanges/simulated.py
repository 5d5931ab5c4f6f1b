"""The simulated exchange's markets: how each behaves and what it accepts.

Pure data (no numpy), so the API can validate orders for it: the random walk in
`tekoa.market.simulated` reads the same profiles, so its prices sit on the tick and its
amounts on the lot that orders are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tekoa.domain.exchanges import SIMULATED_EXCHANGE
from tekoa.domain.symbols import split_symbol
from tekoa.exchanges.rules import MarketRules

MIN_NOTIONAL = Decimal(5)
"""Smallest order value in quote currency, as on Binance spot."""


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """How one simulated market behaves."""

    base_price: float
    price_decimals: int  # tick = 10**-price_decimals
    amount_decimals: int  # lot = 10**-amount_decimals
    trades_per_second: float  # daily average arrival rate
    daily_volatility: float  # sd of daily log returns
    median_notional: float  # quote value of a median trade


PROFILES: dict[str, SymbolProfile] = {
    "BTC/USDT": SymbolProfile(60_000.0, 2, 5, 3.0, 0.03, 1_500.0),
    "ETH/USDT": SymbolProfile(3_000.0, 2, 4, 2.0, 0.04, 800.0),
    "SOL/USDT": SymbolProfile(150.0, 2, 2, 1.5, 0.05, 400.0),
}
DEFAULT_PROFILE = SymbolProfile(100.0, 2, 2, 0.5, 0.04, 200.0)


def profile_for(symbol: str) -> SymbolProfile:
    """The behaviour of `symbol`: known majors have realistic prices, anything else starts at 100."""
    return PROFILES.get(symbol, DEFAULT_PROFILE)


def simulated_rules(symbol: str) -> MarketRules:
    """What the simulated exchange accepts for `symbol` (spot symbols only)."""
    profile = profile_for(symbol)
    parts = split_symbol(symbol)
    lot = Decimal(1).scaleb(-profile.amount_decimals)
    return MarketRules(
        exchange=SIMULATED_EXCHANGE,
        symbol=symbol,
        base=parts.base,
        quote=parts.quote,
        amount_step=lot,
        price_step=Decimal(1).scaleb(-profile.price_decimals),
        min_amount=lot,
        min_notional=MIN_NOTIONAL,
    )

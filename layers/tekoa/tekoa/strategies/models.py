"""`StrategyDefinition`: what a bot runs, either a built-in bot type with its parameters or a
rule set written in the rule language.

    {"kind": "builtin", "bot_type": "grid", "params": {...GridParams...}}
    {"kind": "rules", "rules": {...RuleSet...}}

`kind` picks the branch and, for built-ins, `bot_type` picks the parameter model, so a
validation error names the exact path (`builtin.grid.params.upper_price`). Use
`parse_strategy` / `STRATEGY_ADAPTER` for dicts and JSON, and `strategy_json_schema` for the
OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from tekoa.domain.symbols import is_derivative
from tekoa.domain.timeframes import Timeframe
from tekoa.errors import ValidationFailed
from tekoa.strategies.params import DcaParams, DipParams, GridParams, MomentumParams, ScalperParams
from tekoa.strategies.rules import RuleSet
from tekoa.strategies.units import StrictModel, drop_nested_discriminator

BotType = Literal["scalper", "grid", "dca", "dip", "momentum"]
"""The built-in bot types."""


class ScalperStrategy(StrictModel):
    """Built-in scalper (EMA cross with RSI filter)."""

    kind: Literal["builtin"]
    bot_type: Literal["scalper"]
    params: ScalperParams


class GridStrategy(StrictModel):
    """Built-in grid bot."""

    kind: Literal["builtin"]
    bot_type: Literal["grid"]
    params: GridParams


class DcaStrategy(StrictModel):
    """Built-in dollar-cost-averaging bot with safety orders."""

    kind: Literal["builtin"]
    bot_type: Literal["dca"]
    params: DcaParams


class DipStrategy(StrictModel):
    """Built-in buy-the-dip bot."""

    kind: Literal["builtin"]
    bot_type: Literal["dip"]
    params: DipParams


class MomentumStrategy(StrictModel):
    """Built-in momentum bot (breakout or rate of change)."""

    kind: Literal["builtin"]
    bot_type: Literal["momentum"]
    params: MomentumParams


BuiltinStrategy = Annotated[
    ScalperStrategy | GridStrategy | DcaStrategy | DipStrategy | MomentumStrategy,
    Field(discriminator="bot_type"),
]
"""A built-in bot type with parameters validated for that type."""


class RulesStrategy(StrictModel):
    """A strategy written in the rule language."""

    kind: Literal["rules"]
    rules: RuleSet


StrategyDefinition = Annotated[
    BuiltinStrategy | RulesStrategy,
    Field(discriminator="kind", json_schema_extra=drop_nested_discriminator),
]
"""What a bot runs: `{"kind": "builtin", "bot_type": ..., "params": ...}` or
`{"kind": "rules", "rules": ...}`."""

STRATEGY_ADAPTER: TypeAdapter[StrategyDefinition] = TypeAdapter(StrategyDefinition)
"""Validates and serialises `StrategyDefinition` values outside a containing model."""


def parse_strategy(data: Any) -> StrategyDefinition:
    """Validate a decoded-JSON strategy; raises pydantic.ValidationError with exact locations."""
    return STRATEGY_ADAPTER.validate_python(data)


def strategy_json_schema() -> dict[str, Any]:
    """JSON Schema of `StrategyDefinition` (recursive condition trees live under `$defs`)."""
    return STRATEGY_ADAPTER.json_schema()


def strategy_timeframe(strategy: StrategyDefinition) -> Timeframe:
    """The primary timeframe whose candle close triggers the strategy."""
    if isinstance(strategy, RulesStrategy):
        return strategy.rules.timeframe
    return strategy.params.timeframe


def ensure_tradable_on(strategy: StrategyDefinition, symbol: str) -> None:
    """Raise ValidationFailed if `strategy` cannot run on `symbol`'s market.

    Spot markets cannot be shorted: a rule set with `side: short` needs a derivatives symbol
    (`BASE/QUOTE:SETTLE`). Built-in bot types only buy first, so they fit any market.
    """
    if isinstance(strategy, RulesStrategy) and strategy.rules.side == "short" and not is_derivative(symbol):
        raise ValidationFailed(
            f"short rules need a derivatives market (e.g. BTC/USDT:USDT); {symbol} is spot",
            field="strategy.rules.side",
        )

"""The declarative rule language: JSON-friendly condition trees over indicators, prices,
candle patterns and market structure, plus the exits and sizing of a rule-based strategy.

Everything here is data and validation; evaluating a rule set against candles lives
elsewhere. Every node carries a `type` tag, so a rule set is plain JSON:

    {"timeframe": "1h",
     "entry": {"type": "all", "conditions": [
         {"type": "compare", "op": "crosses_above",
          "left": {"type": "indicator", "name": "rsi", "params": {"period": 14}},
          "right": {"type": "constant", "value": "30"}},
         {"type": "pattern", "pattern": "bullish_engulfing"}]},
     "stop_loss": {"type": "atr_multiple", "multiple": "2"},
     "take_profit": {"type": "risk_reward", "ratio": "2"},
     "position_sizing": {"type": "risk", "risk_pct": "1"}}

Units follow `tekoa.strategies.units`: `*_pct` are percentages (5 = 5 %), `*_fraction` are
fractions of one. An operand or condition without `timeframe` uses the rule set's primary
timeframe; `offset` counts closed bars back (0 = the bar that just closed).

Limits keep evaluation bounded: condition trees nest at most `MAX_CONDITION_DEPTH` levels
and hold at most `MAX_CONDITION_NODES` nodes, and no series needs more than
`MAX_LOOKBACK_BARS` bars of history (see `lookback_by_timeframe`).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Literal, NamedTuple, cast, get_args

from pydantic import Field, field_validator, model_validator

from tekoa.domain.timeframes import Timeframe
from tekoa.indicators.catalogue import (
    BollingerParams,
    MacdParams,
    NoParams,
    Period,
    PeriodParams,
    PriceField,
    SourcedPeriodParams,
    StochasticParams,
    indicator_spec,
)
from tekoa.strategies.units import (
    MAX_AMOUNT,
    OpenPct,
    PositiveAmount,
    StrictModel,
    UnitFraction,
    drop_nested_discriminator,
)

MAX_CONDITION_DEPTH = 8
"""Deepest allowed condition tree; a single comparison has depth 1."""
MAX_CONDITION_NODES = 200
"""Most nodes (groups and leaves) one condition tree may hold."""
MAX_LOOKBACK_BARS = 5000
"""Most bars of history any one series of a rule set may need."""
MAX_OFFSET_BARS = 500
"""Furthest back (in bars) an operand or pattern may look."""
PATTERN_CONTEXT_BARS = 10
"""Bars before a candle pattern that a recogniser may inspect for the preceding trend."""

_Offset = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_OFFSET_BARS,
        description="Closed bars back from the latest one: 0 = the bar that just closed (0-500).",
    ),
]
_OptionalTimeframe = Annotated[
    Timeframe | None,
    Field(description="Candle timeframe of this series; omitted = the rule set's primary timeframe."),
]


class CompareOp(StrEnum):
    """Comparison of two operands; the `crosses_*` operators compare this bar and the previous."""

    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EQ = "eq"
    CROSSES_ABOVE = "crosses_above"
    CROSSES_BELOW = "crosses_below"

    @property
    def is_cross(self) -> bool:
        """True for the operators that need the previous bar as well."""
        return self in (CompareOp.CROSSES_ABOVE, CompareOp.CROSSES_BELOW)


class CandlePattern(StrEnum):
    """Candlestick patterns the pattern recogniser knows."""

    DOJI = "doji"
    HAMMER = "hammer"
    INVERTED_HAMMER = "inverted_hammer"
    SHOOTING_STAR = "shooting_star"
    HANGING_MAN = "hanging_man"
    BULLISH_ENGULFING = "bullish_engulfing"
    BEARISH_ENGULFING = "bearish_engulfing"
    MORNING_STAR = "morning_star"
    EVENING_STAR = "evening_star"
    THREE_WHITE_SOLDIERS = "three_white_soldiers"
    THREE_BLACK_CROWS = "three_black_crows"
    PIERCING_LINE = "piercing_line"
    DARK_CLOUD_COVER = "dark_cloud_cover"
    HARAMI_BULLISH = "harami_bullish"
    HARAMI_BEARISH = "harami_bearish"

    @property
    def candles(self) -> int:
        """How many candles the pattern itself spans."""
        return _PATTERN_CANDLES.get(self, 1)


_PATTERN_CANDLES: dict[CandlePattern, int] = {
    CandlePattern.BULLISH_ENGULFING: 2,
    CandlePattern.BEARISH_ENGULFING: 2,
    CandlePattern.PIERCING_LINE: 2,
    CandlePattern.DARK_CLOUD_COVER: 2,
    CandlePattern.HARAMI_BULLISH: 2,
    CandlePattern.HARAMI_BEARISH: 2,
    CandlePattern.MORNING_STAR: 3,
    CandlePattern.EVENING_STAR: 3,
    CandlePattern.THREE_WHITE_SOLDIERS: 3,
    CandlePattern.THREE_BLACK_CROWS: 3,
}


class MarketStructure(StrEnum):
    """Market-structure states derived from swing highs and lows over a lookback window."""

    UPTREND = "uptrend"
    DOWNTREND = "downtrend"
    RANGE = "range"
    HIGHER_HIGH = "higher_high"
    LOWER_LOW = "lower_low"
    BREAK_OF_STRUCTURE_UP = "break_of_structure_up"
    BREAK_OF_STRUCTURE_DOWN = "break_of_structure_down"
    NEAR_SUPPORT = "near_support"
    NEAR_RESISTANCE = "near_resistance"

    @property
    def uses_tolerance(self) -> bool:
        """True for the proximity states, which need a `tolerance_pct`."""
        return self in (MarketStructure.NEAR_SUPPORT, MarketStructure.NEAR_RESISTANCE)


# --------------------------------------------------------------------------- operands


class _IndicatorBase(StrictModel):
    type: Literal["indicator"]
    timeframe: _OptionalTimeframe = None
    offset: _Offset = 0

    def warmup_bars(self) -> int:
        """Bars of history the indicator needs before its value at offset 0 is meaningful.

        Read from the indicator catalogue (`tekoa.indicators.catalogue`), the one place that
        declares each indicator's parameters, outputs and warm-up.
        """
        ref = cast("IndicatorRef", self)
        return indicator_spec(ref.name).warmup(ref.params)


class SmaRef(_IndicatorBase):
    """Simple moving average."""

    name: Literal["sma"]
    params: SourcedPeriodParams = SourcedPeriodParams(period=20)
    output: Literal["value"] = "value"


class EmaRef(_IndicatorBase):
    """Exponential moving average."""

    name: Literal["ema"]
    params: SourcedPeriodParams = SourcedPeriodParams(period=20)
    output: Literal["value"] = "value"


class WmaRef(_IndicatorBase):
    """Linearly weighted moving average."""

    name: Literal["wma"]
    params: SourcedPeriodParams = SourcedPeriodParams(period=20)
    output: Literal["value"] = "value"


class RsiRef(_IndicatorBase):
    """Relative strength index (Wilder), 0-100."""

    name: Literal["rsi"]
    params: PeriodParams = PeriodParams(period=14)
    output: Literal["value"] = "value"


class MacdRef(_IndicatorBase):
    """MACD line, signal line or histogram."""

    name: Literal["macd"]
    params: MacdParams = MacdParams()
    output: Literal["line", "signal", "hist"] = "line"


class BollingerRef(_IndicatorBase):
    """Bollinger band, band width ((upper-lower)/middle) or %B ((close-lower)/(upper-lower))."""

    name: Literal["bollinger"]
    params: BollingerParams = BollingerParams()
    output: Literal["upper", "middle", "lower", "width", "percent_b"] = "middle"


class AtrRef(_IndicatorBase):
    """Average true range (Wilder), in price units."""

    name: Literal["atr"]
    params: PeriodParams = PeriodParams(period=14)
    output: Literal["value"] = "value"


class StochasticRef(_IndicatorBase):
    """Stochastic oscillator %K or %D, 0-100."""

    name: Literal["stochastic"]
    params: StochasticParams = StochasticParams()
    output: Literal["k", "d"] = "k"


class AdxRef(_IndicatorBase):
    """Average directional index, 0-100 (two Wilder smoothings deep)."""

    name: Literal["adx"]
    params: PeriodParams = PeriodParams(period=14)
    output: Literal["value"] = "value"


class ObvRef(_IndicatorBase):
    """On-balance volume (cumulative; compare it with itself at another offset or its trend)."""

    name: Literal["obv"]
    params: NoParams = NoParams()
    output: Literal["value"] = "value"


class VwapRef(_IndicatorBase):
    """Rolling volume-weighted average price over the last `period` bars."""

    name: Literal["vwap"]
    params: PeriodParams = PeriodParams(period=20)
    output: Literal["value"] = "value"


class RocRef(_IndicatorBase):
    """Rate of change in percent: 100 × (close / close `period` bars ago - 1)."""

    name: Literal["roc"]
    params: PeriodParams = PeriodParams(period=10)
    output: Literal["value"] = "value"


class CciRef(_IndicatorBase):
    """Commodity channel index."""

    name: Literal["cci"]
    params: PeriodParams = PeriodParams(period=20)
    output: Literal["value"] = "value"


class WilliamsRRef(_IndicatorBase):
    """Williams %R, -100-0."""

    name: Literal["williams_r"]
    params: PeriodParams = PeriodParams(period=14)
    output: Literal["value"] = "value"


class MfiRef(_IndicatorBase):
    """Money flow index, 0-100."""

    name: Literal["mfi"]
    params: PeriodParams = PeriodParams(period=14)
    output: Literal["value"] = "value"


class VolumeSmaRef(_IndicatorBase):
    """Simple moving average of volume."""

    name: Literal["volume_sma"]
    params: PeriodParams = PeriodParams(period=20)
    output: Literal["value"] = "value"


class HighestRef(_IndicatorBase):
    """Highest value of `source` (default high) over the last `period` bars."""

    name: Literal["highest"]
    params: SourcedPeriodParams = SourcedPeriodParams(period=20, source=PriceField.HIGH)
    output: Literal["value"] = "value"


class LowestRef(_IndicatorBase):
    """Lowest value of `source` (default low) over the last `period` bars."""

    name: Literal["lowest"]
    params: SourcedPeriodParams = SourcedPeriodParams(period=20, source=PriceField.LOW)
    output: Literal["value"] = "value"


IndicatorRef = Annotated[
    SmaRef
    | EmaRef
    | WmaRef
    | RsiRef
    | MacdRef
    | BollingerRef
    | AtrRef
    | StochasticRef
    | AdxRef
    | ObvRef
    | VwapRef
    | RocRef
    | CciRef
    | WilliamsRRef
    | MfiRef
    | VolumeSmaRef
    | HighestRef
    | LowestRef,
    Field(discriminator="name"),
]
"""A reference to one output of one indicator, chosen by `name`; `params` and `output` are
validated for that indicator (e.g. `macd` outputs line/signal/hist, `rsi` only value)."""

INDICATOR_NAMES: tuple[str, ...] = tuple(
    get_args(ref.model_fields["name"].annotation)[0] for ref in get_args(get_args(IndicatorRef)[0])
)
"""Every indicator name the language accepts."""


class PriceRef(StrictModel):
    """A candle value (close, hl2, volume, ...) of a bar."""

    type: Literal["price"]
    field: PriceField = Field(PriceField.CLOSE, description="Which candle value.")
    timeframe: _OptionalTimeframe = None
    offset: _Offset = 0


class ConstantRef(StrictModel):
    """A fixed number, e.g. an RSI threshold or a price level."""

    type: Literal["constant"]
    value: Decimal = Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="The number (finite).")


Operand = Annotated[
    IndicatorRef | PriceRef | ConstantRef,
    Field(discriminator="type", json_schema_extra=drop_nested_discriminator),
]
"""One side of a comparison: an indicator output, a candle value or a constant."""


# --------------------------------------------------------------------------- conditions


class Comparison(StrictModel):
    """`left op right`, e.g. close gt EMA(200), or RSI(14) crosses_above 30."""

    type: Literal["compare"]
    left: Operand
    op: CompareOp
    right: Operand

    @model_validator(mode="after")
    def _not_constant(self) -> Comparison:
        if isinstance(self.left, ConstantRef) and isinstance(self.right, ConstantRef):
            raise ValueError("a comparison needs at least one non-constant operand")
        return self


class PatternCondition(StrictModel):
    """True when the candle pattern completes on the bar at `offset`."""

    type: Literal["pattern"]
    pattern: CandlePattern
    timeframe: _OptionalTimeframe = None
    offset: _Offset = 0


DEFAULT_STRUCTURE_TOLERANCE_PCT = Decimal("0.5")
"""Proximity, in percent, used by near_support/near_resistance when none is given."""


class StructureCondition(StrictModel):
    """True when the market is in the given structural state over the last `lookback` bars.

    `near_support`/`near_resistance` hold when the close is within `tolerance_pct` percent of
    the nearest swing low/high (default 0.5); the other states take no tolerance.
    """

    type: Literal["structure"]
    structure: MarketStructure
    lookback: int = Field(
        50, ge=5, le=1000, description="Bars of history the swings are taken from (5-1000)."
    )
    tolerance_pct: Decimal | None = Field(
        None,
        gt=0,
        le=20,
        description="Proximity for near_support/near_resistance, in percent of price (0-20]; "
        "defaults to 0.5 for those states and must be omitted for the others.",
    )
    timeframe: _OptionalTimeframe = None

    @model_validator(mode="before")
    @classmethod
    def _default_tolerance(cls, data: object) -> object:
        if (
            isinstance(data, dict)
            and data.get("structure") in (MarketStructure.NEAR_SUPPORT, MarketStructure.NEAR_RESISTANCE)
            and data.get("tolerance_pct") is None
        ):
            return {**data, "tolerance_pct": DEFAULT_STRUCTURE_TOLERANCE_PCT}
        return data

    @model_validator(mode="after")
    def _tolerance_only_for_proximity(self) -> StructureCondition:
        if self.tolerance_pct is not None and not self.structure.uses_tolerance:
            raise ValueError(
                f"tolerance_pct applies only to near_support/near_resistance, not {self.structure}"
            )
        return self


class AllOf(StrictModel):
    """True when every condition holds (logical AND)."""

    type: Literal["all"]
    conditions: list[Condition] = Field(min_length=1, max_length=50, description="1-50 conditions.")

    @model_validator(mode="after")
    def _bounded(self) -> AllOf:
        _check_tree_bounds(self)
        return self


class AnyOf(StrictModel):
    """True when at least one condition holds (logical OR)."""

    type: Literal["any"]
    conditions: list[Condition] = Field(min_length=1, max_length=50, description="1-50 conditions.")

    @model_validator(mode="after")
    def _bounded(self) -> AnyOf:
        _check_tree_bounds(self)
        return self


class NotOf(StrictModel):
    """True when the condition does not hold (logical NOT)."""

    type: Literal["not"]
    condition: Condition

    @model_validator(mode="after")
    def _bounded(self) -> NotOf:
        _check_tree_bounds(self)
        return self


Condition = Annotated[
    Comparison | PatternCondition | StructureCondition | AllOf | AnyOf | NotOf,
    Field(discriminator="type"),
]
"""A node of a condition tree, chosen by `type`: compare, pattern, structure, all, any, not."""

AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()


def children(condition: Condition) -> tuple[Condition, ...]:
    """The direct sub-conditions of a group (`all`, `any`, `not`); none for a leaf."""
    if isinstance(condition, AllOf | AnyOf):
        return tuple(condition.conditions)
    if isinstance(condition, NotOf):
        return (condition.condition,)
    return ()


def iter_conditions(condition: Condition) -> Iterator[Condition]:
    """Every node of the tree, depth-first, the root first."""
    yield condition
    for child in children(condition):
        yield from iter_conditions(child)


def condition_depth(condition: Condition) -> int:
    """Levels in the tree: 1 for a single leaf, 1 + deepest child for a group."""
    return 1 + max((condition_depth(child) for child in children(condition)), default=0)


def condition_size(condition: Condition) -> int:
    """Number of nodes (groups and leaves) in the tree."""
    return sum(1 for _ in iter_conditions(condition))


def _check_tree_bounds(group: AllOf | AnyOf | NotOf) -> None:
    # Checked at every group while parsing bottom-up, so the error points at the first
    # subtree that breaks a limit rather than at the whole rule set.
    depth = condition_depth(group)
    if depth > MAX_CONDITION_DEPTH:
        raise ValueError(f"conditions nest {depth} levels deep; at most {MAX_CONDITION_DEPTH} are allowed")
    size = condition_size(group)
    if size > MAX_CONDITION_NODES:
        raise ValueError(f"condition tree has {size} nodes; at most {MAX_CONDITION_NODES} are allowed")


# --------------------------------------------------------------------------- exits and sizing


class PercentStop(StrictModel):
    """Stop at a fixed distance from the entry price, against the position."""

    type: Literal["percent"]
    pct: OpenPct = Field(description="Distance from entry in percent (0-100).")


class AtrStop(StrictModel):
    """Stop `multiple` × ATR(`period`) away from the entry price, ATR taken at entry."""

    type: Literal["atr_multiple"]
    multiple: Decimal = Field(gt=0, le=20, description="ATR multiples between entry and stop (0-20].")
    period: Period = 14
    timeframe: _OptionalTimeframe = None

    def atr(self) -> AtrRef:
        """The ATR series this stop reads."""
        return AtrRef(
            type="indicator", name="atr", params=PeriodParams(period=self.period), timeframe=self.timeframe
        )


class FixedPriceStop(StrictModel):
    """Stop at an absolute price (below entry for longs, above for shorts)."""

    type: Literal["fixed_price"]
    price: PositiveAmount = Field(description="Stop price in quote currency.")


class TrailingStop(StrictModel):
    """Stop that follows the best price since entry at a fixed percentage distance."""

    type: Literal["trailing_percent"]
    pct: OpenPct = Field(description="Distance from the best price since entry, in percent (0-100).")
    activation_pct: Decimal | None = Field(
        None,
        gt=0,
        le=1000,
        description="Start trailing only once the position is this many percent in profit; "
        "omitted = trail from entry.",
    )


StopLoss = Annotated[PercentStop | AtrStop | FixedPriceStop | TrailingStop, Field(discriminator="type")]
"""Protective stop, chosen by `type`: percent, atr_multiple, fixed_price, trailing_percent."""


class PercentTakeProfit(StrictModel):
    """Close the whole position at a fixed percentage gain."""

    type: Literal["percent"]
    pct: Decimal = Field(gt=0, le=1000, description="Gain from entry in percent (0-1000].")


class RiskRewardTakeProfit(StrictModel):
    """Close at `ratio` × the initial stop distance (needs a stop loss)."""

    type: Literal["risk_reward"]
    ratio: Decimal = Field(gt=0, le=100, description="Reward / risk, e.g. 2 for 2R (0-100].")


class PartialTarget(StrictModel):
    """One partial exit: sell `size_fraction` of the entry size at `pct` percent gain."""

    pct: Decimal = Field(gt=0, le=1000, description="Gain from entry in percent (0-1000].")
    size_fraction: UnitFraction = Field(description="Share of the entry size to close here (0-1].")


class PartialTakeProfit(StrictModel):
    """Scale out at increasing targets; what the fractions leave open rides until another exit."""

    type: Literal["targets"]
    targets: list[PartialTarget] = Field(
        min_length=1, max_length=10, description="1-10 targets, nearest first."
    )

    @field_validator("targets")
    @classmethod
    def _ordered_and_within_position(cls, targets: list[PartialTarget]) -> list[PartialTarget]:
        for nearer, further in pairwise(targets):
            if further.pct <= nearer.pct:
                raise ValueError("targets must be listed nearest first, with strictly increasing pct")
        total = sum((target.size_fraction for target in targets), Decimal(0))
        if total > 1:
            raise ValueError(
                f"target size fractions sum to {total}; they may close at most the whole position (1)"
            )
        return targets


TakeProfit = Annotated[
    PercentTakeProfit | RiskRewardTakeProfit | PartialTakeProfit, Field(discriminator="type")
]
"""Profit target, chosen by `type`: percent, risk_reward, targets."""


class FixedQuoteSizing(StrictModel):
    """Spend a fixed amount of quote currency per entry."""

    type: Literal["fixed_quote"]
    amount: PositiveAmount = Field(description="Quote currency per entry, e.g. 100 (USDT).")


class PercentEquitySizing(StrictModel):
    """Spend a percentage of the account's equity per entry."""

    type: Literal["percent_equity"]
    pct: Decimal = Field(gt=0, le=100, description="Share of equity per entry, in percent (0-100].")


class RiskSizing(StrictModel):
    """Size so that hitting the stop loses `risk_pct` percent of equity (needs a stop loss)."""

    type: Literal["risk"]
    risk_pct: Decimal = Field(gt=0, le=20, description="Equity lost at the stop, in percent (0-20].")


PositionSizing = Annotated[FixedQuoteSizing | PercentEquitySizing | RiskSizing, Field(discriminator="type")]
"""How big each entry is, chosen by `type`: fixed_quote, percent_equity, risk."""


# --------------------------------------------------------------------------- rule set


class IndicatorKey(NamedTuple):
    """One indicator series to compute: on which timeframe, which indicator, which params."""

    timeframe: Timeframe
    name: str
    params: StrictModel


class RuleSet(StrictModel):
    """A complete rule-based strategy: when to enter, how to exit, and how much to trade.

    `side` is `long` by default. `short` is accepted here but only runs on derivatives
    markets (`BASE/QUOTE:SETTLE`); see `tekoa.strategies.models.ensure_tradable_on`. Stop and
    target distances are measured from the entry price against / in favour of the position.
    At least one way out (exit conditions, stop loss or take profit) is required.
    """

    timeframe: Timeframe = Field(description="Primary timeframe: rules are evaluated when its candle closes.")
    side: Literal["long", "short"] = Field(
        "long", description="Direction of entries; short needs a derivatives market."
    )
    entry: Condition = Field(description="Enter when this condition tree holds on a closed candle.")
    exit: Condition | None = Field(None, description="Close the position when this condition tree holds.")
    stop_loss: StopLoss | None = None
    take_profit: TakeProfit | None = None
    position_sizing: PositionSizing = Field(description="Size of each entry.")

    @model_validator(mode="after")
    def _coherent(self) -> RuleSet:
        if self.exit is None and self.stop_loss is None and self.take_profit is None:
            raise ValueError("a rule set needs a way out: exit conditions, a stop_loss or a take_profit")
        if isinstance(self.take_profit, RiskRewardTakeProfit) and self.stop_loss is None:
            raise ValueError("take_profit of type risk_reward needs a stop_loss to measure the risk")
        if isinstance(self.position_sizing, RiskSizing) and self.stop_loss is None:
            raise ValueError("position_sizing of type risk needs a stop_loss to measure the risk")
        for timeframe, bars in lookback_by_timeframe(self).items():
            if bars > MAX_LOOKBACK_BARS:
                raise ValueError(
                    f"rules need {bars} bars of {timeframe} history; at most {MAX_LOOKBACK_BARS} are allowed "
                    "(shorten periods or offsets)"
                )
        return self


def _conditions_of(ruleset: RuleSet) -> Iterator[Condition]:
    yield from iter_conditions(ruleset.entry)
    if ruleset.exit is not None:
        yield from iter_conditions(ruleset.exit)


def _operand_needs(ruleset: RuleSet) -> Iterator[tuple[Timeframe, int, IndicatorRef | None]]:
    """(timeframe, bars of history, indicator if any) for everything the rules read."""
    primary = ruleset.timeframe
    for node in _conditions_of(ruleset):
        if isinstance(node, Comparison):
            extra = 1 if node.op.is_cross else 0
            for operand in (node.left, node.right):
                if isinstance(operand, ConstantRef):
                    continue
                timeframe = operand.timeframe or primary
                if isinstance(operand, PriceRef):
                    yield timeframe, 1 + operand.offset + extra, None
                else:
                    yield timeframe, operand.warmup_bars() + operand.offset + extra, operand
        elif isinstance(node, PatternCondition):
            bars = node.pattern.candles + PATTERN_CONTEXT_BARS + node.offset
            yield node.timeframe or primary, bars, None
        elif isinstance(node, StructureCondition):
            yield node.timeframe or primary, node.lookback, None
    if isinstance(ruleset.stop_loss, AtrStop):
        atr = ruleset.stop_loss.atr()
        yield atr.timeframe or primary, atr.warmup_bars(), atr


def required_indicators(ruleset: RuleSet) -> list[IndicatorKey]:
    """The distinct indicator series the rule set reads, in first-use order.

    Outputs and offsets are not part of the key: one computation of MACD(12, 26, 9) on 1h
    serves its line, signal and histogram at any offset. The ATR of an `atr_multiple` stop
    is included. Operands without a timeframe resolve to the primary timeframe.
    """
    seen: dict[IndicatorKey, None] = {}
    for timeframe, _, indicator in _operand_needs(ruleset):
        if indicator is not None:
            seen.setdefault(IndicatorKey(timeframe, indicator.name, indicator.params), None)
    return list(seen)


def lookback_by_timeframe(ruleset: RuleSet) -> dict[Timeframe, int]:
    """Bars of closed-candle history needed per timeframe for every rule to be computable.

    Counts indicator warm-up (the catalogue's, `tekoa.indicators.catalogue`),
    offsets, one extra bar for `crosses_*`, pattern context and structure lookbacks.
    """
    needs: dict[Timeframe, int] = {ruleset.timeframe: 1}
    for timeframe, bars, _ in _operand_needs(ruleset):
        needs[timeframe] = max(needs.get(timeframe, 0), bars)
    return needs


def max_lookback(ruleset: RuleSet) -> int:
    """The longest history, in bars of its own timeframe, any series of the rule set needs."""
    return max(lookback_by_timeframe(ruleset).values())

"""Parameters of the built-in bot types: scalper, grid, dca, dip and momentum.

Each model rejects nonsense at the door: bounds on every number, and cross-field rules
(fast < slow, lower < upper, ...) reported on the later field where one field is to blame,
or on the whole model where the combination is. Units follow `tekoa.strategies.units`:
`*_pct` fields are percentages (5 = 5 %). Every bot type also names the candle `timeframe`
whose close drives its evaluation.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tekoa.domain.timeframes import Timeframe
from tekoa.strategies.units import OpenPct, OrderSize, PositiveAmount, StrictModel

_Timeframe = Annotated[Timeframe, Field(description="Candle timeframe whose close triggers evaluation.")]

# --------------------------------------------------------------------------- scalper


class ScalperParams(StrictModel):
    """Fast EMA crossing a slow EMA, filtered by RSI, with tight fixed-percent exits.

    Enters long when EMA(fast) crosses above EMA(slow) while RSI is not overbought; the
    oversold bound marks stretched dips the strategy may buy into.
    """

    timeframe: _Timeframe = Timeframe.M1
    fast_ema_period: int = Field(9, ge=1, le=500, description="Fast EMA period in bars (1-500).")
    slow_ema_period: int = Field(
        21, ge=2, le=1000, description="Slow EMA period in bars, above the fast (2-1000)."
    )
    rsi_period: int = Field(14, ge=2, le=200, description="RSI period in bars (2-200).")
    rsi_oversold: Decimal = Field(
        Decimal(30), gt=0, lt=100, description="RSI level counted as oversold (0-100)."
    )
    rsi_overbought: Decimal = Field(
        Decimal(70), gt=0, lt=100, description="RSI level counted as overbought, above oversold (0-100)."
    )
    take_profit_pct: Decimal = Field(gt=0, le=20, description="Take profit above entry, in percent (0-20].")
    stop_loss_pct: Decimal = Field(gt=0, le=20, description="Stop loss below entry, in percent (0-20].")
    max_trades_per_hour: int = Field(10, ge=1, le=60, description="Entries allowed per rolling hour (1-60).")
    order_size: OrderSize

    @field_validator("slow_ema_period")
    @classmethod
    def _slow_above_fast(cls, slow: int, info: ValidationInfo) -> int:
        fast = info.data.get("fast_ema_period")
        if fast is not None and slow <= fast:
            raise ValueError(f"slow EMA period ({slow}) must be longer than the fast one ({fast})")
        return slow

    @field_validator("rsi_overbought")
    @classmethod
    def _overbought_above_oversold(cls, overbought: Decimal, info: ValidationInfo) -> Decimal:
        oversold = info.data.get("rsi_oversold")
        if oversold is not None and overbought <= oversold:
            raise ValueError(f"rsi_overbought ({overbought}) must be above rsi_oversold ({oversold})")
        return overbought


# --------------------------------------------------------------------------- grid

MIN_GRID_STEP_PCT = Decimal("0.1")
"""Smallest gain between adjacent grid levels, in percent: below it fees eat every round trip."""
GRID_PRECISION = 28
"""Significant digits used when computing grid levels."""


class GridParams(StrictModel):
    """Buy and sell orders on a ladder of prices between `lower_price` and `upper_price`.

    `levels` counts the prices including both bounds. Adjacent levels must be at least
    `MIN_GRID_STEP_PCT` percent apart. Optional stops close the grid when price leaves the
    range: `stop_loss_price` below `lower_price`, `take_profit_price` above `upper_price`.
    """

    timeframe: _Timeframe = Timeframe.M1
    lower_price: PositiveAmount = Field(description="Lowest grid level, in quote currency.")
    upper_price: PositiveAmount = Field(
        description="Highest grid level, in quote currency; above lower_price."
    )
    levels: int = Field(ge=2, le=500, description="Number of price levels including both bounds (2-500).")
    spacing: Literal["arithmetic", "geometric"] = Field(
        "arithmetic",
        description="arithmetic: equal price steps; geometric: equal percentage steps (same ratio).",
    )
    order_size: OrderSize = Field(description="Size of the order placed at each level.")
    stop_loss_price: PositiveAmount | None = Field(None, description="Close everything below this price.")
    take_profit_price: PositiveAmount | None = Field(None, description="Close everything above this price.")

    @field_validator("upper_price")
    @classmethod
    def _upper_above_lower(cls, upper: Decimal, info: ValidationInfo) -> Decimal:
        lower = info.data.get("lower_price")
        if lower is not None and upper <= lower:
            raise ValueError(f"upper_price ({upper}) must be above lower_price ({lower})")
        return upper

    @field_validator("stop_loss_price")
    @classmethod
    def _stop_below_range(cls, stop: Decimal | None, info: ValidationInfo) -> Decimal | None:
        lower = info.data.get("lower_price")
        if stop is not None and lower is not None and stop >= lower:
            raise ValueError(f"stop_loss_price ({stop}) must be below lower_price ({lower})")
        return stop

    @field_validator("take_profit_price")
    @classmethod
    def _take_profit_above_range(cls, take_profit: Decimal | None, info: ValidationInfo) -> Decimal | None:
        upper = info.data.get("upper_price")
        if take_profit is not None and upper is not None and take_profit <= upper:
            raise ValueError(f"take_profit_price ({take_profit}) must be above upper_price ({upper})")
        return take_profit

    @model_validator(mode="after")
    def _steps_cover_fees(self) -> GridParams:
        step_pct = self.min_step_pct()
        if step_pct < MIN_GRID_STEP_PCT:
            raise ValueError(
                f"adjacent grid levels are only {step_pct:.4f} % apart; at least {MIN_GRID_STEP_PCT} % "
                "is needed to cover fees (use fewer levels or a wider range)"
            )
        return self

    def min_step_pct(self) -> Decimal:
        """Smallest percentage gain from one level to the next (the top step for arithmetic)."""
        with localcontext() as ctx:
            ctx.prec = GRID_PRECISION
            gaps = self.levels - 1
            if self.spacing == "geometric":
                ratio = (self.upper_price / self.lower_price) ** (Decimal(1) / gaps)
                return (ratio - 1) * 100
            step = (self.upper_price - self.lower_price) / gaps
            return step / (self.upper_price - step) * 100

    def grid_prices(self) -> tuple[Decimal, ...]:
        """The `levels` prices, ascending, first = `lower_price`, last = `upper_price` exactly.

        Arithmetic levels are `lower + i × (upper - lower) / (levels - 1)`; geometric levels are
        `lower × r^i` with `r = (upper / lower)^(1 / (levels - 1))`. Inner levels are computed
        with `GRID_PRECISION` significant digits, rounded half-even; they are not rounded to
        the market's tick size, which the order layer does with the market's precision.
        """
        gaps = self.levels - 1
        with localcontext() as ctx:
            ctx.prec = GRID_PRECISION
            if self.spacing == "geometric":
                ratio = (self.upper_price / self.lower_price) ** (Decimal(1) / gaps)
                inner = [self.lower_price * ratio**i for i in range(1, gaps)]
            else:
                step = (self.upper_price - self.lower_price) / gaps
                inner = [self.lower_price + step * i for i in range(1, gaps)]
        return (self.lower_price, *inner, self.upper_price)


# --------------------------------------------------------------------------- dca


class SafetyOrder(BaseModel):
    """One rung of a DCA safety-order ladder (sizes in quote currency), computed from the
    parameters at full precision (not user input, so not bounded like it)."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(description="1 for the first safety order.")
    step_pct: Decimal = Field(
        description="Drop from the previous order's trigger, in percent of the base price."
    )
    deviation_pct: Decimal = Field(
        description="Total drop from the base order price that triggers it, in percent."
    )
    size: Decimal = Field(description="Quote amount of this order.")
    cumulative_size: Decimal = Field(description="Quote committed once it fills, base order included.")

    def trigger_price(self, base_price: Decimal) -> Decimal:
        """Price at which this order buys, given the base order's fill price."""
        return base_price * (1 - self.deviation_pct / 100)


class DcaParams(StrictModel):
    """Dollar-cost averaging: a base order, then larger safety orders as price falls, and one
    take profit on the average entry price.

    Safety order `i` (1-based) triggers `price_deviation_pct × step_scale^(i-1)` percent below
    the previous one (all percentages of the base order price, so they add up) and spends
    `safety_order_size × volume_scale^(i-1)`. The deepest order must trigger above zero, so
    the total deviation stays below 100 %. `stop_loss_pct` is measured from the base order
    price and must lie beyond the deepest safety order, or that order could never fill.
    After a deal closes (take profit or stop), the next base order waits `cooldown_bars` bars.
    """

    timeframe: _Timeframe = Timeframe.H1
    base_order_size: PositiveAmount = Field(description="Quote amount of the first order.")
    safety_order_size: PositiveAmount = Field(description="Quote amount of the first safety order.")
    max_safety_orders: int = Field(ge=0, le=100, description="Safety orders at most (0-100).")
    price_deviation_pct: OpenPct = Field(description="Drop that triggers the first safety order, in percent.")
    step_scale: Decimal = Field(
        Decimal(1),
        ge=1,
        le=10,
        description="Each next deviation step is this many times the previous (1-10).",
    )
    volume_scale: Decimal = Field(
        Decimal(1), ge=1, le=10, description="Each next safety order is this many times the previous (1-10)."
    )
    take_profit_pct: Decimal = Field(
        gt=0, le=100, description="Take profit above the average entry, in percent."
    )
    stop_loss_pct: OpenPct | None = Field(None, description="Stop below the base order price, in percent.")
    cooldown_bars: int = Field(
        0,
        ge=0,
        le=10000,
        description="Bars to wait after a deal closes before the next base order (0-10000).",
    )

    @model_validator(mode="after")
    def _ladder_fits(self) -> DcaParams:
        ladder = self.safety_orders()
        deepest = ladder[-1].deviation_pct if ladder else Decimal(0)
        if deepest >= 100:
            raise ValueError(
                f"safety orders reach a total deviation of {deepest} %; it must stay below 100 % "
                "(lower max_safety_orders, price_deviation_pct or step_scale)"
            )
        if self.stop_loss_pct is not None and self.stop_loss_pct <= deepest:
            raise ValueError(
                f"stop_loss_pct ({self.stop_loss_pct}) must exceed the deepest safety order's "
                f"deviation ({deepest} %)"
            )
        return self

    def safety_orders(self) -> tuple[SafetyOrder, ...]:
        """The safety-order ladder, shallowest first, with exact Decimal arithmetic."""
        rungs: list[SafetyOrder] = []
        step = self.price_deviation_pct
        size = self.safety_order_size
        deviation = Decimal(0)
        committed = self.base_order_size
        for index in range(1, self.max_safety_orders + 1):
            deviation += step
            committed += size
            rungs.append(
                SafetyOrder(
                    index=index, step_pct=step, deviation_pct=deviation, size=size, cumulative_size=committed
                )
            )
            if deviation >= 100:
                break  # the validator rejects this ladder; deeper rungs add nothing
            step *= self.step_scale
            size *= self.volume_scale
        return tuple(rungs)

    def max_capital(self) -> Decimal:
        """Quote currency committed when the base order and every safety order have filled."""
        ladder = self.safety_orders()
        return ladder[-1].cumulative_size if ladder else self.base_order_size


# --------------------------------------------------------------------------- dip


class GreenCandlesConfirmation(StrictModel):
    """Buy only after `count` consecutive candles closing above their open."""

    type: Literal["green_candles"]
    count: int = Field(2, ge=1, le=10, description="Consecutive green candles (1-10).")


class RsiBelowConfirmation(StrictModel):
    """Buy only while RSI(`period`) is below `threshold`."""

    type: Literal["rsi_below"]
    period: int = Field(14, ge=2, le=200, description="RSI period in bars (2-200).")
    threshold: Decimal = Field(Decimal(30), gt=0, lt=100, description="RSI must be below this (0-100).")


class CloseAbovePriorHighConfirmation(StrictModel):
    """Buy only once a candle closes above the previous candle's high."""

    type: Literal["close_above_prior_high"]


DipConfirmation = Annotated[
    GreenCandlesConfirmation | RsiBelowConfirmation | CloseAbovePriorHighConfirmation,
    Field(discriminator="type"),
]
"""Extra evidence the dip is over, chosen by `type`."""


class DipParams(StrictModel):
    """Buy after price falls `drop_pct` from its highest high of the last `lookback_bars`.

    The lookback as a duration is `lookback_bars × timeframe` (48 bars of 1h = two days).
    With `trailing_buy_pct`, the buy waits until price rebounds that far off its low.
    """

    timeframe: _Timeframe = Timeframe.H1
    drop_pct: OpenPct = Field(description="Fall from the recent high that arms a buy, in percent.")
    lookback_bars: int = Field(48, ge=2, le=5000, description="Bars the recent high is taken over (2-5000).")
    confirmation: DipConfirmation | None = Field(None, description="Optional confirmation before buying.")
    trailing_buy_pct: Decimal | None = Field(
        None, gt=0, description="Rebound off the low required to buy, in percent; below drop_pct."
    )
    take_profit_pct: Decimal = Field(gt=0, le=1000, description="Take profit above entry, in percent.")
    stop_loss_pct: OpenPct = Field(description="Stop below entry, in percent.")
    order_size: OrderSize

    @field_validator("trailing_buy_pct")
    @classmethod
    def _trail_within_drop(cls, trail: Decimal | None, info: ValidationInfo) -> Decimal | None:
        drop = info.data.get("drop_pct")
        if trail is not None and drop is not None and trail >= drop:
            raise ValueError(f"trailing_buy_pct ({trail}) must be smaller than drop_pct ({drop})")
        return trail


# --------------------------------------------------------------------------- momentum


class BreakoutMode(StrictModel):
    """Enter when the close breaks above the highest high of the previous `lookback` bars."""

    type: Literal["breakout"]
    lookback: int = Field(20, ge=2, le=1000, description="Channel length in bars (2-1000).")


class RocMode(StrictModel):
    """Enter when the rate of change over `period` bars exceeds `threshold_pct` percent."""

    type: Literal["roc"]
    period: int = Field(10, ge=1, le=500, description="Bars the change is measured over (1-500).")
    threshold_pct: Decimal = Field(
        gt=0, le=100, description="Minimum rise over the period, in percent (0-100]."
    )


MomentumMode = Annotated[BreakoutMode | RocMode, Field(discriminator="type")]
"""How momentum is detected, chosen by `type`: breakout or roc."""


class VolumeConfirmation(StrictModel):
    """Require volume above `multiplier` × SMA(volume, `period`) on the signal candle."""

    period: int = Field(20, ge=1, le=500, description="Volume average period in bars (1-500).")
    multiplier: Decimal = Field(
        Decimal("1.5"), ge=1, le=20, description="Volume must exceed this × its average."
    )


class MomentumParams(StrictModel):
    """Ride breakouts or strong rate of change, exiting on a trailing stop (or a target)."""

    timeframe: _Timeframe = Timeframe.H1
    mode: MomentumMode
    volume_confirmation: VolumeConfirmation | None = Field(None, description="Optional volume filter.")
    trailing_stop_pct: OpenPct = Field(
        description="Trailing stop below the best price since entry, in percent."
    )
    take_profit_pct: Decimal | None = Field(
        None, gt=0, le=1000, description="Optional fixed target, in percent."
    )
    order_size: OrderSize

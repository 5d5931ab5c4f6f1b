"""A user's risk limits and trading state: the numbers the pre-trade checks and the circuit
breaker read. Pure data (pydantic), shared by the API, the evaluator and the executor.

Limits are the user's and count everything the user trades — every bot, every exchange,
paper and live — so one bot's loss trips the limit for all of that user's bots, by design
(hummingbot #1145 tripped on another bot's loss on a shared account without saying so; here
it is the rule, and `GET /v1/risk` shows the numbers). Per-bot settings (risk per trade, the
largest position) live on the bot (`tekoa.domain.bots.RiskSettings`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from tekoa.domain.execution import TradingState
from tekoa.domain.numbers import BoundedDecimals

_RANKS = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def stricter(a: TradingState, b: TradingState) -> TradingState:
    """The state that allows less."""
    return a if _RANKS[a] >= _RANKS[b] else b


class Trip(StrEnum):
    """Why a user's state left `active`."""

    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "drawdown"
    KILL_SWITCH = "kill_switch"


class _Model(BoundedDecimals):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuoteLossLimit(_Model):
    """Daily loss limit as an amount of quote currency."""

    type: Literal["quote"]
    amount: Decimal = Field(
        gt=0, le=Decimal("1e12"), description="Largest loss per UTC day, in quote currency."
    )


class PercentLossLimit(_Model):
    """Daily loss limit as a percentage of the equity at the start of the UTC day."""

    type: Literal["pct"]
    pct: Decimal = Field(gt=0, lt=100, description="Largest loss per UTC day, in percent of equity (0-100).")


DailyLossLimit = Annotated[QuoteLossLimit | PercentLossLimit, Field(discriminator="type")]
"""Daily loss limit, chosen by `type`: quote (an amount) or pct (of day-start equity)."""


class RiskLimits(_Model):
    """A user's limits across all their bots and exchanges. The defaults suit paper trading."""

    daily_loss_limit: DailyLossLimit = Field(
        default_factory=lambda: PercentLossLimit(type="pct", pct=Decimal(5)),
        description="Entries stop for the UTC day once the day's losses reach this (default 5 % of "
        "the equity at the start of the day); exits and protective stops go on.",
    )
    max_drawdown_pct: Decimal = Field(
        Decimal(20),
        gt=0,
        lt=100,
        description="Fall of equity from its peak that stops entries until you reset (percent, 0-100).",
    )
    max_open_positions: int = Field(
        10, ge=1, le=1000, description="Open positions across all your bots at once (1-1000)."
    )
    max_orders_per_minute: int = Field(
        60, ge=1, le=10_000, description="Orders one bot may send in any minute (1-10000)."
    )
    max_price_deviation_pct: Decimal = Field(
        Decimal(5),
        gt=0,
        le=50,
        description="An order priced (or decided) further than this from the last trade is refused "
        "(percent, 0-50].",
    )
    reset_daily_loss_at_utc_midnight: bool = Field(
        True, description="A daily-loss trip lifts itself when the UTC day rolls over."
    )

    @model_validator(mode="after")
    def _limits_nest(self) -> RiskLimits:
        limit = self.daily_loss_limit
        if isinstance(limit, PercentLossLimit) and limit.pct >= self.max_drawdown_pct:
            raise ValueError(
                f"daily loss limit ({limit.pct} %) must be below max_drawdown_pct ({self.max_drawdown_pct} %)"
            )
        return self


class RiskTracking(_Model):
    """What the circuit breaker remembers per user (stored in `user_risk`).

    Values are *performance* — equity less the capital put in (deposits and paper resets, the
    ledger's `capital` book) — so a deposit or a reset is neither a gain nor a loss.
    """

    state: TradingState = TradingState.ACTIVE
    reason: str | None = None
    trip: Trip | None = None
    day: date | None = Field(None, description="UTC day the day-start value belongs to.")
    day_start_performance: Decimal | None = None
    peak_performance: Decimal | None = None

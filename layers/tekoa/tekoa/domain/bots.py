"""Bot lifecycle and risk settings: the status machine, trading modes and risk limits.

Status changes go through `transition`, which consults one table; anything not in it
raises `IllegalBotTransition` (a `Conflict`, HTTP 409). Repeating an action the bot is
already in (stopping a stopped bot) is illegal too, so a client learns the real state.

Percentages are percent (5 = 5 %), amounts are Decimal in the account's quote currency.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from tekoa.domain.numbers import BoundedDecimals
from tekoa.errors import Conflict


class BotStatus(StrEnum):
    """Where a bot is in its lifecycle."""

    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"
    ERROR = "error"


class BotAction(StrEnum):
    """What may happen to a bot: users start, pause and stop; only the system fails a bot."""

    START = "start"
    STOP = "stop"
    PAUSE = "pause"
    FAIL = "fail"


USER_ACTIONS: frozenset[BotAction] = frozenset({BotAction.START, BotAction.STOP, BotAction.PAUSE})
"""Actions the API accepts from users; `fail` is the system's."""

TRANSITIONS: dict[tuple[BotStatus, BotAction], BotStatus] = {
    (BotStatus.STOPPED, BotAction.START): BotStatus.RUNNING,
    (BotStatus.RUNNING, BotAction.PAUSE): BotStatus.PAUSED,
    (BotStatus.RUNNING, BotAction.STOP): BotStatus.STOPPED,
    (BotStatus.RUNNING, BotAction.FAIL): BotStatus.ERROR,
    (BotStatus.PAUSED, BotAction.START): BotStatus.RUNNING,
    (BotStatus.PAUSED, BotAction.STOP): BotStatus.STOPPED,
    (BotStatus.PAUSED, BotAction.FAIL): BotStatus.ERROR,
    (BotStatus.ERROR, BotAction.START): BotStatus.RUNNING,
    (BotStatus.ERROR, BotAction.STOP): BotStatus.STOPPED,
}
"""Every legal (status, action) pair and the status it leads to. A paused bot resumes with
`start`; a bot in error may be restarted once its cause is fixed, or stopped."""


class IllegalBotTransition(Conflict):
    """The action is not allowed in the bot's current status (e.g. pausing a stopped bot)."""

    code = "ILLEGAL_BOT_TRANSITION"

    def __init__(self, current: BotStatus, action: BotAction) -> None:
        allowed = ", ".join(sorted(allowed_actions(current))) or "none"
        super().__init__(
            f"cannot {action} a bot that is {current} (allowed: {allowed})",
            field="status",
        )
        self.current = current
        self.action = action


def allowed_actions(current: BotStatus) -> frozenset[BotAction]:
    """The actions legal from `current`."""
    return frozenset(action for status, action in TRANSITIONS if status is current)


def transition(current: BotStatus, action: BotAction) -> BotStatus:
    """The status after `action`, or IllegalBotTransition when the table forbids it."""
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        raise IllegalBotTransition(current, action) from None


class TradingMode(StrEnum):
    """Paper trades against simulated fills; live sends orders to the exchange."""

    PAPER = "paper"
    LIVE = "live"


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


class RiskSettings(_Model):
    """Per-bot risk limits checked before every order. The defaults suit paper trading."""

    risk_per_trade_pct: Decimal = Field(
        Decimal(1), gt=0, le=10, description="Equity at risk per trade (entry to stop), in percent (0-10]."
    )
    max_position_notional: Decimal = Field(
        Decimal(1000), gt=0, le=Decimal("1e12"), description="Largest position value, in quote currency."
    )
    max_open_positions: int = Field(3, ge=1, le=100, description="Open positions at once (1-100).")
    # A factory, not a default value: a schema's default cannot be a model (client generators
    # such as openapi-python-client refuse it).
    daily_loss_limit: DailyLossLimit = Field(
        default_factory=lambda: PercentLossLimit(type="pct", pct=Decimal(5)),
        description="Trading halts for the UTC day once losses reach this (default: 5 % of equity).",
    )
    max_drawdown_pct: Decimal = Field(
        Decimal(20),
        gt=0,
        lt=100,
        description="Peak-to-trough equity loss that stops the bot, in percent (0-100).",
    )

    @model_validator(mode="after")
    def _limits_nest(self) -> RiskSettings:
        limit = self.daily_loss_limit
        if isinstance(limit, PercentLossLimit):
            if limit.pct >= self.max_drawdown_pct:
                raise ValueError(
                    f"daily loss limit ({limit.pct} %) must be below "
                    f"max_drawdown_pct ({self.max_drawdown_pct} %)"
                )
            if self.risk_per_trade_pct > limit.pct:
                raise ValueError(
                    f"risk_per_trade_pct ({self.risk_per_trade_pct} %) must not exceed the daily loss "
                    f"limit ({limit.pct} %)"
                )
        return self

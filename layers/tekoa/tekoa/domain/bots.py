"""Bot lifecycle and risk settings: the status machine, trading modes and risk limits.

Status changes go through `transition`, which consults one table; anything not in it
raises `IllegalBotTransition` (a `Conflict`, HTTP 409). Repeating an action the bot is
already in (stopping a stopped bot) is illegal too, so a client learns the real state.

Percentages are percent (5 = 5 %), amounts are Decimal in the account's quote currency.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import ConfigDict, Field

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


class RiskSettings(_Model):
    """Per-bot limits checked before every order (`tekoa.risk.checks`); the user's limits across
    all bots (daily loss, drawdown, open positions) are `tekoa.risk.limits.RiskLimits`."""

    risk_per_trade_pct: Decimal = Field(
        Decimal(2),
        gt=0,
        le=10,
        description="Equity an entry may lose at its stop, in percent (0-10]; without a stop the whole "
        "order value counts as at risk. Entries are cut to fit.",
    )
    max_position_notional: Decimal = Field(
        Decimal(1000), gt=0, le=Decimal("1e12"), description="Largest position value, in quote currency."
    )

"""A user's trading resources as stored: strategies and their versions, bots and their status
history, broker credentials (never the secret) and activity entries.

The repositories in `tekoa.db` return these; the API shows them to their owner.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tekoa.domain.bots import BotAction, BotStatus, RiskSettings, TradingMode
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.wire import EpochMillis
from tekoa.errors import Conflict, NotFound, ValidationFailed
from tekoa.strategies.models import BotType, StrategyDefinition


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Strategy(_Record):
    """A named, versioned strategy definition."""

    id: UUID
    name: str
    description: str
    definition: StrategyDefinition
    kind: Literal["builtin", "rules"] = Field(description="From the definition.")
    bot_type: BotType | None = Field(description="The built-in bot type; null for rule sets.")
    enabled: bool
    version: int = Field(ge=1, description="Bumped by every change; send it back as If-Match or `version`.")
    created_at: EpochMillis
    updated_at: EpochMillis


class StrategyVersion(_Record):
    """One historical version of a strategy."""

    strategy_id: UUID
    version: int
    name: str
    description: str
    definition: StrategyDefinition
    enabled: bool
    created_at: EpochMillis


class Bot(_Record):
    """A strategy bound to an exchange market, a trading mode and risk limits."""

    id: UUID
    name: str
    strategy_id: UUID
    credential_id: UUID | None
    exchange: str
    symbol: str
    timeframe: Timeframe
    mode: TradingMode
    risk: RiskSettings
    status: BotStatus
    live_confirmed_at: EpochMillis | None = Field(
        description="When live trading was confirmed; null in paper mode."
    )
    version: int = Field(ge=1)
    created_at: EpochMillis
    updated_at: EpochMillis
    archived_at: EpochMillis | None = Field(
        None, description="When the bot was deleted while it had orders: kept, read-only, for its history."
    )


class BotStatusChange(_Record):
    """One entry of a bot's status history."""

    id: int
    bot_id: UUID
    from_status: BotStatus
    to_status: BotStatus
    action: BotAction
    reason: str | None
    actor: Literal["user", "system"] = Field(description="Who made the change.")
    at: EpochMillis


class BrokerCredential(_Record):
    """A stored exchange API key as its owner may see it: never the secret, only a hint."""

    id: UUID
    exchange: str
    label: str
    hint: str = Field(description="First and last four characters of the API key.")
    verified: bool
    verified_at: EpochMillis | None
    last_used_at: EpochMillis | None
    created_at: EpochMillis


class CredentialSecrets(BaseModel):
    """The decrypted secret parts of a broker credential, for the executor only.

    Values are SecretStr, so printing or logging the object shows no secret.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    secret: SecretStr
    password: SecretStr | None = None
    uid: SecretStr | None = None

    def ccxt_config(self) -> dict[str, str]:
        """The ccxt constructor options these secrets fill in (apiKey, secret, password, uid)."""
        config = {"apiKey": self.api_key.get_secret_value(), "secret": self.secret.get_secret_value()}
        if self.password is not None:
            config["password"] = self.password.get_secret_value()
        if self.uid is not None:
            config["uid"] = self.uid.get_secret_value()
        return config


class ActivityLevel(StrEnum):
    """How an activity entry is shown."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


class ActivityEntry(_Record):
    """One line of a user's activity feed."""

    id: int
    bot_id: UUID | None
    level: ActivityLevel
    message: str
    data: dict[str, Any]
    created_at: EpochMillis


class StrategyNotFound(NotFound):
    """No strategy with that id belongs to the caller."""

    def __init__(self) -> None:
        super().__init__("strategy not found")


class BotNotFound(NotFound):
    """No bot with that id belongs to the caller."""

    def __init__(self) -> None:
        super().__init__("bot not found")


class CredentialNotFound(NotFound):
    """No broker credential with that id belongs to the caller."""

    def __init__(self) -> None:
        super().__init__("broker credential not found")


class NameTaken(Conflict):
    """The caller already has a resource of this kind with this name."""

    code = "NAME_TAKEN"

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"a {kind} named {name!r} already exists", field="name")


class ResourceInUse(Conflict):
    """The resource is referenced by bots, so the change would leave them inconsistent."""

    code = "RESOURCE_IN_USE"


class StrategyDisabled(Conflict):
    """A bot cannot start while its strategy is disabled."""

    code = "STRATEGY_DISABLED"

    def __init__(self) -> None:
        super().__init__("the bot's strategy is disabled; enable it first", field="strategy_id")


class BotActive(Conflict):
    """The change needs the bot stopped first (it is running, paused or in error)."""

    code = "BOT_ACTIVE"


class BotArchived(Conflict):
    """The bot was deleted while it had orders: it is kept for its history, read-only."""

    code = "BOT_ARCHIVED"

    def __init__(self) -> None:
        super().__init__(
            "the bot is archived (deleted with a trading history): it cannot change", field="bot_id"
        )


class CredentialRejected(ValidationFailed):
    """The exchange refused the credential (wrong key, missing permissions)."""

    code = "CREDENTIAL_REJECTED"

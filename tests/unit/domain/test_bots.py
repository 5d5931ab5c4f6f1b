"""Bot status machine and risk settings."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from tekoa.domain.bots import (
    TRANSITIONS,
    BotAction,
    BotStatus,
    IllegalBotTransition,
    RiskSettings,
    TradingMode,
    allowed_actions,
    transition,
)
from tekoa.errors import Conflict

S, A = BotStatus, BotAction

EXPECTED = {
    (S.STOPPED, A.START): S.RUNNING,
    (S.RUNNING, A.PAUSE): S.PAUSED,
    (S.RUNNING, A.STOP): S.STOPPED,
    (S.RUNNING, A.FAIL): S.ERROR,
    (S.PAUSED, A.START): S.RUNNING,
    (S.PAUSED, A.STOP): S.STOPPED,
    (S.PAUSED, A.FAIL): S.ERROR,
    (S.ERROR, A.START): S.RUNNING,
    (S.ERROR, A.STOP): S.STOPPED,
}


@pytest.mark.parametrize("status", list(BotStatus))
@pytest.mark.parametrize("action", list(BotAction))
def test_every_status_action_pair_follows_the_table(status: BotStatus, action: BotAction) -> None:
    if (status, action) in EXPECTED:
        assert transition(status, action) is EXPECTED[(status, action)]
    else:
        with pytest.raises(IllegalBotTransition):
            transition(status, action)


def test_table_is_exactly_the_documented_one() -> None:
    assert TRANSITIONS == EXPECTED


def test_pausing_a_stopped_bot_is_a_conflict_naming_the_allowed_actions() -> None:
    with pytest.raises(Conflict) as excinfo:
        transition(BotStatus.STOPPED, BotAction.PAUSE)
    error = excinfo.value
    assert isinstance(error, IllegalBotTransition)
    assert error.status == 409
    assert error.code == "ILLEGAL_BOT_TRANSITION"
    assert error.message == "cannot pause a bot that is stopped (allowed: start)"
    assert error.current is BotStatus.STOPPED
    assert error.action is BotAction.PAUSE


def test_allowed_actions() -> None:
    assert allowed_actions(BotStatus.RUNNING) == {A.PAUSE, A.STOP, A.FAIL}
    assert allowed_actions(BotStatus.STOPPED) == {A.START}


def test_trading_modes() -> None:
    assert [mode.value for mode in TradingMode] == ["paper", "live"]


def test_risk_defaults_are_valid_and_conservative() -> None:
    settings = RiskSettings()
    assert settings.risk_per_trade_pct == Decimal(2)
    assert settings.max_position_notional == Decimal(1000)


def test_risk_settings_round_trip_through_json() -> None:
    settings = RiskSettings.model_validate({"risk_per_trade_pct": "0.5", "max_position_notional": "5000.50"})
    dumped = settings.model_dump(mode="json")
    assert dumped == {"risk_per_trade_pct": "0.5", "max_position_notional": "5000.50"}
    assert RiskSettings.model_validate(dumped) == settings


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"max_position_notional": "-1"}, ("max_position_notional",)),
        ({"risk_per_trade_pct": 0}, ("risk_per_trade_pct",)),
        ({"risk_per_trade_pct": 11}, ("risk_per_trade_pct",)),
        ({"daily_loss_limit": {"type": "pct", "pct": 5}}, ("daily_loss_limit",)),
        ({"leverage": 10}, ("leverage",)),
    ],
)
def test_nonsense_risk_settings_are_rejected_at_the_field(
    data: dict[str, object], loc: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        RiskSettings.model_validate(data)
    assert [error["loc"] for error in excinfo.value.errors()] == [loc]


def test_risk_settings_are_immutable() -> None:
    with pytest.raises(ValidationError):
        RiskSettings().max_position_notional = Decimal(5)  # type: ignore[misc]

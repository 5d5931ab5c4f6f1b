"""Bots: create, change, delete, and the lifecycle (start, pause, stop, stop-all).

Rules enforced here, each inside the one transaction of the change:

* A bot's timeframe is its strategy's primary timeframe (omit it to take that one).
* `paper` is the default mode. `live` needs a *verified* broker credential of the same
  exchange owned by the caller, a real exchange (not `simulated`), and `confirm_live: true`
  in the same request; otherwise 422 naming the field.
* Market, strategy, mode and credential change only while the bot is stopped (409 BOT_ACTIVE);
  name and risk settings may change at any time.
* Status changes follow `tekoa.domain.bots.transition` under a row lock (`FOR UPDATE`), and
  each one is appended to `bot_status_changes`, reported in the activity feed and, once
  committed, announced on the bus (`bot.status_changed`: live updates, notifications).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tekoa.aws.events import BusEvent, EventPublisher
from tekoa.db import activity as activity_rows
from tekoa.db import bots as rows
from tekoa.db import credentials as credential_rows
from tekoa.db import evaluations as evaluation_rows
from tekoa.db import strategies as strategy_rows
from tekoa.db.connection import BeforeCommit, Database, tenant_transaction
from tekoa.domain.bots import BotAction, BotStatus, RiskSettings, TradingMode, transition
from tekoa.domain.exchanges import SIMULATED_EXCHANGE, ExchangeId
from tekoa.domain.resources import (
    ActivityLevel,
    Bot,
    BotActive,
    BotArchived,
    BotNotFound,
    BotStatusChange,
    Strategy,
    StrategyDisabled,
)
from tekoa.domain.symbols import Symbol
from tekoa.domain.text import Name
from tekoa.domain.timeframes import Timeframe
from tekoa.errors import TekoaError, ValidationFailed
from tekoa.names import EventType
from tekoa.observability import logger
from tekoa.settings import get_settings
from tekoa.strategies.models import ensure_tradable_on, strategy_timeframe

VersionCheck = Callable[[int], None]
"""Called with the stored version before a change; raises to refuse it (412/428)."""

CONFIRM_LIVE_DESCRIPTION = (
    "Must be true to create a live bot or to switch a bot to live (or change a live bot's "
    "exchange, symbol or credential): you confirm that the bot trades real money."
)
_STRUCTURAL = ("strategy_id", "exchange", "symbol", "timeframe", "mode", "credential_id")
"""Settings that may change only while a bot is stopped."""
_STOPPABLE = (BotStatus.RUNNING, BotStatus.PAUSED, BotStatus.ERROR)
_ACTIVITY_LEVEL = {
    BotAction.START: ActivityLevel.SUCCESS,
    BotAction.PAUSE: ActivityLevel.WARNING,
    BotAction.STOP: ActivityLevel.INFO,
    BotAction.FAIL: ActivityLevel.ERROR,
}
_PAST_TENSE = {
    BotAction.START: "started",
    BotAction.PAUSE: "paused",
    BotAction.STOP: "stopped",
    BotAction.FAIL: "failed",
}


class BotCreate(BaseModel):
    """A new bot; it starts stopped."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Unique among your bots (case-insensitive).")
    strategy_id: UUID
    exchange: ExchangeId
    symbol: Symbol
    timeframe: Timeframe | None = Field(
        None, description="Defaults to the strategy's timeframe; if given it must equal it."
    )
    mode: TradingMode = TradingMode.PAPER
    credential_id: UUID | None = Field(None, description="Your broker credential; required for live mode.")
    confirm_live: bool = Field(False, description=CONFIRM_LIVE_DESCRIPTION)
    risk: RiskSettings = Field(default_factory=RiskSettings)


class BotUpdate(BaseModel):
    """Fields to change; omitted fields keep their value (`credential_id: null` removes it)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    strategy_id: UUID | None = None
    exchange: ExchangeId | None = None
    symbol: Symbol | None = None
    timeframe: Timeframe | None = None
    mode: TradingMode | None = None
    credential_id: UUID | None = None
    confirm_live: bool = Field(False, description=CONFIRM_LIVE_DESCRIPTION)
    risk: RiskSettings | None = None
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="The version you are changing.")


class _Plan(BaseModel):
    """A bot's settings after a create or update, before they are checked."""

    name: str
    strategy_id: UUID
    credential_id: UUID | None
    exchange: str
    symbol: str
    timeframe: Timeframe | None
    mode: TradingMode
    risk: RiskSettings


def create_bot(
    database: Database, user_id: UUID, request: BotCreate, *, before_commit: BeforeCommit[Bot] | None = None
) -> Bot:
    """Store a new, stopped bot after checking its strategy, market and mode."""
    plan = _Plan(**request.model_dump(exclude={"confirm_live"}))
    with database.connection() as conn, tenant_transaction(conn, user_id):
        timeframe = _check_plan(
            conn, user_id, plan, confirm_needed=plan.mode is TradingMode.LIVE, confirmed=request.confirm_live
        )
        bot = rows.insert_bot(
            conn,
            user_id,
            name=plan.name,
            strategy_id=plan.strategy_id,
            credential_id=plan.credential_id,
            exchange=plan.exchange,
            symbol=plan.symbol,
            timeframe=timeframe,
            mode=plan.mode,
            risk=plan.risk,
        )
        activity_rows.insert_activity(
            conn,
            user_id,
            level=ActivityLevel.INFO,
            message=f"Bot {bot.name} created ({bot.mode}, {bot.exchange} {bot.symbol} {bot.timeframe})",
            bot_id=bot.id,
        )
        if before_commit is not None:
            before_commit(conn, bot)
    return bot


def list_bots(
    database: Database,
    user_id: UUID,
    *,
    status: BotStatus | None = None,
    strategy_id: UUID | None = None,
    after: tuple[datetime, UUID] | None = None,
    limit: int,
    archived: bool = False,
) -> list[Bot]:
    """The caller's bots (or the archived ones), newest first."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return rows.list_bots(
            conn, user_id, status=status, strategy_id=strategy_id, after=after, limit=limit, archived=archived
        )


def get_bot(database: Database, user_id: UUID, bot_id: UUID) -> Bot:
    """One of the caller's bots; BotNotFound otherwise."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        bot = rows.get_bot(conn, user_id, bot_id)
    if bot is None:
        raise BotNotFound()
    return bot


def update_bot(
    database: Database, user_id: UUID, bot_id: UUID, changes: BotUpdate, check_version: VersionCheck
) -> Bot:
    """Apply `changes` after `check_version` accepted the stored version (see module rules)."""
    given = changes.model_fields_set
    with database.connection() as conn, tenant_transaction(conn, user_id):
        current = rows.get_bot(conn, user_id, bot_id, for_update=True)
        if current is None:
            raise BotNotFound()
        _refuse_archived(current)
        check_version(current.version)
        values: dict[str, Any] = current.model_dump(include=set(_Plan.model_fields))
        values.update({name: getattr(changes, name) for name in given & set(_Plan.model_fields)})
        for required in ("name", "strategy_id", "exchange", "symbol", "mode", "risk"):
            if values[required] is None:
                raise ValidationFailed(f"{required} cannot be null", field=required)
        if "strategy_id" in given and "timeframe" not in given:
            values["timeframe"] = None  # take the new strategy's timeframe
        plan = _Plan(**values)
        reconfirm = plan.mode is TradingMode.LIVE and (
            current.mode is not TradingMode.LIVE
            or any(
                getattr(plan, name) != getattr(current, name)
                for name in ("exchange", "symbol", "credential_id")
            )
        )
        timeframe = _check_plan(conn, user_id, plan, confirm_needed=reconfirm, confirmed=changes.confirm_live)
        plan = plan.model_copy(update={"timeframe": timeframe})
        changed = [name for name in _STRUCTURAL if getattr(plan, name) != getattr(current, name)]
        if changed and current.status is not BotStatus.STOPPED:
            raise BotActive(
                f"the bot is {current.status}; stop it before changing {', '.join(changed)}", field=changed[0]
            )
        return rows.update_bot(
            conn,
            user_id,
            bot_id,
            name=plan.name,
            strategy_id=plan.strategy_id,
            credential_id=plan.credential_id,
            exchange=plan.exchange,
            symbol=plan.symbol,
            timeframe=timeframe,
            mode=plan.mode,
            risk=plan.risk,
            live_confirmed_at=current.live_confirmed_at if plan.mode is TradingMode.LIVE else None,
            confirm_live_now=reconfirm,
        )


def delete_bot(database: Database, user_id: UUID, bot_id: UUID) -> None:
    """Delete a stopped (or failed) bot and its status history; 409 while it runs or is paused.

    A bot that has placed orders is archived instead: its orders, fills and the ledger refer to
    it, and a trading history cannot lose its author. It disappears from the list (unless asked
    for with `archived=true`), can be read but not changed or started, and its name is free.
    """
    with database.connection() as conn, tenant_transaction(conn, user_id):
        bot = rows.get_bot(conn, user_id, bot_id, for_update=True)
        if bot is None or bot.archived_at is not None:
            raise BotNotFound()
        if bot.status in (BotStatus.RUNNING, BotStatus.PAUSED):
            raise BotActive(f"the bot is {bot.status}; stop it before deleting it", field="status")
        if rows.has_orders(conn, user_id, bot_id):
            rows.archive_bot(conn, user_id, bot_id)
            message, data = (
                f"Bot {bot.name} archived (it has orders)",
                {"bot_id": str(bot.id), "archived": True},
            )
        else:
            rows.delete_bot(conn, user_id, bot_id)
            message, data = f"Bot {bot.name} deleted", {"bot_id": str(bot.id)}
        activity_rows.insert_activity(conn, user_id, level=ActivityLevel.INFO, message=message, data=data)


def change_status(
    database: Database,
    user_id: UUID,
    bot_id: UUID,
    action: BotAction,
    *,
    reason: str | None = None,
    publisher: EventPublisher | None = None,
) -> Bot:
    """Start, pause or stop one bot (409 for a move the status machine forbids).

    Starting needs the strategy enabled and, for a live bot, its credential still verified.
    """
    with database.connection() as conn, tenant_transaction(conn, user_id):
        bot = rows.get_bot(conn, user_id, bot_id, for_update=True)
        if bot is None:
            raise BotNotFound()
        _refuse_archived(bot)
        target = transition(bot.status, action)
        if action is BotAction.START:
            _check_startable(conn, user_id, bot)
            evaluation_rows.start_runtime(conn, user_id, bot.id)
        updated, event = _apply_status(conn, user_id, bot, action, target, reason=reason)
    announce(publisher, [event])
    return updated


def fail_bot(conn: Any, user_id: UUID, bot_id: UUID, reason: str) -> BusEvent | None:
    """The system's `fail` transition (the evaluator gave up on the bot), in the caller's
    transaction: the `bot.status_changed` event to publish once it commits, or None when the
    bot is no longer running or paused."""
    bot = rows.get_bot(conn, user_id, bot_id, for_update=True)
    if bot is None or bot.status not in (BotStatus.RUNNING, BotStatus.PAUSED):
        return None
    _, event = _apply_status(
        conn, user_id, bot, BotAction.FAIL, transition(bot.status, BotAction.FAIL), reason=reason
    )
    return event


def stop_all(
    database: Database, user_id: UUID, *, reason: str | None = None, publisher: EventPublisher | None = None
) -> list[Bot]:
    """Stop every bot of the caller that is running, paused or in error, in one transaction."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        changes = [
            _apply_status(
                conn,
                user_id,
                bot,
                BotAction.STOP,
                transition(bot.status, BotAction.STOP),
                reason=reason or "stop-all",
            )
            for bot in rows.lock_bots_in_status(conn, user_id, _STOPPABLE)
        ]
    announce(publisher, [event for _, event in changes])
    return [bot for bot, _ in changes]


def status_event(
    user_id: UUID, bot: Bot, target: BotStatus, action: BotAction, reason: str | None, at: datetime
) -> BusEvent:
    """`bot.status_changed`: which bot moved from what to what, why, and when (ms)."""
    return BusEvent(
        EventType.BOT_STATUS_CHANGED,
        {
            "user_id": str(user_id),
            "bot_id": str(bot.id),
            "name": bot.name,
            "exchange": bot.exchange,
            "symbol": bot.symbol,
            "from": bot.status.value,
            "to": target.value,
            "action": action.value,
            "reason": reason,
            "at": int(at.timestamp() * 1000),
        },
    )


def announce(publisher: EventPublisher | None, events: list[BusEvent]) -> None:
    """Publish committed status changes. The change stands if the bus refuses: it is in the
    history and the activity feed; only the live update and the notification are lost."""
    if publisher is None or not events:
        return
    try:
        publisher.publish(events)
    except Exception:
        logger.exception("announcing bot status changes failed", extra={"events": len(events)})


def status_history(
    database: Database, user_id: UUID, bot_id: UUID, *, before_id: int | None, limit: int
) -> list[BotStatusChange]:
    """A bot's status changes, newest first; BotNotFound when it is not the caller's."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        if rows.get_bot(conn, user_id, bot_id) is None:
            raise BotNotFound()
        return rows.list_status_changes(conn, user_id, bot_id, before_id=before_id, limit=limit)


def _refuse_archived(bot: Bot) -> None:
    if bot.archived_at is not None:
        raise BotArchived()


def _apply_status(
    conn: Any, user_id: UUID, bot: Bot, action: BotAction, target: BotStatus, *, reason: str | None
) -> tuple[Bot, BusEvent]:
    updated = rows.set_bot_status(conn, user_id, bot.id, target)
    rows.insert_status_change(
        conn,
        user_id,
        bot_id=bot.id,
        from_status=bot.status,
        to_status=target,
        action=action,
        reason=reason,
        actor="system" if action is BotAction.FAIL else "user",
    )
    activity_rows.insert_activity(
        conn,
        user_id,
        level=_ACTIVITY_LEVEL[action],
        message=f"Bot {bot.name} {_PAST_TENSE[action]}" + (f": {reason}" if reason else ""),
        bot_id=bot.id,
        data={"from": bot.status.value, "to": target.value, "action": action.value},
    )
    return updated, status_event(user_id, bot, target, action, reason, updated.updated_at)


def _check_startable(conn: Any, user_id: UUID, bot: Bot) -> None:
    # Lock the strategy so a concurrent disable cannot slip between this check and the commit.
    strategy = strategy_rows.get_strategy(conn, user_id, bot.strategy_id, for_update=True)
    if strategy is None or not strategy.enabled:
        raise StrategyDisabled()
    _check_symbol(conn, bot.exchange, bot.symbol)
    if bot.mode is TradingMode.LIVE:
        credential = (
            credential_rows.get_credential(conn, user_id, bot.credential_id) if bot.credential_id else None
        )
        if credential is None or not credential.verified:
            raise BotActive("a live bot needs a verified broker credential to start", field="credential_id")


def _check_plan(conn: Any, user_id: UUID, plan: _Plan, *, confirm_needed: bool, confirmed: bool) -> Timeframe:
    """Validate a bot's settings against the caller's strategy and credential; its timeframe."""
    # Locked, so the strategy and credential cannot be deleted before the bot row commits.
    strategy = strategy_rows.get_strategy(conn, user_id, plan.strategy_id, for_update=True)
    if strategy is None:
        raise ValidationFailed("no strategy with this id", field="strategy_id")
    timeframe = _timeframe_for(strategy, plan.timeframe)
    try:
        ensure_tradable_on(strategy.definition, plan.symbol)
    except TekoaError as exc:
        raise ValidationFailed(exc.message, field="symbol") from None
    _check_symbol(conn, plan.exchange, plan.symbol)
    credential = None
    if plan.credential_id is not None:
        credential = credential_rows.get_credential(conn, user_id, plan.credential_id, for_share=True)
        if credential is None:
            raise ValidationFailed("no broker credential with this id", field="credential_id")
        if credential.exchange != plan.exchange:
            raise ValidationFailed(
                f"the credential is for {credential.exchange}, the bot trades on {plan.exchange}",
                field="credential_id",
            )
    if plan.mode is TradingMode.LIVE:
        if plan.exchange == SIMULATED_EXCHANGE:
            raise ValidationFailed(
                "the simulated exchange cannot trade live; use paper mode", field="exchange"
            )
        if credential is None:
            raise ValidationFailed("live mode needs a broker credential", field="credential_id")
        if not credential.verified:
            raise ValidationFailed(
                "live mode needs a verified broker credential (POST /v1/broker-credentials/{id}/verify)",
                field="credential_id",
            )
        if confirm_needed and not confirmed:
            raise ValidationFailed(
                "live mode trades real money: send confirm_live: true to confirm", field="confirm_live"
            )
    return timeframe


def _timeframe_for(strategy: Strategy, requested: Timeframe | None) -> Timeframe:
    expected = strategy_timeframe(strategy.definition)
    if requested is not None and requested is not expected:
        raise ValidationFailed(
            f"the strategy runs on {expected} candles; the bot's timeframe must be {expected}",
            field="timeframe",
        )
    return expected


def _check_symbol(conn: Any, exchange: str, symbol: str) -> None:
    """422 on `symbol` when Tekoa knows the exchange's markets and this is not one of them."""
    listed = evaluation_rows.listed_symbols(conn, exchange)
    if exchange == SIMULATED_EXCHANGE:
        listed |= set(get_settings().market_symbol_list)
    if listed and symbol not in listed:
        raise ValidationFailed(
            f"unknown symbol: {exchange} does not list {symbol} (it lists {', '.join(sorted(listed)[:10])})",
            field="symbol",
        )

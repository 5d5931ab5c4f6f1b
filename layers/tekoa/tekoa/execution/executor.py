"""The executor: each order placed at most once, each fill recorded exactly once.

`Executor.handle` takes one order-queue message (`tekoa.execution.messages`). Delivery is at
least once, possibly concurrent, and a process may die at any line; these rules make that safe:

* **Claim first.** A bot's intent becomes an order row (status `new`, its funds held) in one
  transaction before anything leaves the platform. The row's client order id is unique per
  account, so a duplicate delivery finds the order instead of making another, and resumes it
  only if it is unfinished.
* **Paper** orders are claimed, checked, priced and filled in that same transaction: the paper
  broker has no side effects, so a crash leaves nothing and the retry does it all again.
* **Live** orders are marked `submitted` and committed *before* the exchange is called, under a
  session advisory lock on the order (one worker at a time; released if the process dies). A
  worker that finds an order `submitted` looks it up by client id and never creates it again;
  an order the exchange never heard of is declared lost only after repeated look-ups.
* Every booking locks the account row first, then the position, then the order, so concurrent
  work on one account is serialised and cannot deadlock; serialisation failures and deadlocks
  (e.g. with the API's reset) are retried.
* Trading states are read at execution time and fail closed (a missing platform row is halted).

Events go to the outbox in the booking's transaction and are published after it commits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, TypeVar
from uuid import UUID

import psycopg

from tekoa.aws.events import BusEvent, EventPublisher
from tekoa.db import accounts as account_rows
from tekoa.db import bots as bot_rows
from tekoa.db import ledger as ledger_rows
from tekoa.db import markets as market_rows
from tekoa.db import orders as order_rows
from tekoa.db import outbox
from tekoa.db import positions as position_rows
from tekoa.db.connection import Database, service_transaction, tenant_transaction
from tekoa.domain.bots import TradingMode
from tekoa.domain.execution import (
    Account,
    InsufficientBalance,
    Order,
    OrderAction,
    OrderRefused,
    OrderStatus,
    RejectCode,
    TradingState,
)
from tekoa.domain.orders import OrderSide, OrderType, ProtectionSpec
from tekoa.domain.trading import PositionSide, ProtectionState
from tekoa.engine.protection import arm, to_state
from tekoa.exchanges.rules import CheckedOrder, MarketRules
from tekoa.execution import booking
from tekoa.execution.admission import CostModel, OrderAsk, admit, fresh_price, normalise
from tekoa.execution.brokers import (
    ExchangeOrder,
    ExchangeRejected,
    ExchangeStatus,
    LiveBroker,
    PaperBroker,
)
from tekoa.execution.messages import (
    CancelMessage,
    ExecuteMessage,
    OrderMessage,
    PlaceMessage,
    TriggerMessage,
)
from tekoa.observability import logger

T = TypeVar("T")
_RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)


class Outcome(StrEnum):
    """What handling a message did."""

    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    OPEN = "open"
    REJECTED = "rejected"
    CANCELED = "canceled"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"
    """The order was already handled: nothing changed."""
    IGNORED = "ignored"
    """Nothing to do (a trigger for an order that is no longer resting, a cancel of a final order)."""


_OUTCOME_OF_STATUS = {
    OrderStatus.FILLED: Outcome.FILLED,
    OrderStatus.PARTIALLY_FILLED: Outcome.PARTIALLY_FILLED,
    OrderStatus.OPEN: Outcome.OPEN,
    OrderStatus.REJECTED: Outcome.REJECTED,
    OrderStatus.CANCELED: Outcome.CANCELED,
    OrderStatus.EXPIRED: Outcome.EXPIRED,
}


class MessageNotApplicable(Exception):
    """A well-formed message that can never succeed (unknown account or order): not retried
    usefully, so it goes to the dead-letter queue with this reason."""


class _NeedsPrice(Exception):
    """A live order needs a reference price the database does not have."""

    def __init__(self, account: Account) -> None:
        super().__init__("no recent price")
        self.account = account


class OrderPending(Exception):
    """The order's fate is not known yet (in flight elsewhere, or not found on the exchange
    yet): retry the message later."""


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    order_id: UUID | None
    status: OrderStatus | None = None
    reason: str | None = None
    events: tuple[tuple[int, BusEvent], ...] = ()


class BrokerProvider(Protocol):
    """Hands out the live broker of an account (decrypting its credential, audited)."""

    def live(self, user_id: UUID, account: Account) -> LiveBroker: ...


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    costs: CostModel = field(default_factory=CostModel)
    lost_after_lookups: int = 3
    """Consecutive "not found" answers before a submitted order is declared lost..."""
    lost_min_age_s: float = 60.0
    """...and only once it was submitted at least this long ago."""
    transaction_attempts: int = 5


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Executor:
    """Handles order-queue messages; see the module docstring."""

    def __init__(
        self,
        database: Database,
        brokers: BrokerProvider,
        *,
        publisher: EventPublisher | None = None,
        config: ExecutorConfig | None = None,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self.database = database
        self.brokers = brokers
        self.publisher = publisher
        self.config = config or ExecutorConfig()
        self.paper = PaperBroker(self.config.costs)
        self.clock_ms = clock_ms

    # -- entry points ----------------------------------------------------------------------

    def handle(self, message: OrderMessage) -> Result:
        """Carry out one message; raise to have it retried (or dead-lettered)."""
        if isinstance(message, PlaceMessage):
            return self._place(message)
        if isinstance(message, ExecuteMessage):
            return self._execute(message)
        if isinstance(message, CancelMessage):
            return self._cancel(message)
        return self._trigger(message)

    def publish(self, events: tuple[tuple[int, BusEvent], ...] | list[tuple[int, BusEvent]]) -> None:
        """Put committed outbox events on the bus and forget them; failures stay for the sweeper."""
        if not events or self.publisher is None:
            return
        try:
            self.publisher.publish([event for _, event in events])
        except Exception:
            logger.exception(
                "publishing order events failed; the outbox sweep retries", extra={"events": len(events)}
            )
            return
        with self.database.connection() as conn, service_transaction(conn):
            outbox.delete_events(conn, [event_id for event_id, _ in events])

    # -- place / execute -------------------------------------------------------------------

    def _place(self, message: PlaceMessage) -> Result:
        intent = message.intent

        def claim(conn: psycopg.Connection[Any]) -> tuple[Result | None, Account, Order]:
            account = self._lock_account(conn, message.user_id, message.account_id)
            bot = bot_rows.get_bot(conn, message.user_id, message.bot_id)
            # A paper bot's intent must never reach a live account (nor another exchange's).
            if bot is None or (bot.exchange, bot.mode) != (account.exchange, account.mode):
                raise MessageNotApplicable(f"bot {message.bot_id} does not trade on account {account.id}")
            if bot.archived_at is not None:
                raise MessageNotApplicable(f"bot {message.bot_id} is archived")
            if account.exchange != message.exchange or bot.symbol != message.symbol:
                raise MessageNotApplicable(f"bot {bot.id} trades {bot.exchange} {bot.symbol}")
            rules = market_rows.get_rules(conn, account.exchange, message.symbol)
            price = self._fresh(market_rows.last_trade(conn, account.exchange, message.symbol)) or price_hint
            if price is None and account.mode is TradingMode.LIVE and intent.type is not OrderType.LIMIT:
                raise _NeedsPrice(account)
            ask = OrderAsk(
                side=intent.side,
                type=intent.type,
                quantity=intent.quantity,
                limit_price=intent.price if intent.type is OrderType.LIMIT else None,
                stop_price=intent.price if intent.type is OrderType.STOP else None,
                reduce_only=intent.reduce_only,
            )
            refusal: OrderRefused | None = None
            try:
                checked = normalise(rules, ask, reference_price=price, strict=False)
                quantity, limit, stop = checked.quantity, checked.limit_price, checked.stop_price
            except OrderRefused as exc:
                refusal, quantity, limit, stop = exc, ask.quantity, ask.limit_price, ask.stop_price
            order, claimed = order_rows.claim_order(
                conn,
                message.user_id,
                order_rows.NewOrder(
                    account_id=account.id,
                    bot_id=message.bot_id,
                    client_order_id=intent.client_order_id,
                    exchange=account.exchange,
                    symbol=message.symbol,
                    side=intent.side,
                    type=intent.type,
                    quantity=quantity,
                    limit_price=limit,
                    stop_price=stop,
                    reduce_only=intent.reduce_only,
                    intent=intent.model_dump(mode="json"),
                ),
            )
            if not claimed:
                return (
                    self._resume_or_duplicate(conn, message.user_id, account, order, rules, price),
                    account,
                    order,
                )
            order_rows.insert_events(
                conn,
                message.user_id,
                [order_rows.NewEvent(order.id, "created", None, OrderStatus.NEW, {"source": "bot"})],
            )
            if refusal is not None:
                return self._reject(conn, message.user_id, account, order, refusal), account, order
            assert rules is not None
            try:
                order = self._admit(conn, message.user_id, account, order, rules, price)
            except OrderRefused as exc:
                return self._reject(conn, message.user_id, account, order, exc), account, order
            if account.mode is TradingMode.PAPER:
                return self._paper_arrival(conn, message.user_id, account, order, rules), account, order
            return None, account, order

        price_hint: Decimal | None = None
        try:
            result, account, order = self._transaction(message.user_id, claim)
        except _NeedsPrice as needs:
            # A live market order on a market the stream does not follow: ask the exchange
            # (outside any transaction) what it trades at, then claim with that price.
            price_hint = self.brokers.live(message.user_id, needs.account).last_price(message.symbol)
            result, account, order = self._transaction(message.user_id, claim)
        if result is not None:
            return result
        return self._submit_live(message.user_id, account.id, order.id)

    def _execute(self, message: ExecuteMessage) -> Result:
        def load(conn: psycopg.Connection[Any]) -> tuple[Result | None, Account, Order]:
            account = self._lock_account(conn, message.user_id, message.account_id)
            order = order_rows.get_order(conn, message.user_id, message.order_id, for_update=True)
            if (
                order is None
                or order.client_order_id != message.client_order_id
                or order.account_id != account.id
            ):
                raise MessageNotApplicable(
                    f"no order {message.order_id} ({message.client_order_id}) on this account"
                )
            rules = market_rows.get_rules(conn, account.exchange, order.symbol)
            last = market_rows.last_trade(conn, account.exchange, order.symbol)
            price = self._fresh(last)
            return (
                self._resume_or_duplicate(conn, message.user_id, account, order, rules, price),
                account,
                order,
            )

        result, account, order = self._transaction(message.user_id, load)
        if result is not None:
            return result
        return self._submit_live(message.user_id, account.id, order.id)

    def _resume_or_duplicate(
        self,
        conn: psycopg.Connection[Any],
        user_id: UUID,
        account: Account,
        order: Order,
        rules: MarketRules | None,
        price: Decimal | None,
    ) -> Result | None:
        """An order found under its client id: carry a `new` one on, leave anything else be.

        None means "a live order to send or look up" (done outside the transaction).
        """
        if order.status is not OrderStatus.NEW:
            if account.mode is TradingMode.LIVE and order.status is OrderStatus.SUBMITTED:
                return None
            return Result(Outcome.DUPLICATE, order.id, order.status)
        refusal = self._state_refusal(conn, account, order)
        if refusal is not None:
            return self._reject(conn, user_id, account, order, refusal)
        if rules is None:
            return self._reject(
                conn, user_id, account, order, OrderRefused(RejectCode.INVALID_ORDER, "unknown symbol")
            )
        if account.mode is TradingMode.PAPER:
            return self._paper_arrival(conn, user_id, account, order, rules)
        return None

    def _admit(
        self,
        conn: psycopg.Connection[Any],
        user_id: UUID,
        account: Account,
        order: Order,
        rules: MarketRules,
        price: Decimal | None,
    ) -> Order:
        """Check a freshly claimed order and hold its funds (OrderRefused says why not)."""
        platform_state, _ = account_rows.platform_trading_state(conn)
        position = position_rows.open_position(conn, user_id, account.id, order.bot_id, order.symbol)
        pending = sum(
            (
                o.remaining
                for o in order_rows.working_orders(
                    conn, user_id, account.id, symbol=order.symbol, bot_id=order.bot_id, bot_filter=True
                )
                if o.side is OrderSide.SELL and o.id != order.id
            ),
            Decimal(0),
        )
        paid_in = rules.base if order.side is OrderSide.SELL else rules.quote
        admission = admit(
            account=account,
            platform_state=platform_state,
            rules=rules,
            side=order.side,
            type=order.type,
            order=_checked(order),
            reduce_only=order.reduce_only,
            reference_price=price,
            position_quantity=Decimal(0) if position is None else position.quantity,
            pending_sells=pending,
            available=ledger_rows.available(conn, user_id, account.id, paid_in),
            costs=self.config.costs,
        )
        return booking.hold(conn, user_id, account, order, admission.asset, admission.amount)

    def _state_refusal(
        self, conn: psycopg.Connection[Any], account: Account, order: Order
    ) -> OrderRefused | None:
        """The trading states at execution time (fail closed), for an order admitted earlier."""
        platform_state, platform_reason = account_rows.platform_trading_state(conn)
        for state, reason in (
            (platform_state, platform_reason),
            (account.trading_state, account.trading_state_reason),
        ):
            if state is TradingState.HALTED:
                return OrderRefused(
                    RejectCode.TRADING_HALTED, "trading is halted" + (f": {reason}" if reason else "")
                )
            if state is TradingState.REDUCING and order.side is OrderSide.BUY:
                return OrderRefused(
                    RejectCode.REDUCE_ONLY, "the account only reduces positions now; buys are refused"
                )
        if account.mode is TradingMode.LIVE and account.credential_id is None:
            return OrderRefused(RejectCode.NO_CREDENTIAL, "the live account has no broker credential")
        return None

    def _paper_arrival(
        self, conn: psycopg.Connection[Any], user_id: UUID, account: Account, order: Order, rules: MarketRules
    ) -> Result:
        """A paper order meets the market: fill it at the last trade, or let it rest."""
        last = market_rows.last_trade(conn, account.exchange, order.symbol)
        price = self._fresh(last)
        if price is None or last is None:
            if order.type is OrderType.MARKET:
                age = (
                    "none recorded"
                    if last is None
                    else f"last trade {self.clock_ms() - last.trade_time} ms ago"
                )
                return self._reject(
                    conn,
                    user_id,
                    account,
                    order,
                    OrderRefused(RejectCode.STALE_PRICE, f"no fresh price for {order.symbol} ({age})"),
                )
            return self._booked_result(booking.move(conn, user_id, account, order, OrderAction.ACCEPT))
        fill = self.paper.on_arrival(order, rules, price, last.trade_time)
        if fill is None:
            return self._booked_result(
                booking.move(conn, user_id, account, order, OrderAction.ACCEPT, detail={"price": str(price)})
            )
        return self._book_fill(conn, user_id, account, order, rules, fill)

    def _book_fill(
        self,
        conn: psycopg.Connection[Any],
        user_id: UUID,
        account: Account,
        order: Order,
        rules: MarketRules,
        fill: order_rows.NewFill,
    ) -> Result:
        try:
            with conn.transaction():  # a savepoint: a refused fill leaves the order as it was
                booked = booking.book_fill(
                    conn, user_id, account, order, rules, fill, protection=_protection(order, fill)
                )
        except InsufficientBalance as exc:
            action = OrderAction.REJECT if order.status is OrderStatus.NEW else OrderAction.EXPIRE
            return self._booked_result(
                booking.finish(
                    conn,
                    user_id,
                    account,
                    order,
                    action,
                    reason=exc.message,
                    reject_code=RejectCode.INSUFFICIENT_BALANCE,
                )
            )
        if booked.duplicate:
            return Result(Outcome.DUPLICATE, order.id, order.status)
        return self._booked_result(booked)

    def _reject(
        self,
        conn: psycopg.Connection[Any],
        user_id: UUID,
        account: Account,
        order: Order,
        refusal: OrderRefused,
    ) -> Result:
        logger.info(
            "order rejected",
            extra={"order_id": str(order.id), "code": refusal.reject_code.value, "reason": refusal.message},
        )
        return self._booked_result(
            booking.finish(
                conn,
                user_id,
                account,
                order,
                OrderAction.REJECT,
                reason=refusal.message,
                reject_code=refusal.reject_code,
                detail={"field": refusal.field} if refusal.field else None,
            )
        )

    # -- live ------------------------------------------------------------------------------

    def _submit_live(self, user_id: UUID, account_id: UUID, order_id: UUID) -> Result:
        """Send (or find) a live order under its advisory lock; see the module docstring."""
        with self.database.connection() as conn, _order_lock(conn, order_id):

            def prepare(c: psycopg.Connection[Any]) -> tuple[Result | None, Account, Order, bool]:
                account = self._lock_account(c, user_id, account_id)
                order = order_rows.get_order(c, user_id, order_id, for_update=True)
                if order is None:
                    raise MessageNotApplicable(f"no order {order_id}")
                if order.status is OrderStatus.SUBMITTED:
                    return None, account, order, False
                if order.status is not OrderStatus.NEW:
                    return Result(Outcome.DUPLICATE, order.id, order.status), account, order, False
                refusal = self._state_refusal(c, account, order)
                if refusal is not None:
                    return self._reject(c, user_id, account, order, refusal), account, order, False
                # Committed before the exchange is called: a crash from here on leaves an
                # order that the next attempt looks up instead of sending again.
                submitted = booking.move(c, user_id, account, order, OrderAction.SUBMIT)
                return Result(Outcome.OPEN, order.id, events=submitted.events), account, submitted.order, True

            prepared, account, order, send = self._transaction(user_id, prepare, conn=conn)
            if prepared is not None and not send:
                return prepared
            pending_events = prepared.events if prepared is not None else ()
            self.publish(pending_events)
            broker = self.brokers.live(user_id, account)
            if send:
                try:
                    report: ExchangeOrder | None = broker.place(order)
                except ExchangeRejected as exc:
                    reason = exc.reason
                    return self._transaction(
                        user_id,
                        lambda c: self._exchange_rejected(c, user_id, account_id, order_id, reason),
                        conn=conn,
                    )
            else:
                report = broker.lookup(order)
            return self._record_report(conn, user_id, account_id, order_id, report)

    def follow_up(self, user_id: UUID, account_id: UUID, order_id: UUID) -> Result:
        """Ask the exchange about a working live order and book what changed (reconciliation).

        OrderPending when another worker holds the order, or the exchange does not know it yet.
        """
        with self.database.connection() as conn, _order_lock(conn, order_id):

            def load(c: psycopg.Connection[Any]) -> tuple[Account, Order]:
                account = self._lock_account(c, user_id, account_id)
                order = order_rows.get_order(c, user_id, order_id)
                if order is None:
                    raise MessageNotApplicable(f"no order {order_id}")
                return account, order

            account, order = self._transaction(user_id, load, conn=conn)
            if order.status.final or order.status is OrderStatus.NEW:
                return Result(Outcome.DUPLICATE, order.id, order.status)
            report = self.brokers.live(user_id, account).lookup(order)
            return self._record_report(conn, user_id, account_id, order_id, report)

    def _record_report(
        self,
        conn: psycopg.Connection[Any],
        user_id: UUID,
        account_id: UUID,
        order_id: UUID,
        report: ExchangeOrder | None,
    ) -> Result:
        """Book an exchange's answer about an order; a "not found" is counted, then retried."""
        if report is None:
            lost = self._transaction(
                user_id, lambda c: self._not_found(c, user_id, account_id, order_id), conn=conn
            )
            if lost is None:
                raise OrderPending(f"order {order_id} is not on the exchange (yet)")
            return lost
        found = report
        return self._transaction(
            user_id, lambda c: self._apply_report(c, user_id, account_id, order_id, found), conn=conn
        )

    def _exchange_rejected(
        self, conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID, order_id: UUID, reason: str
    ) -> Result:
        account = self._lock_account(conn, user_id, account_id)
        order = order_rows.get_order(conn, user_id, order_id, for_update=True)
        assert order is not None
        if order.status.final:
            return Result(Outcome.DUPLICATE, order.id, order.status)
        return self._booked_result(
            booking.finish(
                conn,
                user_id,
                account,
                order,
                OrderAction.REJECT,
                reason=reason,
                reject_code=RejectCode.EXCHANGE_REJECTED,
            )
        )

    def _not_found(
        self, conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID, order_id: UUID
    ) -> Result | None:
        """Count one "not found"; the order expires as lost after enough of them, else None."""
        account = self._lock_account(conn, user_id, account_id)
        order = order_rows.get_order(conn, user_id, order_id, for_update=True)
        assert order is not None
        if order.status.final:
            return Result(Outcome.DUPLICATE, order.id, order.status)
        count = order.not_found_count + 1
        age_s = (time.time() - order.submitted_at.timestamp()) if order.submitted_at else 0.0
        if count >= self.config.lost_after_lookups and age_s >= self.config.lost_min_age_s:
            return self._booked_result(
                booking.finish(
                    conn,
                    user_id,
                    account,
                    order,
                    OrderAction.EXPIRE,
                    reason=f"the exchange has no order with this client id after {count} look-ups",
                    reject_code=RejectCode.LOST,
                )
            )
        order_rows.save_order(conn, user_id, order.model_copy(update={"not_found_count": count}))
        order_rows.insert_events(
            conn,
            user_id,
            [order_rows.NewEvent(order.id, "not_found", order.status, order.status, {"lookups": count})],
        )
        return None

    def _apply_report(
        self,
        conn: psycopg.Connection[Any],
        user_id: UUID,
        account_id: UUID,
        order_id: UUID,
        report: ExchangeOrder,
    ) -> Result:
        """Book what the exchange says about the order: new fills once each, then its status."""
        account = self._lock_account(conn, user_id, account_id)
        order = order_rows.get_order(conn, user_id, order_id, for_update=True)
        assert order is not None
        rules = market_rows.get_rules(conn, account.exchange, order.symbol)
        if rules is None:
            raise OrderPending(f"no market rules for {order.symbol} yet")
        events: list[tuple[int, BusEvent]] = []
        changes: dict[str, Any] = {"not_found_count": 0}
        if order.exchange_order_id != report.exchange_order_id:
            changes["exchange_order_id"] = report.exchange_order_id
        order = order_rows.save_order(conn, user_id, order.model_copy(update=changes))
        for fill in _fills_to_book(order, report, rules):
            booked = booking.book_fill(
                conn,
                user_id,
                account,
                order,
                rules,
                fill,
                protection=_protection(order, fill),
                cover_shortfall=True,
            )
            order, events = booked.order, events + list(booked.events)
        if report.status is ExchangeStatus.OPEN and order.status is OrderStatus.SUBMITTED:
            booked = booking.move(conn, user_id, account, order, OrderAction.ACCEPT)
            order, events = booked.order, events + list(booked.events)
        elif (
            report.status in (ExchangeStatus.CANCELED, ExchangeStatus.EXPIRED, ExchangeStatus.REJECTED)
            and not order.status.final
        ):
            action = {
                ExchangeStatus.CANCELED: OrderAction.CANCEL,
                ExchangeStatus.EXPIRED: OrderAction.EXPIRE,
                ExchangeStatus.REJECTED: OrderAction.REJECT,
            }[report.status]
            if action is OrderAction.REJECT and order.status not in (OrderStatus.NEW, OrderStatus.SUBMITTED):
                action = OrderAction.CANCEL
            booked = booking.finish(
                conn,
                user_id,
                account,
                order,
                action,
                reason=f"{report.status.value} on the exchange",
                reject_code=RejectCode.EXCHANGE_REJECTED if action is OrderAction.REJECT else None,
            )
            order, events = booked.order, events + list(booked.events)
        return Result(
            _OUTCOME_OF_STATUS.get(order.status, Outcome.OPEN), order.id, order.status, events=tuple(events)
        )

    # -- cancel ----------------------------------------------------------------------------

    def _cancel(self, message: CancelMessage) -> Result:
        def local(conn: psycopg.Connection[Any]) -> tuple[Result | None, Account, Order | None]:
            account = self._lock_account(conn, message.user_id, message.account_id)
            order = order_rows.get_order_by_client_id(
                conn, message.user_id, account.id, message.target_client_order_id, for_update=True
            )
            if order is None or order.status.final:
                return (
                    Result(
                        Outcome.IGNORED,
                        None if order is None else order.id,
                        None if order is None else order.status,
                    ),
                    account,
                    order,
                )
            reason = message.reason or "canceled"
            if account.mode is TradingMode.PAPER or order.status is OrderStatus.NEW:
                return (
                    self._booked_result(
                        booking.finish(
                            conn, message.user_id, account, order, OrderAction.CANCEL, reason=reason
                        )
                    ),
                    account,
                    order,
                )
            return None, account, order

        result, account, order = self._transaction(message.user_id, local)
        if result is not None:
            return result
        assert order is not None
        with self.database.connection() as conn, _order_lock(conn, order.id):
            report = self.brokers.live(message.user_id, account).cancel(order)
            return self._record_report(conn, message.user_id, account.id, order.id, report)

    # -- paper triggers --------------------------------------------------------------------

    def _trigger(self, message: TriggerMessage) -> Result:
        def fill(conn: psycopg.Connection[Any]) -> Result:
            account = self._lock_account(conn, message.user_id, message.account_id)
            order = order_rows.get_order(conn, message.user_id, message.order_id, for_update=True)
            if (
                order is None
                or order.client_order_id != message.client_order_id
                or order.account_id != account.id
            ):
                raise MessageNotApplicable(
                    f"no order {message.order_id} ({message.client_order_id}) on this account"
                )
            if account.mode is not TradingMode.PAPER:
                raise MessageNotApplicable("price triggers are for paper orders")
            if order.status not in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                return Result(Outcome.IGNORED, order.id, order.status)
            refusal = self._state_refusal(conn, account, order)
            if refusal is not None:
                return self._booked_result(
                    booking.finish(
                        conn, message.user_id, account, order, OrderAction.CANCEL, reason=refusal.message
                    )
                )
            rules = market_rows.get_rules(conn, account.exchange, order.symbol)
            if rules is None:
                raise MessageNotApplicable(f"no market rules for {order.symbol}")
            if message.price is not None:
                booked_fill = self.paper.on_trade(
                    order, rules, message.price, message.trade_time, message.trade_id
                )
            else:
                assert message.candle is not None
                booked_fill = self.paper.on_candle(order, rules, message.candle, message.trade_time)
            if booked_fill is None:
                return Result(
                    Outcome.IGNORED, order.id, order.status, reason="the price does not reach the order"
                )
            return self._book_fill(conn, message.user_id, account, order, rules, booked_fill)

        return self._transaction(message.user_id, fill)

    # -- plumbing --------------------------------------------------------------------------

    def _fresh(self, last: market_rows.LastTrade | None) -> Decimal | None:
        if last is None:
            return None
        return fresh_price(last.price, last.trade_time, self.clock_ms(), self.config.costs)

    def _lock_account(self, conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID) -> Account:
        account = account_rows.get_account(conn, user_id, account_id, for_update=True)
        if account is None:
            raise MessageNotApplicable(f"user {user_id} has no account {account_id}")
        return account

    def _booked_result(self, booked: booking.Booked) -> Result:
        order = booked.order
        return Result(
            _OUTCOME_OF_STATUS.get(order.status, Outcome.OPEN),
            order.id,
            order.status,
            order.reason,
            booked.events,
        )

    def _transaction(
        self,
        user_id: UUID,
        work: Callable[[psycopg.Connection[Any]], T],
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> T:
        """Run `work` in a tenant transaction, retrying serialisation failures and deadlocks."""
        attempts = self.config.transaction_attempts
        for attempt in range(1, attempts + 1):
            try:
                if conn is not None:
                    return self._run(conn, user_id, work)
                with self.database.connection() as own:
                    return self._run(own, user_id, work)
            except _RETRYABLE as exc:
                if attempt == attempts:
                    raise
                logger.warning(
                    "transaction retried", extra={"attempt": attempt, "error_type": type(exc).__name__}
                )
                time.sleep(random.uniform(0.005, 0.02) * attempt)  # noqa: S311 -- jitter, not secrets
        raise AssertionError("unreachable")

    @staticmethod
    def _run(conn: psycopg.Connection[Any], user_id: UUID, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        with tenant_transaction(conn, user_id):
            return work(conn)


@contextmanager
def _order_lock(conn: psycopg.Connection[Any], order_id: UUID) -> Iterator[None]:
    """A session advisory lock on the order for as long as a worker talks to the exchange
    about it; the server releases it if the process dies. Busy: OrderPending (retry later)."""
    key = int.from_bytes(order_id.bytes[:8], "big", signed=True)
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    if not (row and row[0]):
        raise OrderPending(f"order {order_id} is being handled by another worker")
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _checked(order: Order) -> CheckedOrder:
    return CheckedOrder(quantity=order.quantity, limit_price=order.limit_price, stop_price=order.stop_price)


def _protection(order: Order, fill: order_rows.NewFill) -> ProtectionState | None:
    """The exits a bot attached to its entry, armed at the fill price (the engine's rules);
    booking applies them only when the fill opens a position."""
    spec = order.intent.get("protection")
    if order.side is not OrderSide.BUY or not spec:
        return None
    return to_state(arm(ProtectionSpec.model_validate(spec), PositionSide.LONG, float(fill.price)))


def _fills_to_book(order: Order, report: ExchangeOrder, rules: MarketRules) -> list[order_rows.NewFill]:
    """The executions of `report` to book: each reported trade, or, when the exchange gives no
    trade list, one fill for the cumulative quantity not booked yet (priced from the average)."""
    if report.trades:
        return sorted(report.trades, key=lambda t: (t.executed_at, t.trade_id))
    missing = report.filled - order.filled_quantity
    if missing <= 0 or report.average_price is None:
        return []
    booked_value = (order.average_price or Decimal(0)) * order.filled_quantity
    price = (report.average_price * report.filled - booked_value) / missing
    return [
        order_rows.NewFill(
            trade_id=f"cum-{report.filled}",
            quantity=missing,
            price=price,
            fee=Decimal(0),
            fee_currency=rules.quote,
            liquidity="taker",
            executed_at=_now_ms(),
        )
    ]

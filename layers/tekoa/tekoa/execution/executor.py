"""The executor: each order placed at most once, each fill recorded exactly once.

`Executor.handle_batch` takes a batch of order-queue messages (`tekoa.execution.messages`),
`Executor.handle` one. New orders of different accounts are claimed and booked together, one
transaction per round (DECISIONS 53). Delivery is at least once, possibly concurrent, and a
process may die at any line; these rules make that safe:

* **Claim first.** A bot's intent becomes an order row (status `new`, its funds held) in one
  transaction before anything leaves the platform. Its client order id is unique per account,
  so a duplicate delivery finds the order instead of making another, and carries it on only
  if it is unfinished.
* **Paper** orders are claimed, checked, priced and filled in that same transaction: the paper
  broker has no side effects, so a crash leaves nothing and the retry does it all again.
* **Live** orders are marked `submitted` and committed *before* the exchange is called, under a
  session advisory lock on the order (one worker at a time; the server drops it if the
  process dies). A worker that finds an order `submitted` looks it up by client id and never
  creates it again; an order the exchange never heard of is declared lost only after
  repeated look-ups.
* Every transaction starts by locking the account rows (`load_order_context`, or for a round
  `load_place_contexts`, in id order) and then reads all the orders need, so concurrent work on
  one account is serialised and what was read cannot change before the commit; the writes
  follow in one pipeline.
  Serialisation failures and deadlocks (e.g. with the API's reset) are retried.
* Trading states are read at execution time and fail closed (a missing platform row is halted).

Events go to the outbox in the booking's transaction and are published after it commits.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any, Protocol, TypeVar, cast
from uuid import UUID

import psycopg

from tekoa.aws.events import BusEvent, EventPublisher
from tekoa.db import orders as order_rows
from tekoa.db import outbox
from tekoa.db.connection import Database, service_transaction, tenant_transaction
from tekoa.db.markets import LastTrade
from tekoa.db.order_context import OrderContext, PlaceKey, load_order_context, load_place_contexts
from tekoa.domain.bots import TradingMode
from tekoa.domain.execution import (
    WORKING_STATUSES,
    Account,
    InsufficientBalance,
    Order,
    OrderAction,
    OrderRefused,
    OrderStatus,
    RejectCode,
    TradingState,
)
from tekoa.domain.orders import NATIVE_STOP_LEG, OrderSide, OrderType, ProtectionSpec
from tekoa.domain.trading import PositionSide, ProtectionState
from tekoa.engine.protection import arm, to_state
from tekoa.exchanges.capabilities import capabilities
from tekoa.exchanges.rules import MarketRules
from tekoa.execution import booking
from tekoa.execution.admission import CostModel, OrderAsk, admit, fresh_price, halt_lets_through, normalise
from tekoa.execution.brokers import (
    ExchangeOrder,
    ExchangeRejected,
    ExchangeStatus,
    LiveBroker,
    PaperBroker,
)
from tekoa.execution.ledger import Book
from tekoa.execution.messages import CancelMessage, ExecuteMessage, OrderMessage, PlaceMessage, TriggerMessage
from tekoa.execution.writes import Writes
from tekoa.observability import logger

T = TypeVar("T")
Work = Callable[[psycopg.Connection[Any], "Writes"], T]
_RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)
Events = tuple[tuple[UUID, BusEvent], ...]


class Outcome(StrEnum):
    """What handling a message did."""

    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    OPEN = "open"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    CANCELED = "canceled"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"
    """The order was already handled: nothing changed."""
    IGNORED = "ignored"
    """Nothing to do (a trigger the price does not reach, a cancel of a final order)."""


_OUTCOME_OF_STATUS = {
    OrderStatus.FILLED: Outcome.FILLED,
    OrderStatus.PARTIALLY_FILLED: Outcome.PARTIALLY_FILLED,
    OrderStatus.OPEN: Outcome.OPEN,
    OrderStatus.SUBMITTED: Outcome.SUBMITTED,
    OrderStatus.REJECTED: Outcome.REJECTED,
    OrderStatus.CANCELED: Outcome.CANCELED,
    OrderStatus.EXPIRED: Outcome.EXPIRED,
}


class MessageNotApplicable(Exception):
    """A well-formed message that can never succeed (unknown account or order, a bot that does
    not trade on the account): it goes to the dead-letter queue with this reason."""


class OrderPending(Exception):
    """The order's fate is not known yet (in flight elsewhere, or not found on the exchange
    yet): retry the message later."""


class _NeedsPrice(Exception):
    """A live order needs a reference price the database does not have."""

    def __init__(self, account: Account) -> None:
        super().__init__("no recent price")
        self.account = account


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    order_id: UUID | None
    status: OrderStatus | None = None
    reason: str | None = None
    events: Events = ()


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


def _available(
    conn: psycopg.Connection[Any], writes: Writes, user_id: UUID, context: OrderContext
) -> booking.Available:
    """Available balances under the account's lock: the market's assets as the context read
    them, others from the database, both plus this transaction's postings so far."""
    account_id = context.account.id
    known = {}
    if context.rules is not None:
        known = {context.rules.base: context.base_available, context.rules.quote: context.quote_available}

    def available(asset: str) -> Decimal:
        if asset in known:
            return known[asset] + writes.change(account_id, asset, Book.AVAILABLE)
        return writes.available(conn, user_id, account_id, asset)

    return available


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
            # A batch of one: new orders have one path, `handle_batch`.
            outcome = self.handle_batch([message])[0]
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        if isinstance(message, ExecuteMessage):
            return self._execute(message)
        if isinstance(message, CancelMessage):
            return self._cancel(message)
        return self._trigger(message)

    def publish(self, events: Events | list[tuple[UUID, BusEvent]]) -> None:
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

    def follow_up(self, user_id: UUID, account_id: UUID, order_id: UUID) -> Result:
        """Ask the exchange about a working live order and book what changed (reconciliation).

        OrderPending when another worker holds the order, or the exchange does not know it yet.
        """
        with self.database.connection() as conn, _order_lock(conn, order_id):
            context = self._transaction(
                user_id, lambda c, _: self._context(c, user_id, account_id, order_id=order_id), conn=conn
            )
            order = _found(context)
            if order.status.final or order.status is OrderStatus.NEW:
                return Result(Outcome.DUPLICATE, order.id, order.status)
            report = self.brokers.live(user_id, context.account).lookup(order)
            return self._record_report(conn, user_id, account_id, order_id, report)

    # -- place: a batch of new orders ------------------------------------------------------

    def handle_batch(self, messages: Sequence[OrderMessage]) -> list[Result | Exception]:
        """Carry out a batch of messages: each one's result, or the exception it failed with.

        The new orders (place messages) of different accounts are claimed, checked, priced and
        booked together (`_place_round`: one transaction, a statement per table); an account's
        messages keep their order, each one seeing what the one before it booked, because an
        account contributes at most one order to a round. Other messages go one at a time, in
        their account's turn. A message that failed for a reason that may pass holds its
        account's later messages back (they fail unhandled, `OrderPending`, as the FIFO batch
        processor reports them); a message that can never apply (`MessageNotApplicable`) does not.
        """
        results: list[Result | Exception | None] = [None] * len(messages)
        queues: dict[UUID, deque[int]] = {}
        for index, message in enumerate(messages):
            queues.setdefault(message.account_id, deque()).append(index)
        held: set[UUID] = set()

        def settle(index: int, outcome: Result | Exception) -> None:
            results[index] = outcome
            if isinstance(outcome, Exception) and not isinstance(outcome, MessageNotApplicable):
                held.add(messages[index].account_id)

        while any(queues.values()):
            round_: list[int] = []
            for account_id, waiting in queues.items():
                while waiting:
                    index = waiting.popleft()
                    message = messages[index]
                    if account_id in held:
                        results[index] = OrderPending("an earlier message of the account failed")
                    elif isinstance(message, PlaceMessage):
                        round_.append(index)
                        break
                    else:
                        settle(index, _attempt(partial(self.handle, message)))
            if round_:
                placed = self._place_round([cast(PlaceMessage, messages[i]) for i in round_])
                for index, outcome in zip(round_, placed, strict=True):
                    settle(index, outcome)
        return [outcome if outcome is not None else OrderPending("not handled") for outcome in results]

    def _place_round(self, messages: list[PlaceMessage]) -> list[Result | Exception]:
        """New orders of distinct accounts: claimed in one transaction, live ones then sent.

        An exit on an exchange that keeps the bot's stop natively lifts that stop first (outside
        the round: it is a cancel on the exchange); if lifting fails, that exit fails alone."""
        lifted: dict[int, Exception] = {}
        for n, message in enumerate(messages):
            if _lifts_native_stops(message):
                try:
                    self._lift_native_stops(message)
                except Exception as exc:
                    lifted[n] = exc
        claimable = [n for n in range(len(messages)) if n not in lifted]
        claimed = iter(self._claim_round([messages[n] for n in claimable], {}) if claimable else [])
        outcomes: list[Result | Exception] = [
            lifted[n] if n in lifted else next(claimed) for n in range(len(messages))
        ]
        for n, outcome in enumerate(outcomes):
            if isinstance(outcome, _NeedsPrice):
                # A live market order on a market the stream does not follow: ask the exchange
                # what it trades at (outside any transaction), then claim it with that price.
                message = messages[n]
                try:
                    hint = self.brokers.live(message.user_id, outcome.account).last_price(message.symbol)
                except Exception as exc:
                    outcomes[n] = exc
                    continue
                outcomes[n] = self._claim_round([message], {0: hint})[0]
        for n, outcome in enumerate(outcomes):
            if isinstance(outcome, Result) and outcome.outcome is Outcome.SUBMITTED:
                assert outcome.order_id is not None
                message = messages[n]
                outcomes[n] = _attempt(
                    partial(self._submit_live, message.user_id, message.account_id, outcome.order_id)
                )
        return outcomes

    def _claim_round(
        self, messages: list[PlaceMessage], price_hints: dict[int, Decimal]
    ) -> list[Result | Exception]:
        """Claim each message's order in one transaction (retried on serialisation failures and
        deadlocks). A record that fails while deciding fails alone, its writes dropped; should
        the transaction itself fail, each record is tried again on its own, so a bad record
        never takes the others with it and nothing is half written."""

        def claim() -> list[Result | Exception]:
            with self.database.connection() as conn:
                return self._claim_once(conn, messages, price_hints)

        try:
            return _retrying(self.config.transaction_attempts, claim)
        except Exception as exc:  # e.g. a constraint at the flush: whose record is unknown
            failure = exc
        if len(messages) == 1:
            return [failure]
        logger.warning(
            "a batch transaction failed; its records go one by one",
            extra={"records": len(messages), "error_type": type(failure).__name__},
        )
        return [
            self._claim_round([message], {0: price_hints[n]} if n in price_hints else {})[0]
            for n, message in enumerate(messages)
        ]

    def _claim_once(
        self, conn: psycopg.Connection[Any], messages: list[PlaceMessage], price_hints: dict[int, Decimal]
    ) -> list[Result | Exception]:
        outcomes: list[Result | Exception] = []
        booked = Writes()
        keys = [
            PlaceKey(m.user_id, m.account_id, m.bot_id, m.symbol, m.intent.client_order_id) for m in messages
        ]
        # The service role: the batch spans tenants. Every read matches the message's own
        # (user, account) pair and every row written carries its user, as under tenancy.
        with conn.pipeline(), service_transaction(conn):
            contexts = load_place_contexts(conn, keys)
            for n, (message, context) in enumerate(zip(messages, contexts, strict=True)):
                writes = Writes()
                try:
                    if context is None:
                        raise MessageNotApplicable(
                            f"user {message.user_id} has no account {message.account_id}"
                        )
                    outcomes.append(self._claim_place(conn, writes, message, context, price_hints.get(n)))
                except psycopg.Error:
                    raise  # the transaction is lost: the round fails (and its records go one by one)
                except Exception as exc:  # this record fails alone; what it collected is dropped
                    outcomes.append(exc)
                    continue
                booked.absorb(writes)
            booked.flush(conn)
        return outcomes

    def _claim_place(
        self,
        conn: psycopg.Connection[Any],
        writes: Writes,
        message: PlaceMessage,
        context: OrderContext,
        price_hint: Decimal | None,
    ) -> Result:
        intent = message.intent
        account, bot = context.account, context.bot
        # A paper bot's intent must never reach a live account (nor another exchange's).
        if bot is None or (bot.exchange, bot.mode, bot.symbol) != (
            account.exchange,
            account.mode,
            message.symbol,
        ):
            raise MessageNotApplicable(
                f"bot {message.bot_id} does not trade {message.symbol} on account {account.id}"
            )
        if context.order is not None:
            return self._resume(conn, writes, message.user_id, context, context.order)
        if bot.archived_at is not None:
            raise MessageNotApplicable(f"bot {message.bot_id} is archived")
        price = self._fresh(context.last_trade) or price_hint
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
        order = order_rows.new_order(
            account.id,
            bot_id=message.bot_id,
            client_order_id=intent.client_order_id,
            exchange=account.exchange,
            symbol=message.symbol,
            side=intent.side,
            type=intent.type,
            quantity=ask.quantity,
            limit_price=ask.limit_price,
            stop_price=ask.stop_price,
            reduce_only=intent.reduce_only,
            intent=intent.model_dump(mode="json"),
        )
        return self._claim(conn, writes, message.user_id, context, order, ask, price, source="bot")

    def _lift_native_stops(self, message: PlaceMessage) -> None:
        """Cancel the bot's native stops on this market before another exit sells the position:
        the exchange holds the stop's quantity, and a stop that filled meanwhile is booked here,
        so the exit then finds the position as it is. The position manager places the stop
        again if the position stays open."""

        def working(conn: psycopg.Connection[Any], _: Writes) -> list[str]:
            rows = conn.execute(
                "SELECT client_order_id FROM orders WHERE account_id = %s AND bot_id = %s AND symbol = %s"
                " AND intent->>'leg' LIKE %s AND status = ANY(%s)"
                # A redelivered exit that was already claimed leaves the stop placed after it be.
                " AND NOT EXISTS (SELECT 1 FROM orders e WHERE e.account_id = %s AND e.client_order_id = %s)",
                (
                    message.account_id,
                    message.bot_id,
                    message.symbol,
                    NATIVE_STOP_LEG + "%",
                    sorted(s.value for s in WORKING_STATUSES),
                    message.account_id,
                    message.intent.client_order_id,
                ),
            ).fetchall()
            return [row[0] for row in rows]

        for client_order_id in self._transaction(message.user_id, working):
            self._cancel(
                CancelMessage(
                    user_id=message.user_id,
                    account_id=message.account_id,
                    enqueued_at=message.enqueued_at,
                    target_client_order_id=client_order_id,
                    reason=f"lifted for the exit {message.intent.client_order_id}",
                )
            )

    # -- claim / execute -----------------------------------------------------------------

    def _claim(
        self,
        conn: psycopg.Connection[Any],
        writes: Writes,
        user_id: UUID,
        context: OrderContext,
        order: Order,
        ask: OrderAsk,
        price: Decimal | None,
        *,
        source: str,
    ) -> Result:
        """Check a new order against its market and the account, store it with its hold, and
        carry it on (paper: to its fill) or reject it with the reason."""
        account = context.account
        try:
            checked = normalise(context.rules, ask, reference_price=price, strict=False)
            order = order.model_copy(
                update={
                    "quantity": checked.quantity,
                    "limit_price": checked.limit_price,
                    "stop_price": checked.stop_price,
                }
            )
            assert context.rules is not None
            admission = admit(
                account=account,
                platform_state=context.platform_state,
                rules=context.rules,
                side=order.side,
                type=order.type,
                order=checked,
                reduce_only=order.reduce_only,
                reference_price=price,
                position_quantity=Decimal(0) if context.position is None else context.position.quantity,
                pending_sells=context.pending_sells,
                available=context.available(
                    context.rules.base if order.side is OrderSide.SELL else context.rules.quote
                ),
                costs=self.config.costs,
                source=source,
            )
        except OrderRefused as refusal:
            claimed = booking.claim(
                writes, user_id, account, order, hold_asset=None, hold_amount=Decimal(0), source=source
            )
            return self._reject(conn, writes, user_id, account, claimed, refusal)
        claimed = booking.claim(
            writes,
            user_id,
            account,
            order,
            hold_asset=admission.asset,
            hold_amount=admission.amount,
            source=source,
        )
        if account.mode is TradingMode.LIVE:
            return Result(Outcome.SUBMITTED, claimed.id, claimed.status)
        return self._paper_arrival(conn, writes, user_id, context, claimed)

    def _execute(self, message: ExecuteMessage) -> Result:
        def load(conn: psycopg.Connection[Any], writes: Writes) -> Result:
            context = self._context(conn, message.user_id, message.account_id, order_id=message.order_id)
            order = context.order
            if order is None or order.client_order_id != message.client_order_id:
                raise MessageNotApplicable(
                    f"no order {message.order_id} ({message.client_order_id}) on this account"
                )
            return self._resume(conn, writes, message.user_id, context, order)

        result = self._transaction(message.user_id, load)
        if result.outcome is Outcome.SUBMITTED:
            assert result.order_id is not None
            return self._submit_live(message.user_id, message.account_id, result.order_id)
        return result

    def _resume(
        self,
        conn: psycopg.Connection[Any],
        writes: Writes,
        user_id: UUID,
        context: OrderContext,
        order: Order,
    ) -> Result:
        """An order that exists: carry a `new` one on (its funds are held), leave others be.

        `SUBMITTED` as outcome means "a live order to send or look up", done outside the
        transaction.
        """
        account = context.account
        if order.status is not OrderStatus.NEW:
            if account.mode is TradingMode.LIVE and order.status is OrderStatus.SUBMITTED:
                return Result(Outcome.SUBMITTED, order.id, order.status)
            return Result(Outcome.DUPLICATE, order.id, order.status)
        refusal = _state_refusal(context, order)
        if refusal is None and context.rules is None:
            refusal = OrderRefused(
                RejectCode.INVALID_ORDER, "unknown symbol: Tekoa has no rules for this market"
            )
        if refusal is not None:
            return self._reject(conn, writes, user_id, account, order, refusal)
        if account.mode is TradingMode.LIVE:
            return Result(Outcome.SUBMITTED, order.id, order.status)
        return self._paper_arrival(conn, writes, user_id, context, order)

    def _paper_arrival(
        self,
        conn: psycopg.Connection[Any],
        writes: Writes,
        user_id: UUID,
        context: OrderContext,
        order: Order,
    ) -> Result:
        """A paper order meets the market: fill it at the last trade, or let it rest."""
        account, last, rules = context.account, context.last_trade, context.rules
        assert rules is not None
        price = self._fresh(last)
        if price is None or last is None:
            if order.type is OrderType.MARKET:
                age = (
                    "none recorded"
                    if last is None
                    else f"last trade {self.clock_ms() - last.trade_time} ms ago"
                )
                refusal = OrderRefused(RejectCode.STALE_PRICE, f"no fresh price for {order.symbol} ({age})")
                return self._reject(conn, writes, user_id, account, order, refusal)
            return _result(booking.move(writes, user_id, account, order, OrderAction.ACCEPT))
        fill = self.paper.on_arrival(order, rules, price, last.trade_time)
        if fill is None:
            return _result(
                booking.move(
                    writes, user_id, account, order, OrderAction.ACCEPT, detail={"price": str(price)}
                )
            )
        return self._book_fill(conn, writes, user_id, context, order, fill)

    def _book_fill(
        self,
        conn: psycopg.Connection[Any],
        writes: Writes,
        user_id: UUID,
        context: OrderContext,
        order: Order,
        fill: order_rows.NewFill,
    ) -> Result:
        assert context.rules is not None
        try:
            booked = booking.book_fill(
                writes,
                user_id,
                context.account,
                order,
                context.rules,
                fill,
                position=context.position,
                booked_trade_ids=set(context.booked_trade_ids),
                available=_available(conn, writes, user_id, context),
                protection=_protection(order, fill),
            )
        except InsufficientBalance as exc:  # raised before anything was written
            action = OrderAction.REJECT if order.status is OrderStatus.NEW else OrderAction.EXPIRE
            return _result(
                booking.finish(
                    writes,
                    user_id,
                    context.account,
                    order,
                    action,
                    reason=exc.message,
                    reject_code=RejectCode.INSUFFICIENT_BALANCE,
                )
            )
        if booked.duplicate:
            return Result(Outcome.DUPLICATE, order.id, order.status)
        return _result(booked)

    def _reject(
        self,
        conn: psycopg.Connection[Any],
        writes: Writes,
        user_id: UUID,
        account: Account,
        order: Order,
        refusal: OrderRefused,
    ) -> Result:
        logger.info(
            "order rejected",
            extra={"order_id": str(order.id), "code": refusal.reject_code.value, "reason": refusal.message},
        )
        return _result(
            booking.finish(
                writes,
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

            def prepare(
                c: psycopg.Connection[Any], writes: Writes
            ) -> tuple[Result | None, OrderContext, Order, bool]:
                context = self._context(c, user_id, account_id, order_id=order_id)
                order = _found(context)
                if order.status is OrderStatus.SUBMITTED:
                    return None, context, order, False
                if order.status is not OrderStatus.NEW:
                    return Result(Outcome.DUPLICATE, order.id, order.status), context, order, False
                refusal = _state_refusal(context, order)
                if refusal is not None:
                    return (
                        self._reject(c, writes, user_id, context.account, order, refusal),
                        context,
                        order,
                        False,
                    )
                # Committed before the exchange is called: a crash from here on leaves an
                # order that the next attempt looks up instead of sending again.
                submitted = booking.move(writes, user_id, context.account, order, OrderAction.SUBMIT)
                return (
                    Result(Outcome.SUBMITTED, order.id, events=submitted.events),
                    context,
                    submitted.order,
                    True,
                )

            prepared, context, order, send = self._transaction(user_id, prepare, conn=conn)
            if prepared is not None and not send:
                return prepared
            if prepared is not None:
                self.publish(prepared.events)
            broker = self.brokers.live(user_id, context.account)
            if not send:
                return self._record_report(conn, user_id, account_id, order_id, broker.lookup(order))
            try:
                report = broker.place(order)
            except ExchangeRejected as exc:
                reason = exc.reason
                return self._transaction(
                    user_id,
                    lambda c, w: self._exchange_rejected(c, w, user_id, account_id, order_id, reason),
                    conn=conn,
                )
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
                user_id, lambda c, w: self._not_found(c, w, user_id, account_id, order_id), conn=conn
            )
            if lost is None:
                raise OrderPending(f"order {order_id} is not on the exchange (yet)")
            return lost
        found = report
        return self._transaction(
            user_id, lambda c, w: self._apply_report(c, w, user_id, account_id, order_id, found), conn=conn
        )

    def _exchange_rejected(
        self,
        conn: psycopg.Connection[Any],
        writes: Writes,
        user_id: UUID,
        account_id: UUID,
        order_id: UUID,
        reason: str,
    ) -> Result:
        context = self._context(conn, user_id, account_id, order_id=order_id)
        order = _found(context)
        if order.status.final:
            return Result(Outcome.DUPLICATE, order.id, order.status)
        return _result(
            booking.finish(
                writes,
                user_id,
                context.account,
                order,
                OrderAction.REJECT,
                reason=reason,
                reject_code=RejectCode.EXCHANGE_REJECTED,
            )
        )

    def _not_found(
        self, conn: psycopg.Connection[Any], writes: Writes, user_id: UUID, account_id: UUID, order_id: UUID
    ) -> Result | None:
        """Count one "not found"; the order expires as lost after enough of them, else None."""
        context = self._context(conn, user_id, account_id, order_id=order_id)
        order = _found(context)
        if order.status.final:
            return Result(Outcome.DUPLICATE, order.id, order.status)
        count = order.not_found_count + 1
        age_s = (time.time() - order.submitted_at.timestamp()) if order.submitted_at else 0.0
        if count >= self.config.lost_after_lookups and age_s >= self.config.lost_min_age_s:
            return _result(
                booking.finish(
                    writes,
                    user_id,
                    context.account,
                    order,
                    OrderAction.EXPIRE,
                    reason=f"the exchange has no order with this client id after {count} look-ups",
                    reject_code=RejectCode.LOST,
                )
            )
        booking.count_not_found(writes, user_id, order)
        return None

    def _apply_report(
        self,
        conn: psycopg.Connection[Any],
        writes: Writes,
        user_id: UUID,
        account_id: UUID,
        order_id: UUID,
        report: ExchangeOrder,
    ) -> Result:
        """Book what the exchange says about the order: new fills once each, then its status."""
        context = self._context(conn, user_id, account_id, order_id=order_id)
        account, order, rules = context.account, _found(context), context.rules
        if rules is None:
            raise OrderPending(f"no market rules for {order.symbol} yet")
        events: list[tuple[UUID, BusEvent]] = []
        if order.exchange_order_id != report.exchange_order_id or order.not_found_count:
            order = writes.order(
                user_id,
                order_rows.stamped(
                    order.model_copy(
                        update={"exchange_order_id": report.exchange_order_id, "not_found_count": 0}
                    )
                ),
            )
        position, booked_ids = context.position, set(context.booked_trade_ids)
        for fill in _fills_to_book(order, report, rules):
            booked = booking.book_fill(
                writes,
                user_id,
                account,
                order,
                rules,
                fill,
                position=position,
                booked_trade_ids=booked_ids,
                available=lambda asset: writes.available(conn, user_id, account.id, asset),
                protection=_protection(order, fill),
                cover_shortfall=True,
            )
            order, position, events = booked.order, booked.position, events + list(booked.events)
        if report.status is ExchangeStatus.OPEN and order.status is OrderStatus.SUBMITTED:
            booked = booking.move(writes, user_id, account, order, OrderAction.ACCEPT)
            order, events = booked.order, events + list(booked.events)
        elif report.status in _ENDED and not order.status.final:
            action = _ENDED[report.status]
            if action is OrderAction.REJECT and order.status not in (OrderStatus.NEW, OrderStatus.SUBMITTED):
                action = OrderAction.CANCEL
            booked = booking.finish(
                writes,
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
        def local(conn: psycopg.Connection[Any], writes: Writes) -> tuple[Result | None, OrderContext]:
            context = self._context(
                conn, message.user_id, message.account_id, client_order_id=message.target_client_order_id
            )
            order = context.order
            if order is None or order.status.final:
                return Result(Outcome.IGNORED, None if order is None else order.id), context
            if context.account.mode is TradingMode.PAPER or order.status is OrderStatus.NEW:
                reason = message.reason or "canceled"
                return _result(
                    booking.finish(
                        writes, message.user_id, context.account, order, OrderAction.CANCEL, reason=reason
                    )
                ), context
            return None, context

        result, context = self._transaction(message.user_id, local)
        if result is not None:
            return result
        order = _found(context)
        with self.database.connection() as conn, _order_lock(conn, order.id):
            report = self.brokers.live(message.user_id, context.account).cancel(order)
            return self._record_report(conn, message.user_id, context.account.id, order.id, report)

    # -- paper triggers --------------------------------------------------------------------

    def _trigger(self, message: TriggerMessage) -> Result:
        def fill(conn: psycopg.Connection[Any], writes: Writes) -> Result:
            context = self._context(conn, message.user_id, message.account_id, order_id=message.order_id)
            order, account, rules = context.order, context.account, context.rules
            if order is None or order.client_order_id != message.client_order_id:
                raise MessageNotApplicable(
                    f"no order {message.order_id} ({message.client_order_id}) on this account"
                )
            if account.mode is not TradingMode.PAPER:
                raise MessageNotApplicable("price triggers are for paper orders")
            if order.status not in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                return Result(Outcome.IGNORED, order.id, order.status)
            refusal = _state_refusal(context, order)
            if refusal is not None:
                return _result(
                    booking.finish(
                        writes, message.user_id, account, order, OrderAction.CANCEL, reason=refusal.message
                    )
                )
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
            return self._book_fill(conn, writes, message.user_id, context, order, booked_fill)

        return self._transaction(message.user_id, fill)

    # -- plumbing --------------------------------------------------------------------------

    def _context(
        self,
        conn: psycopg.Connection[Any],
        user_id: UUID,
        account_id: UUID,
        *,
        symbol: str | None = None,
        bot_id: UUID | None = None,
        order_id: UUID | None = None,
        client_order_id: str | None = None,
    ) -> OrderContext:
        context = load_order_context(
            conn,
            user_id,
            account_id,
            symbol=symbol,
            bot_id=bot_id,
            order_id=order_id,
            client_order_id=client_order_id,
        )
        if context is None:
            raise MessageNotApplicable(f"user {user_id} has no account {account_id}")
        return context

    def _fresh(self, last: LastTrade | None) -> Decimal | None:
        if last is None:
            return None
        return fresh_price(last.price, last.trade_time, self.clock_ms(), self.config.costs)

    def _transaction(
        self,
        user_id: UUID,
        work: Work[T],
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> T:
        """Run `work` in a pipelined tenant transaction, retrying serialisation failures and deadlocks."""

        def once() -> T:
            if conn is not None:
                return _run(conn, user_id, work)
            with self.database.connection() as own:
                return _run(own, user_id, work)

        return _retrying(self.config.transaction_attempts, once)


def _lifts_native_stops(message: PlaceMessage) -> bool:
    intent = message.intent
    return (
        intent.reduce_only
        and not intent.leg.startswith(NATIVE_STOP_LEG)
        and capabilities(message.exchange).native_stop_orders
    )


def _retrying(attempts: int, transaction: Callable[[], T]) -> T:
    """`transaction`'s result, running it again (with jitter) after a serialisation failure or
    deadlock, up to `attempts` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return transaction()
        except _RETRYABLE as exc:
            if attempt == attempts:
                raise
            logger.warning(
                "transaction retried", extra={"attempt": attempt, "error_type": type(exc).__name__}
            )
            time.sleep(random.uniform(0.005, 0.02) * attempt)  # noqa: S311 -- jitter, not secrets
    raise AssertionError("unreachable")


def _attempt(work: Callable[[], Result]) -> Result | Exception:
    """`work`'s result, or the exception it failed with (one record of a batch)."""
    try:
        return work()
    except Exception as exc:
        return exc


def _run(conn: psycopg.Connection[Any], user_id: UUID, work: Work[T]) -> T:
    # The writes are collected while the work decides and flushed at its end; the pipeline
    # sends them with the commit, so a message costs a few round trips whatever it books.
    writes = Writes()
    with conn.pipeline(), tenant_transaction(conn, user_id):
        result = work(conn, writes)
        writes.flush(conn)
        return result


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


_ENDED = {
    ExchangeStatus.CANCELED: OrderAction.CANCEL,
    ExchangeStatus.EXPIRED: OrderAction.EXPIRE,
    ExchangeStatus.REJECTED: OrderAction.REJECT,
}


def _found(context: OrderContext) -> Order:
    if context.order is None:
        raise MessageNotApplicable("the order does not exist on this account")
    return context.order


def _result(booked: booking.Booked) -> Result:
    order = booked.order
    return Result(
        _OUTCOME_OF_STATUS.get(order.status, Outcome.OPEN),
        order.id,
        order.status,
        order.reason,
        booked.events,
    )


def _state_refusal(context: OrderContext, order: Order) -> OrderRefused | None:
    """The trading states at execution time (fail closed), for an order admitted earlier."""
    account = context.account
    account_state = account.trading_state
    if account_state is TradingState.HALTED and halt_lets_through(
        order.intent.get("source"), order.side, order.type, order.reduce_only
    ):
        account_state = TradingState.REDUCING
    for state, reason in (
        (context.platform_state, context.platform_reason),
        (account_state, account.trading_state_reason),
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

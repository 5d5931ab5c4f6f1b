"""The position manager in the market stream: a trade through a position's stop sends one
reduce-only exit with a deterministic id; the executor closes the position with it; the same
trigger again names the same order; take-profit targets close their fraction."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import numpy as np

from tekoa.db.connection import tenant_transaction
from tekoa.domain.orders import OrderSide, OrderType, ProtectionSpec, StopSpec, TargetSpec, place
from tekoa.execution.messages import PlaceMessage
from tekoa.market.sources import TradeBatch
from tekoa.market.stream.positions import PositionGuard, exit_intent
from tests.integration.evaluation.floor import Floor
from tests.integration.execution.desk import SYMBOL, now_ms


def _batch(*prices: float) -> TradeBatch:
    n = len(prices)
    start = now_ms()
    return TradeBatch(
        "simulated",
        SYMBOL,
        np.arange(start, start + n, dtype=np.int64),
        np.asarray(prices, dtype=np.float64),
        np.full(n, 0.01),
        np.arange(start, start + n, dtype=np.int64),
    )


def _protected_position(floor: Floor, protection: ProtectionSpec) -> tuple[object, object, object]:
    user = floor.desk.user()
    bot = floor.desk.bot(user)
    account = floor.desk.paper_account(user)
    floor.desk.market("60000")
    intent = place(
        str(bot), 0, "entry", OrderSide.BUY, OrderType.MARKET, Decimal("0.01"), protection=protection
    )
    message = PlaceMessage(
        user_id=user,
        account_id=account.id,
        bot_id=bot,
        exchange="simulated",
        symbol=SYMBOL,
        intent=intent,
        enqueued_at=now_ms(),
    )
    result = floor.desk.executor().handle(message)
    order = floor.desk.order(user, result.order_id)
    return user, account, order


def _guard(floor: Floor) -> PositionGuard:
    guard = PositionGuard("simulated", floor.database, floor.fifo.queue)
    asyncio.run(guard.refresh([SYMBOL], force=True))
    return guard


def test_a_trade_through_the_stop_sends_one_exit_that_closes_the_position(floor: Floor) -> None:
    user, account, entry = _protected_position(
        floor, ProtectionSpec(stop=StopSpec(kind="percent", value=Decimal(2)))
    )
    guard = _guard(floor)

    guard.observe(_batch(59_900.0, 59_000.0, 58_700.0, 58_000.0))
    asyncio.run(guard.send())
    (message,) = floor.queued()

    assert isinstance(message, PlaceMessage)
    assert message.intent.reduce_only and message.intent.side is OrderSide.SELL
    assert message.intent.leg.startswith("stop-") and message.intent.quantity == entry.filled_quantity
    floor.desk.market("58700")
    floor.desk.executor().handle(message)
    with floor.database.connection() as conn, tenant_transaction(conn, user):  # type: ignore[arg-type]
        (closed,) = conn.execute(
            "SELECT closed_at IS NOT NULL FROM positions WHERE account_id = %s", (account.id,)
        ).fetchone()  # type: ignore[misc]
    assert closed

    # The stream (or the candle-close fallback) firing again names the same order.
    assert _guard(floor).markets == {}  # the closed position is no longer watched
    (guarded,) = guard.markets[SYMBOL].rows
    assert exit_intent(guarded, "stop", 1.0, 57_000.0).client_order_id == message.intent.client_order_id


def test_a_take_profit_target_closes_its_fraction_and_is_remembered(floor: Floor) -> None:
    spec = ProtectionSpec(
        stop=StopSpec(kind="percent", value=Decimal(5)),
        targets=(TargetSpec(kind="percent", value=Decimal(1), size_fraction=Decimal("0.5")),),
    )
    _, _, entry = _protected_position(floor, spec)
    guard = _guard(floor)

    guard.observe(_batch(60_500.0, 60_800.0))
    asyncio.run(guard.send())
    (message,) = floor.queued()
    reloaded = _guard(floor)
    reloaded.observe(_batch(60_900.0))
    asyncio.run(reloaded.send())

    assert isinstance(message, PlaceMessage) and message.intent.leg.startswith("target-1-")
    assert message.intent.quantity == entry.filled_quantity * Decimal("0.5")
    assert floor.queued() == []  # the target's hit was written back: it does not fire twice


def test_the_candle_close_is_the_fallback_with_the_same_exit_ids(floor: Floor) -> None:
    from tests.integration.evaluation.test_evaluator import DCA_1M

    user = floor.desk.user()
    bot = floor.running_bot(user, DCA_1M)
    account = floor.desk.paper_account(user)
    floor.desk.market("60000")
    spec = ProtectionSpec(stop=StopSpec(kind="percent", value=Decimal(2)))
    entry = place(str(bot), 0, "entry", OrderSide.BUY, OrderType.MARKET, Decimal("0.01"), protection=spec)
    floor.desk.executor().handle(
        PlaceMessage(
            user_id=user,
            account_id=account.id,
            bot_id=bot,
            exchange="simulated",
            symbol=SYMBOL,
            intent=entry,
            enqueued_at=now_ms(),
        )
    )
    guard = _guard(floor)  # the stream saw no trade: it was down
    floor.candles([60_000.0] * 50 + [58_000.0])
    floor.price("58000")

    report = floor.tick()

    (message,) = [
        m for m in floor.queued() if isinstance(m, PlaceMessage) and m.intent.leg.startswith("stop-")
    ]
    (guarded,) = guard.markets[SYMBOL].rows
    assert report.evaluated == 1
    assert message.intent.client_order_id == exit_intent(guarded, "stop", 1.0, 58_000.0).client_order_id

"""Native stops: a live position on an exchange whose capability table says `native_stop_orders`
keeps its stop on the exchange. The position manager places it once (under an id derived from
the position, its level and quantity), replaces it when it moves, never fires an emulated stop
exit for it, and the stop's fill on the exchange closes the position, booked once. Without the
capability the emulated exit fires as before. Real PostgreSQL, SQS on moto, ccxt against the
loopback fake Binance."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import pytest

from tekoa.db import markets as market_rows
from tekoa.db.candle_copy import copy_ohlcv
from tekoa.db.connection import service_transaction, tenant_transaction
from tekoa.domain.bots import BotAction, TradingMode
from tekoa.domain.execution import Account, OrderStatus
from tekoa.domain.orders import (
    NATIVE_STOP_LEG,
    OrderSide,
    OrderType,
    ProtectionSpec,
    StopSpec,
    TargetSpec,
    place,
)
from tekoa.domain.timeframes import Timeframe
from tekoa.exchanges import capabilities as capability_table
from tekoa.execution.live import CredentialBrokers
from tekoa.execution.messages import CancelMessage, OrderMessage, PlaceMessage, parse_message
from tekoa.execution.reconcile import Reconciler
from tekoa.market.sources import TradeBatch
from tekoa.market.stream.positions import PositionGuard
from tekoa.security.local_key import LocalFileKeyProvider
from tekoa.services import bots as bot_service
from tekoa.services import strategies as strategy_service
from tests.fakes.exchange import FakeBinance, FakeBinanceThread, FakeOrder, OrderFault
from tests.integration.evaluation.floor import Floor, closes_rows
from tests.integration.execution.desk import SYMBOL, now_ms


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinanceThread() as running:
        yield running


@dataclasses.dataclass
class Trader:
    user: UUID
    account: Account
    bot: UUID


@pytest.fixture
def trader(floor: Floor, fake: FakeBinance, tmp_path: Path) -> Trader:
    keys = LocalFileKeyProvider(tmp_path / "master.key")
    brokers = CredentialBrokers(
        floor.database, keys, url_overrides={"binance": fake.url_overrides()}, timeout_ms=1_000
    )
    desk = floor.desk
    desk.brokers = brokers
    user = desk.user()
    account = desk.live_account(user, fake, keys)
    bot = desk.bot(user, exchange="binance", credential_id=account.credential_id)
    desk.sync_live(
        user, account, Reconciler(floor.database, desk.executor(), brokers, queue=None, publisher=None)
    )
    return Trader(user, account, bot)


def _open(floor: Floor, trader: Trader, spec: ProtectionSpec) -> None:
    intent = place(
        str(trader.bot), 0, "entry", OrderSide.BUY, OrderType.MARKET, Decimal("0.01"), protection=spec
    )
    result = floor.desk.executor().handle(_message(trader, intent))
    assert result.status is OrderStatus.FILLED


def _message(trader: Trader, intent: Any) -> PlaceMessage:
    return PlaceMessage(
        user_id=trader.user,
        account_id=trader.account.id,
        bot_id=trader.bot,
        exchange="binance",
        symbol=SYMBOL,
        intent=intent,
        enqueued_at=now_ms(),
    )


def _batch(*prices: float) -> TradeBatch:
    n, start = len(prices), now_ms()
    return TradeBatch(
        "binance",
        SYMBOL,
        np.arange(start, start + n, dtype=np.int64),
        np.asarray(prices, dtype=np.float64),
        np.full(n, 0.01),
        np.arange(start, start + n, dtype=np.int64),
    )


def _sent(floor: Floor, guard: PositionGuard, *batches: TradeBatch) -> list[OrderMessage]:
    """Reload the guard, run the trades through it, send; the messages it queued (taken off the queue)."""
    asyncio.run(guard.refresh([SYMBOL], force=True))
    for batch in batches:
        guard.observe(batch)
    asyncio.run(guard.send())
    out: list[OrderMessage] = []
    while batch_ := floor.fifo.sqs.receive_message(QueueUrl=floor.fifo.url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for m in batch_:
            out.append(parse_message(m["Body"]))
            floor.fifo.sqs.delete_message(QueueUrl=floor.fifo.url, ReceiptHandle=m["ReceiptHandle"])
    return out


def _stops(fake: FakeBinance) -> list[FakeOrder]:
    return [o for o in fake.orders.values() if o.type == "STOP_LOSS"]


def _position(floor: Floor, trader: Trader) -> tuple[Decimal, bool]:
    with floor.database.connection() as conn, tenant_transaction(conn, trader.user):
        row = conn.execute(
            "SELECT quantity, closed_at IS NOT NULL FROM positions WHERE account_id = %s",
            (trader.account.id,),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_live_position_gets_one_native_stop_and_trades_never_fire_an_emulated_exit(
    floor: Floor, trader: Trader, fake: FakeBinance
) -> None:
    _open(floor, trader, ProtectionSpec(stop=StopSpec(kind="percent", value=Decimal(2))))
    guard = PositionGuard("binance", floor.database, floor.fifo.queue)

    (message,) = _sent(floor, guard)
    assert isinstance(message, PlaceMessage)
    assert message.intent.type is OrderType.STOP and message.intent.reduce_only
    assert message.intent.leg.startswith(NATIVE_STOP_LEG) and message.intent.price == Decimal(58_800)
    floor.desk.executor().handle(message)
    floor.desk.executor().handle(message)  # a redelivery places nothing more

    (stop,) = _stops(fake)
    assert (stop.side, stop.stop_price, stop.quantity, stop.status) == (
        "SELL",
        58_800,
        Decimal("0.01"),
        "NEW",
    )
    assert stop.client_order_id == message.intent.client_order_id
    # Reloads want the same stop: nothing is sent again, and a trade through it sends no exit.
    assert _sent(floor, guard) == []
    assert _sent(floor, guard, _batch(59_000.0, 58_500.0)) == []
    assert _sent(floor, guard) == []
    assert len(_stops(fake)) == 1


def test_a_moved_stop_replaces_the_order_and_its_fill_closes_the_position_once(
    floor: Floor, trader: Trader, fake: FakeBinance
) -> None:
    _open(floor, trader, ProtectionSpec(stop=StopSpec(kind="trailing_percent", value=Decimal(2))))
    guard = PositionGuard("binance", floor.database, floor.fifo.queue)
    executor = floor.desk.executor()
    (first,) = _sent(floor, guard)
    executor.handle(first)

    assert _sent(floor, guard, _batch(61_000.0)) == []  # the trailing anchor moves up: 59 780
    moved = _sent(floor, guard)  # written back, reloaded: the stop is replaced
    cancel = next(m for m in moved if isinstance(m, CancelMessage))
    place_new = next(m for m in moved if isinstance(m, PlaceMessage))
    assert len(moved) == 2 and cancel.target_client_order_id == first.intent.client_order_id
    assert place_new.intent.price == Decimal(59_780)
    for m in moved:
        executor.handle(m)
    old, new = sorted(_stops(fake), key=lambda o: o.order_id)
    assert (old.status, new.status, new.stop_price) == ("CANCELED", "NEW", Decimal(59_780))

    fake.set_price(SYMBOL, "59700")
    fake.fill_resting(new.client_order_id)
    (order,) = [
        o
        for o in floor.desk.orders(trader.user, trader.account)
        if o.id and o.type is OrderType.STOP and o.status not in (OrderStatus.CANCELED,)
    ]
    executor.follow_up(trader.user, trader.account.id, order.id)  # reconciliation's look-up
    executor.follow_up(trader.user, trader.account.id, order.id)  # and again: booked once

    assert _position(floor, trader) == (Decimal(0), True)
    assert floor.desk.order(trader.user, order.id).status is OrderStatus.FILLED
    assert floor.desk.balance(trader.user, trader.account, "BTC") == 0
    with floor.database.connection() as conn, tenant_transaction(conn, trader.user):
        (fills,) = conn.execute("SELECT count(*) FROM fills WHERE order_id = %s", (order.id,)).fetchone()  # type: ignore[misc]
    assert fills == 1
    assert _sent(floor, guard) == []  # a closed position wants no stop
    floor.desk.assert_ledger_consistent(trader.user, trader.account)


def test_another_exit_lifts_the_native_stop_and_the_rest_gets_a_new_one(
    floor: Floor, trader: Trader, fake: FakeBinance
) -> None:
    spec = ProtectionSpec(
        stop=StopSpec(kind="percent", value=Decimal(2)),
        targets=(TargetSpec(kind="percent", value=Decimal(1), size_fraction=Decimal("0.5")),),
        breakeven_after_first_target=True,
    )
    _open(floor, trader, spec)
    guard = PositionGuard("binance", floor.database, floor.fifo.queue)
    executor = floor.desk.executor()
    (first,) = _sent(floor, guard)
    executor.handle(first)

    fake.set_price(SYMBOL, "60700")
    (target,) = _sent(floor, guard, _batch(60_700.0))  # the emulated target, half the position
    assert isinstance(target, PlaceMessage) and target.intent.leg.startswith("target-1-")
    assert executor.handle(target).status is OrderStatus.FILLED  # the stop held it; it was lifted

    (lifted,) = [o for o in _stops(fake) if o.client_order_id == first.intent.client_order_id]
    assert lifted.status == "CANCELED"
    (again,) = _sent(floor, guard)  # the rest, at breakeven
    assert isinstance(again, PlaceMessage)
    assert (again.intent.quantity, again.intent.price) == (Decimal("0.005"), Decimal(60_000))
    executor.handle(again)
    executor.handle(target)  # a redelivered exit lifts nothing: it was claimed already
    assert [o.status for o in _stops(fake)] == ["CANCELED", "NEW"]
    floor.desk.assert_ledger_consistent(trader.user, trader.account)


def test_a_native_stop_the_exchange_rejected_is_emulated(
    floor: Floor, trader: Trader, fake: FakeBinance
) -> None:
    _open(floor, trader, ProtectionSpec(stop=StopSpec(kind="percent", value=Decimal(2))))
    guard = PositionGuard("binance", floor.database, floor.fifo.queue)
    (stop,) = _sent(floor, guard)
    fake.script_next_order(OrderFault.REJECT)
    assert floor.desk.executor().handle(stop).status is OrderStatus.REJECTED

    (exit_,) = _sent(floor, guard, _batch(58_500.0))  # not placed again; the stream keeps the stop

    assert isinstance(exit_, PlaceMessage) and exit_.intent.leg.startswith("stop-")
    assert exit_.intent.type is OrderType.MARKET and exit_.intent.quantity == Decimal("0.01")


def test_without_the_capability_the_stop_is_emulated(
    floor: Floor, trader: Trader, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    binance = capability_table.CAPABILITIES["binance"]
    monkeypatch.setitem(
        capability_table.CAPABILITIES, "binance", dataclasses.replace(binance, native_stop_orders=False)
    )
    _open(floor, trader, ProtectionSpec(stop=StopSpec(kind="percent", value=Decimal(2))))
    guard = PositionGuard("binance", floor.database, floor.fifo.queue)

    assert _sent(floor, guard) == []
    (exit_,) = _sent(floor, guard, _batch(59_000.0, 58_500.0))

    assert isinstance(exit_, PlaceMessage) and exit_.intent.type is OrderType.MARKET
    assert exit_.intent.leg.startswith("stop-")
    fake.set_price(SYMBOL, "58500")
    assert floor.desk.executor().handle(exit_).status is OrderStatus.FILLED
    assert _position(floor, trader) == (Decimal(0), True)
    assert _stops(fake) == []


@pytest.mark.parametrize("native", [True, False])
def test_the_candle_close_fallback_leaves_a_native_stop_to_the_exchange(
    floor: Floor, trader: Trader, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    from tests.integration.evaluation.test_evaluator import DCA_1M

    if not native:
        binance = capability_table.CAPABILITIES["binance"]
        monkeypatch.setitem(
            capability_table.CAPABILITIES, "binance", dataclasses.replace(binance, native_stop_orders=False)
        )
    strategy = strategy_service.create_strategy(
        floor.database,
        trader.user,
        strategy_service.StrategyCreate.model_validate({"name": "dca", "definition": DCA_1M}),
    )
    bot = bot_service.create_bot(
        floor.database,
        trader.user,
        bot_service.BotCreate(
            name="live dca",
            strategy_id=strategy.id,
            exchange="binance",
            symbol=SYMBOL,
            mode=TradingMode.LIVE,
            credential_id=trader.account.credential_id,
            confirm_live=True,
        ),
    )
    bot_service.change_status(floor.database, trader.user, bot.id, BotAction.START)
    trader = dataclasses.replace(trader, bot=bot.id)
    _open(floor, trader, ProtectionSpec(stop=StopSpec(kind="percent", value=Decimal(2))))
    for message in _sent(floor, PositionGuard("binance", floor.database, floor.fifo.queue)):
        floor.desk.executor().handle(message)  # the native stop, when the exchange has them
    closes = [60_000.0] * 50 + [58_000.0]
    last = (now_ms() // 60_000 - 1) * 60_000
    with floor.database.connection() as conn, service_transaction(conn):
        copy_ohlcv(conn, "binance", SYMBOL, Timeframe.M1, closes_rows(closes, last - 50 * 60_000))
        market_rows.record_last_trades(
            conn, [market_rows.LastTrade("binance", SYMBOL, Decimal(58_000), now_ms())]
        )

    report = floor.tick()

    stops = [m for m in floor.queued() if isinstance(m, PlaceMessage) and m.intent.leg.startswith("stop-")]
    assert report.evaluated == 1
    assert len(stops) == (0 if native else 1)

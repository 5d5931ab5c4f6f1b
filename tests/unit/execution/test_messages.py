"""Order-queue messages: exact round trips, business-key deduplication, malformed bodies."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest
from pydantic import ValidationError

from tekoa.domain.orders import OrderSide, OrderType, place
from tekoa.execution.messages import (
    CancelMessage,
    PlaceMessage,
    TriggerMessage,
    dedup_id,
    dump_message,
    group_id,
    parse_message,
)


def a_place() -> PlaceMessage:
    bot = uuid4()
    return PlaceMessage(
        user_id=uuid4(),
        account_id=uuid4(),
        bot_id=bot,
        exchange="simulated",
        symbol="btc/usdt",
        intent=place(
            str(bot),
            1_717_200_000_000,
            "entry",
            OrderSide.BUY,
            OrderType.LIMIT,
            Decimal("0.00123"),
            price=Decimal("59000.10"),
        ),
        enqueued_at=1_717_200_000_123,
    )


def test_a_message_round_trips_exactly_and_keys_on_its_business_ids() -> None:
    message = a_place()

    again = parse_message(dump_message(message))

    assert again == message and again.symbol == "BTC/USDT"
    assert dedup_id(message) == message.intent.client_order_id
    assert group_id(message) == str(message.account_id)
    cancel = CancelMessage(
        user_id=message.user_id, account_id=message.account_id, target_client_order_id="tkabc", enqueued_at=1
    )
    assert dedup_id(cancel) == "cancel-tkabc"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"kind": "explode"}',
        '{"kind": "place", "intent": "not an intent"}',
        '{"kind": "execute", "user_id": "nobody"}',
    ],
)
def test_malformed_bodies_are_refused(body: str) -> None:
    with pytest.raises(ValidationError):
        parse_message(body)


def test_an_intent_must_belong_to_the_messages_bot() -> None:
    message = a_place()
    with pytest.raises(ValidationError, match="bot_id"):
        PlaceMessage.model_validate({**message.model_dump(), "bot_id": uuid4()})


def test_a_trigger_carries_a_trade_or_a_candle() -> None:
    common = {
        "user_id": uuid4(),
        "account_id": uuid4(),
        "order_id": uuid4(),
        "client_order_id": "tk1",
        "trade_id": "1",
        "trade_time": 1,
        "enqueued_at": 1,
    }
    with pytest.raises(ValidationError, match="either"):
        TriggerMessage.model_validate(common)
    assert TriggerMessage.model_validate({**common, "price": "1.5"}).price == Decimal("1.5")


def test_triggers_deduplicate_per_order_and_trade_within_sqs_limits() -> None:
    order_id = uuid4()

    def trigger(trade_id: str) -> TriggerMessage:
        return TriggerMessage(
            user_id=uuid4(),
            account_id=uuid4(),
            order_id=order_id,
            client_order_id="tk1",
            trade_id=trade_id,
            trade_time=1,
            price=Decimal("1.5"),
            enqueued_at=1,
        )

    keys = {dedup_id(trigger(t)) for t in ("1", "2", "candle-1717200000000", "x" * 100, "y" * 100)}

    assert len(keys) == 5
    assert all(len(key) <= 128 and str(order_id) in key for key in keys)

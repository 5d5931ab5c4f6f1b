"""Sell fills on the bus reach the chart queue, as EventBridge's rule routes them in AWS, in
the shape the chart function parses."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

import pytest

from tekoa.aws.clients import aws_client
from tekoa.aws.events import BusEvent, EventBridgePublisher
from tekoa.charts.messages import OrderFilledEvent, RenderChart, parse_chart_message
from tekoa.names import EVENT_SOURCE, EventType


def _drain(sqs: Any, queue_url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = received.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _fill(side: str, user_id: uuid.UUID, bot_id: uuid.UUID | None) -> BusEvent:
    return BusEvent(
        EventType.ORDER_FILLED,
        {
            "user_id": str(user_id),
            "order_id": str(uuid.uuid4()),
            "bot_id": None if bot_id is None else str(bot_id),
            "side": side,
            "symbol": "BTC/USDT",
            "status": "filled",
        },
    )


def test_sell_fills_reach_the_chart_queue_and_buys_do_not(aws_settings: Any) -> None:
    sqs = aws_client("sqs", aws_settings)
    queue_url = sqs.get_queue_url(QueueName=aws_settings.names.chart_queue)["QueueUrl"]
    _drain(sqs, queue_url)
    user, bot = uuid.uuid4(), uuid.uuid4()

    EventBridgePublisher(aws_settings).publish([_fill("buy", user, bot), _fill("sell", user, bot)])

    (body,) = _drain(sqs, queue_url)
    message = parse_chart_message(body)
    assert isinstance(message, OrderFilledEvent)
    assert (message.detail.user_id, message.detail.bot_id) == (user, bot)
    assert json.loads(body)["detail"]["side"] == "sell"


def test_a_render_request_parses() -> None:
    chart, user = uuid.uuid4(), uuid.uuid4()
    message = parse_chart_message(
        json.dumps({"kind": "render", "chart_id": str(chart), "user_id": str(user)})
    )
    assert message == RenderChart(kind="render", chart_id=chart, user_id=user)


@pytest.mark.parametrize(
    "body",
    [
        '{"kind": "render"}',
        '{"detail-type": "order.filled", "source": "elsewhere", "detail": {"user_id": "x"}}',
        "not json",
    ],
)
def test_a_malformed_message_is_refused(body: str) -> None:
    with pytest.raises(ValueError):  # pydantic's ValidationError and json's decode error both are
        parse_chart_message(body)


def test_the_event_literals_are_the_bus_names() -> None:
    fields = OrderFilledEvent.model_fields
    assert fields["detail_type"].annotation == Literal[EventType.ORDER_FILLED]  # type: ignore[comparison-overlap]
    assert fields["source"].annotation == Literal[EVENT_SOURCE]  # type: ignore[comparison-overlap]

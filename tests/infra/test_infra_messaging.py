"""MessagingStack: the order queue is FIFO with business-key deduplication and a FIFO DLQ; every
queue is encrypted and refuses plain HTTP; the bus carries the platform's name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match
from cdk_helpers import only_resource, resources_of_type

from tekoa.names import TRADE_CHART_EVENTS, ResourceNames

pytestmark = pytest.mark.xdist_group("infra")
NAMES = ResourceNames("dev")


def test_order_queue_is_fifo_and_deduplicates_by_producer_id_not_content(messaging_template: Any) -> None:
    _, queue = only_resource(messaging_template, "AWS::SQS::Queue", QueueName=NAMES.order_queue)
    assert queue["Properties"]["FifoQueue"] is True
    assert queue["Properties"]["ContentBasedDeduplication"] is False


def test_poison_orders_move_to_a_fifo_dlq_after_five_receives(messaging_template: Any) -> None:
    dlq_id, dlq = only_resource(messaging_template, "AWS::SQS::Queue", QueueName=NAMES.order_dlq)
    _, queue = only_resource(messaging_template, "AWS::SQS::Queue", QueueName=NAMES.order_queue)
    assert dlq["Properties"]["FifoQueue"] is True
    assert queue["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": 5,
    }


def test_chart_queue_redrives_to_its_dlq(messaging_template: Any) -> None:
    dlq_id, _ = only_resource(messaging_template, "AWS::SQS::Queue", QueueName=NAMES.chart_dlq)
    _, queue = only_resource(messaging_template, "AWS::SQS::Queue", QueueName=NAMES.chart_queue)
    assert queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert queue["Properties"].get("FifoQueue", False) is False


def test_every_queue_is_encrypted_and_refuses_plain_http(messaging_template: Any) -> None:
    queues = resources_of_type(messaging_template, "AWS::SQS::Queue")
    assert len(queues) == 4
    assert all(q["Properties"]["SqsManagedSseEnabled"] is True for q in queues.values())
    guarded: set[str] = set()
    for policy in resources_of_type(messaging_template, "AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ):
            guarded.update(ref["Ref"] for ref in policy["Properties"]["Queues"])
    assert guarded == set(queues)


def test_event_bus_has_the_platform_name(messaging_template: Any) -> None:
    messaging_template.has_resource_properties("AWS::Events::EventBus", {"Name": NAMES.event_bus})
    messaging_template.has_resource_properties("AWS::Events::EventBus", Match.not_({"Name": "default"}))


def test_sell_fills_on_the_bus_are_routed_to_the_chart_queue(messaging_template: Any) -> None:
    _, rule = only_resource(messaging_template, "AWS::Events::Rule")
    props = rule["Properties"]
    bus_id, _ = only_resource(messaging_template, "AWS::Events::EventBus")
    queue_id, _ = only_resource(messaging_template, "AWS::SQS::Queue", QueueName=NAMES.chart_queue)
    assert props["EventBusName"] == {"Ref": bus_id}
    # The same pattern the local cloud's rule is made from.
    assert props["EventPattern"] == TRADE_CHART_EVENTS.pattern()
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    # EventBridge may send to the queue, and only for this rule.
    allowed = [
        s
        for policy in resources_of_type(messaging_template, "AWS::SQS::QueuePolicy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    (statement,) = allowed
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert set(statement["Action"]) == {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    assert statement["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert "aws:SourceArn" in json.dumps(statement["Condition"])

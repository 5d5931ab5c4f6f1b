"""Queues with dead-letter queues, and the platform's event bus."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constants import DLQ_RETENTION, QUEUE_VISIBILITY_TIMEOUT
from infra.nag import acknowledge


class QueueWithDeadLetters(Construct):
    """A work queue whose poison messages move to a DLQ after `max_receive_count` tries.

    FIFO queues keep content-based deduplication off: producers set MessageDeduplicationId to
    the business key (client_order_id), so a retried send is dropped even when its body differs
    (e.g. a new timestamp), which hashing the body would not catch.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queue_name: str,
        dlq_name: str,
        fifo: bool,
        max_receive_count: int,
        visibility_timeout: Duration = QUEUE_VISIBILITY_TIMEOUT,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=dlq_name,
            fifo=fifo,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=queue_name,
            fifo=fifo,
            content_based_deduplication=False if fifo else None,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=max_receive_count
            ),
        )
        acknowledge(
            self.dead_letter_queue, "This queue is itself the dead-letter queue.", "AwsSolutions-SQS3"
        )


class PlatformEventBus(Construct):
    """The custom bus carrying candle.closed, order.filled, bot.status_changed, risk.tripped."""

    def __init__(self, scope: Construct, construct_id: str, *, bus_name: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name)

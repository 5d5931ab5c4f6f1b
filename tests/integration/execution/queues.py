"""A fresh FIFO order queue with its dead-letter queue on the moto server, per test."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from tekoa.aws.clients import aws_client
from tekoa.aws.queues import SqsOrderQueue
from tekoa.local.sqs_poller import lambda_record


@dataclass
class FifoQueue:
    sqs: Any
    url: str
    dlq_url: str
    queue: SqsOrderQueue

    def receive_event(self, count: int = 10) -> dict[str, Any]:
        """One batch as Lambda's event source mapping would deliver it."""
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=count, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return {"Records": [lambda_record(m, arn, "us-east-1") for m in messages]}

    def send_raw(self, body: str, group: str, dedup: str) -> None:
        self.sqs.send_message(
            QueueUrl=self.url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=dedup
        )

    def depth(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def fifo_queue(settings: Any, *, max_receive_count: int = 5, visibility_timeout_s: int = 30) -> FifoQueue:
    sqs = aws_client("sqs", settings)
    name = f"t-{uuid.uuid4().hex[:12]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=f"{name}.fifo",
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "VisibilityTimeout": str(visibility_timeout_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return FifoQueue(sqs, url, dlq_url, SqsOrderQueue(settings, queue_url=url))

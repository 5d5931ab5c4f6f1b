"""Lambda's SQS event source mapping, locally: poll a queue, invoke a handler with batches.

Behaves as the mapping does for the handlers we run: long-polls up to `batch_size` messages,
hands them over as an `{"Records": [...]}` event of Lambda's SQS shape, deletes the records the
handler did not list in `batchItemFailures` (ReportBatchItemFailures), and leaves the failed
ones (or the whole batch, if the handler raises) to reappear after the visibility timeout.
Redrive to the dead-letter queue after maxReceiveCount is the queue's own (SQS, or moto).

It long-polls as the mapping does, for `wait_s` (1 s: a stopping part waits at most that long
for its receive to return). An idle queue then costs a request per second, not fifty; the
local AWS endpoint answers a long poll the moment a message arrives or a message group frees
(`tekoa.local.aws`: moto's own long poll spins in that case).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tekoa.observability import logger

Handler = Callable[[dict[str, Any], Any], dict[str, Any] | None]


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping delivers it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class SqsPoller:
    """Feeds one queue to one handler, batch by batch (see the module docstring)."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        wait_s: int = 1,
        region: str = "us-east-1",
    ) -> None:
        if not 1 <= batch_size <= 10:
            raise ValueError("SQS batches hold 1 to 10 messages")
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._wait_s = wait_s
        self._region = region
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self._queue_arn = str(attributes["Attributes"]["QueueArn"])
        self.batches = 0
        self.failures = 0

    def poll_once(self, wait_s: int = 0) -> int:
        """Receive one batch (waiting up to `wait_s` for one), invoke the handler; messages
        received."""
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages") or []
        if not messages:
            return 0
        records = [lambda_record(m, self._queue_arn, self._region) for m in messages]
        self.batches += 1
        try:
            result = self._handler({"Records": records}, None) or {}
        except Exception:
            # An invocation error: Lambda retries the whole batch after the visibility timeout.
            logger.exception("handler failed the whole batch", extra={"messages": len(records)})
            self.failures += len(records)
            return len(records)
        failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        self.failures += len(failed)
        done = [
            {"Id": str(index), "ReceiptHandle": record["receiptHandle"]}
            for index, record in enumerate(records)
            if record["messageId"] not in failed
        ]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=done)
        return len(records)

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; a failing poll is logged and retried."""
        while not stop.is_set():
            try:
                self.poll_once(self._wait_s)
            except Exception:
                logger.exception("polling the queue failed", extra={"queue": self._queue_url})
                stop.wait(1.0)

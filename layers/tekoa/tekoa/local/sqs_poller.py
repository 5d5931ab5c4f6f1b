"""Lambda's SQS event source mapping, locally: poll a queue, invoke a handler with batches.

Behaves as the mapping does for the handlers we run: long-polls up to `batch_size` messages,
hands them over as an `{"Records": [...]}` event of Lambda's SQS shape, deletes the records the
handler did not list in `batchItemFailures` (ReportBatchItemFailures), and leaves the failed
ones (or the whole batch, if the handler raises) to reappear after the visibility timeout.
Redrive to the dead-letter queue after maxReceiveCount is the queue's own (SQS, or moto).

Unlike the mapping it short-polls, pausing `idle_s` after an empty receive: moto's long poll
spins while the visible messages all belong to message groups in flight (a FIFO queue with a
few busy accounts is in that state most of the time), and that spin starves moto's server of
the time it needs to answer everyone else.
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
        idle_s: float = 0.02,
        region: str = "us-east-1",
    ) -> None:
        if not 1 <= batch_size <= 10:
            raise ValueError("SQS batches hold 1 to 10 messages")
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._idle_s = idle_s
        self._region = region
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self._queue_arn = str(attributes["Attributes"]["QueueArn"])
        self.batches = 0
        self.failures = 0

    def poll_once(self) -> int:
        """Receive one batch (if any is waiting), invoke the handler; messages received."""
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=0,
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
                if not self.poll_once():
                    stop.wait(self._idle_s)
            except Exception:
                logger.exception("polling the queue failed", extra={"queue": self._queue_url})
                stop.wait(1.0)

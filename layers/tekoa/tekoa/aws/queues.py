"""The order queue (SQS FIFO): a small port and its boto3 adapter.

Producers (the API, the evaluator, the market stream, reconciliation) send
`tekoa.execution.messages` models; the group is the account and the deduplication id the
order's business key, so SQS drops a repeated send within its five-minute window and the
executor's unique constraint catches anything later.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from tekoa.aws.clients import aws_client
from tekoa.execution.messages import OrderMessage, dedup_id, dump_message, group_id
from tekoa.observability import logger
from tekoa.settings import Settings

MAX_BATCH = 10
"""SendMessageBatch takes at most ten entries."""


class SendFailed(RuntimeError):
    """Some messages were refused after the retries."""


class OrderQueue(Protocol):
    def send(self, messages: Sequence[OrderMessage]) -> None:
        """Enqueue every message or raise SendFailed."""
        ...


class SqsOrderQueue:
    """`OrderQueue` on the stage's FIFO queue."""

    def __init__(self, settings: Settings, *, queue_url: str | None = None, attempts: int = 3) -> None:
        self._settings = settings
        self._queue_name = settings.names.order_queue
        self._queue_url = queue_url
        self._attempts = attempts

    @property
    def _client(self) -> Any:
        # Built on first use: an API process that never queues an order never pays for it.
        return aws_client("sqs", self._settings)

    @property
    def url(self) -> str:
        if self._queue_url is None:
            self._queue_url = str(self._client.get_queue_url(QueueName=self._queue_name)["QueueUrl"])
        return self._queue_url

    def send(self, messages: Sequence[OrderMessage]) -> None:
        for start in range(0, len(messages), MAX_BATCH):
            self._send_batch(messages[start : start + MAX_BATCH])

    def _send_batch(self, messages: Sequence[OrderMessage]) -> None:
        entries = {
            str(index): {
                "Id": str(index),
                "MessageBody": dump_message(message),
                "MessageGroupId": group_id(message),
                "MessageDeduplicationId": dedup_id(message),
            }
            for index, message in enumerate(messages)
        }
        for attempt in range(self._attempts):
            response = self._client.send_message_batch(QueueUrl=self.url, Entries=list(entries.values()))
            failed = response.get("Failed") or []
            if not failed:
                return
            logger.warning(
                "order queue refused messages",
                extra={
                    "failed": len(failed),
                    "codes": sorted({f.get("Code") for f in failed}),
                    "attempt": attempt + 1,
                },
            )
            entries = {f["Id"]: entries[f["Id"]] for f in failed if not f.get("SenderFault")} or {}
            if not entries:
                raise SendFailed(f"{len(failed)} order messages refused: {failed[0].get('Message')}")
            time.sleep(0.1 * 2**attempt)
        raise SendFailed(f"{len(entries)} order messages still refused after {self._attempts} attempts")

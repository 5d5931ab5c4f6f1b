"""Lambda entry point of the executor: batches of the order FIFO queue.

Powertools' FIFO batch processor handles the records in order and reports partial failures
(`ReportBatchItemFailures`): a record that failed for a passing reason, and the records of
its message group after it, come back for a retry, while the other accounts' orders go on.
A poison message — malformed, or one that can never apply (an unknown account or order) — is
logged with its reason, does not hold its group back, and is made visible again at once, so it
reaches the dead-letter queue after maxReceiveCount tries within seconds.
Order events are published after the whole batch committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn
from uuid import UUID

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    ExceptionInfo,
    FailureResponse,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tekoa.aws.clients import aws_client
from tekoa.aws.events import BusEvent
from tekoa.db.connection import Database
from tekoa.execution.executor import Executor, MessageNotApplicable, OrderPending, Result
from tekoa.execution.messages import OrderMessage, parse_message
from tekoa.observability import logger, tracer
from tekoa.settings import Settings, get_settings


class PoisonMessage(Exception):
    """A record that will never succeed; it goes to the DLQ after its retries."""


class AccountOrderedProcessor(SqsFifoPartialProcessor):
    """FIFO batch processing where a poison message does not hold its group back.

    A record that failed for a reason that may pass (the exchange is unreachable, an order is
    in flight elsewhere) fails the rest of its message group, so an account's orders keep
    their order. A poison message never succeeds, so nothing can come before it: the records
    after it are handled, and only it goes back (and on to the DLQ). Otherwise the records
    behind it would be received and returned with it until they too reached maxReceiveCount.
    """

    def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse:
        if exception[0] is not None and issubclass(exception[0], PoisonMessage):
            return BatchProcessor.failure_handler(self, record, exception)
        return super().failure_handler(record, exception)


class ExecutorHandler:
    """One batch in, a partial batch response out."""

    def __init__(self, executor: Executor, *, sqs_client: Any = None) -> None:
        self.executor = executor
        self._sqs = sqs_client
        self.processor = AccountOrderedProcessor(skip_group_on_error=True)
        # Report an all-failed batch as a response too, rather than an invocation error:
        # the event source mapping treats both alike, and the local poller reads one shape.
        self.processor.raise_on_entire_batch_failure = False

    def __call__(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        # The batch is carried out first, as a batch (`Executor.handle_batch`: new orders of
        # different accounts share one transaction); the processor then reports each record's
        # outcome in order, so partial failures and group skipping stay Powertools' own.
        parsed: dict[str, OrderMessage | str] = {}
        for record in event.get("Records", []):
            parsed[record["messageId"]] = _parse(record["body"])
        messages = [(mid, m) for mid, m in parsed.items() if not isinstance(m, str)]
        outcomes = dict(
            zip(
                (mid for mid, _ in messages),
                self.executor.handle_batch([m for _, m in messages]),
                strict=True,
            )
        )
        published: list[tuple[UUID, BusEvent]] = []
        response = process_partial_response(
            event=event,
            record_handler=self._record_handler(parsed, outcomes, published),
            processor=self.processor,
            context=context,
        )
        self.executor.publish(published)
        return dict(response)

    def _record_handler(
        self,
        parsed: dict[str, OrderMessage | str],
        outcomes: dict[str, Result | Exception],
        published: list[tuple[UUID, BusEvent]],
    ) -> Callable[[SQSRecord], None]:
        def handle(record: SQSRecord) -> None:
            group = record.attributes.message_group_id or ""
            context = {"message_id": record.message_id, "group": group}
            message = parsed[record.message_id]
            if isinstance(message, str):
                self._poison(record, f"malformed order message: {message}", context)
            result = outcomes[record.message_id]
            if isinstance(result, MessageNotApplicable):
                self._poison(record, f"order message cannot apply: {result}", context)
            if isinstance(result, OrderPending):
                logger.info("order pending; retried later", extra={**context, "reason": str(result)})
            if isinstance(result, Exception):
                raise result
            published.extend(result.events)
            logger.info(
                "order message handled",
                extra={
                    **context,
                    "kind": message.kind,
                    "account_id": str(message.account_id),
                    "outcome": result.outcome.value,
                    "order_id": str(result.order_id),
                },
            )

        return handle

    def _poison(self, record: SQSRecord, reason: str, context: dict[str, Any]) -> NoReturn:
        logger.error(reason, extra={**context, "receive_count": record.attributes.approximate_receive_count})
        self._release(record)
        raise PoisonMessage(reason)

    def _release(self, record: SQSRecord) -> None:
        """Make a failed record visible again now (it goes to the DLQ after maxReceiveCount)."""
        if self._sqs is None:
            return
        try:
            queue_name = record.event_source_arn.rsplit(":", 1)[-1]
            queue_url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            self._sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=0
            )
        except Exception:
            logger.exception(
                "could not release a failed message early", extra={"message_id": record.message_id}
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> ExecutorHandler:
        """The executor this deployment runs (see `build_executor`), on a Lambda's connection."""
        from functools import partial

        from tekoa.aws.secrets import database_conninfo
        from tekoa.db.connection import LambdaDatabase

        database = LambdaDatabase(
            partial(database_conninfo, settings), timeout_s=settings.db_connect_timeout_s
        )
        return cls(build_executor(settings, database), sqs_client=aws_client("sqs", settings))


def build_executor(settings: Settings, database: Database, *, publish: bool = True) -> Executor:
    """The executor this deployment runs: its database, credentials, event bus and costs.

    `publish`: put each batch's events on the bus once the batch committed (a Lambda, which has
    nothing running between invocations); without, they wait in the outbox for a relay
    (`tekoa.execution.relay`, beside the local pollers)."""
    from tekoa.aws.events import EventBridgePublisher
    from tekoa.execution.admission import CostModel
    from tekoa.execution.executor import ExecutorConfig
    from tekoa.execution.live import CredentialBrokers
    from tekoa.security import key_provider_for

    return Executor(
        database,
        CredentialBrokers(database, key_provider_for(settings)),
        publisher=EventBridgePublisher(settings) if publish else None,
        config=ExecutorConfig(costs=CostModel.from_settings(settings)),
    )


def _parse(body: str) -> OrderMessage | str:
    """The message, or why it is malformed."""
    try:
        return parse_message(body)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3])


_handler: ExecutorHandler | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Handle one batch of order messages; answers `{"batchItemFailures": [...]}`."""
    global _handler
    if _handler is None:
        _handler = ExecutorHandler.from_settings(get_settings())
    return _handler(event, context)

"""Lambda entry point of the chart function: batches of the chart queue.

The queue carries two kinds of message: render requests the API queued for a stored chart
(`{"kind": "render", "chart_id", "user_id"}`), and `order.filled` events that EventBridge
routes here for bot orders, which render the bot's chart when the fill closed a trade (once
the candle it closed in is stored: until then the event goes back on the queue, delayed).
Powertools' batch processor reports partial failures (`ReportBatchItemFailures`), so a chart
that failed for a passing reason is retried without the rest of its batch; a malformed
message fails every time and reaches the dead-letter queue after maxReceiveCount.

Cold start: the image carries matplotlib's font list and numba's compiled kernels
(`tekoa.charts.caches`), copied to /tmp before either library loads; a first tiny render
then warms matplotlib during init, so the first real chart renders at warm speed.
"""

from __future__ import annotations

from tekoa.charts.caches import seed_caches

seed_caches()

# The caches must be in place before matplotlib and numba load: imports after the seeding.
from functools import partial  # noqa: E402
from typing import Any  # noqa: E402

from aws_lambda_powertools.utilities.batch import (  # noqa: E402
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from tekoa.aws.charts import S3ChartObjects, SqsChartRequests  # noqa: E402
from tekoa.charts.messages import RenderChart, parse_chart_message  # noqa: E402
from tekoa.charts.render import warm_up  # noqa: E402
from tekoa.charts.worker import ChartWorker, RenderOutcome  # noqa: E402
from tekoa.observability import logger, tracer  # noqa: E402
from tekoa.settings import Settings, get_settings  # noqa: E402

warm_up()


class ChartHandler:
    """One batch of chart messages in, a partial batch response out."""

    def __init__(self, worker: ChartWorker) -> None:
        self.worker = worker
        self.processor = BatchProcessor(event_type=EventType.SQS)
        # An all-failed batch is a response too (the event source mapping treats both alike,
        # and the local poller reads one shape).
        self.processor.raise_on_entire_batch_failure = False

    def __call__(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        return dict(
            process_partial_response(
                event=event, record_handler=self._record, processor=self.processor, context=context
            )
        )

    def _record(self, record: SQSRecord) -> None:
        message = parse_chart_message(record.body)
        outcome: RenderOutcome | None
        if isinstance(message, RenderChart):
            outcome = self.worker.render(message.user_id, message.chart_id)
        else:
            outcome = self.worker.render_after_fill(message.detail)
        logger.info(
            "chart message handled",
            extra={"message_id": record.message_id, "outcome": None if outcome is None else outcome.value},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ChartHandler:
        """The handler this deployment runs: its database and the charts bucket."""
        from tekoa.aws.secrets import database_conninfo
        from tekoa.db.connection import LambdaDatabase

        database = LambdaDatabase(
            partial(database_conninfo, settings), timeout_s=settings.db_connect_timeout_s
        )
        return cls(ChartWorker(database, S3ChartObjects(settings), SqsChartRequests(settings)))


_handler: ChartHandler | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Handle one batch of chart messages; answers `{"batchItemFailures": [...]}`."""
    global _handler
    if _handler is None:
        _handler = ChartHandler.from_settings(get_settings())
    return _handler(event, context)

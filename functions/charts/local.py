"""The chart function for `tekoa up` (the `charts` part): its Lambda handler fed as Lambda's SQS
event source mapping feeds it (`tekoa.local.sqs_poller`: batches, partial batch failures, the
queue's own redrive to the dead-letter queue).

One poller, as one warm container: renders are serialised by the renderer's lock anyway.
"""

from __future__ import annotations

import threading

from tekoa.local.process import stop_on_signals
from tekoa.local.sqs_poller import SqsPoller
from tekoa.settings import get_settings

BATCH_SIZE = 5
"""As the CDK event source's (`infra.constants.CHARTS_BATCH_SIZE`)."""


def serve() -> None:
    """Poll the chart queue and render its messages until SIGTERM."""
    # The handler's module seeds the image caches before matplotlib loads: import it first.
    from functions.charts.handler import ChartHandler
    from tekoa.aws.clients import aws_client
    from tekoa.observability import logger

    settings = get_settings()
    if settings.database_url is None:
        raise RuntimeError("the local chart function needs DATABASE_URL (tekoa up sets it)")
    sqs = aws_client("sqs", settings)
    queue_url = sqs.get_queue_url(QueueName=settings.names.chart_queue)["QueueUrl"]
    stop = threading.Event()
    stop_on_signals(stop.set)
    poller = SqsPoller(
        sqs,
        queue_url,
        ChartHandler.from_settings(settings),
        batch_size=BATCH_SIZE,
        region=settings.aws_region,
    )
    logger.info("chart function polling", extra={"queue": queue_url})
    poller.run(stop)

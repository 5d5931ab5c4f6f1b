"""The executor for `tekoa up` (the `executor` part): the Lambda handler fed as Lambda's SQS event
source mapping feeds it (`tekoa.local.sqs_poller`: batches of ten, partial batch failures, the
queue's own redrive to the dead-letter queue).

`POLLERS` pollers run side by side, as concurrent Lambda invocations do: each has its own
handler (an instance handles one batch at a time), all share one executor and its pool. The
handlers leave their events in the outbox, and an `OutboxRelay` beside them puts them on the
bus, so a batch never waits on the bus (locally moto's, the slowest part of the path).
"""

from __future__ import annotations

import threading
from typing import Any

from functions.executor.handler import ExecutorHandler, build_executor
from tekoa.aws.clients import aws_client
from tekoa.aws.events import EventBridgePublisher
from tekoa.db.connection import Database, PooledDatabase
from tekoa.execution.executor import Executor
from tekoa.execution.relay import OutboxRelay
from tekoa.local.process import stop_on_signals
from tekoa.local.sqs_poller import SqsPoller
from tekoa.observability import logger
from tekoa.settings import Settings, get_settings

POLLERS = 3


def start(
    settings: Settings, database: Database, executor: Executor, stop: threading.Event
) -> list[threading.Thread]:
    """The pollers on the order queue and the outbox relay, running until `stop` is set."""
    sqs: Any = aws_client("sqs", settings)
    queue_url = sqs.get_queue_url(QueueName=settings.names.order_queue)["QueueUrl"]
    pollers = [
        SqsPoller(
            sqs,
            queue_url,
            ExecutorHandler(executor, sqs_client=sqs),
            batch_size=10,
            region=settings.aws_region,
        )
        for _ in range(POLLERS)
    ]
    relay = OutboxRelay(database, EventBridgePublisher(settings))
    threads = [
        threading.Thread(target=poller.run, args=(stop,), name=f"executor-poller-{n}")
        for n, poller in enumerate(pollers)
    ]
    threads.append(threading.Thread(target=relay.run, args=(stop,), name="executor-outbox-relay"))
    for thread in threads:
        thread.start()
    logger.info("executor polling", extra={"queue": queue_url, "pollers": POLLERS})
    return threads


def serve() -> None:
    """Poll the order queue and execute its batches until SIGTERM."""
    settings = get_settings()
    if settings.database_url is None:
        raise RuntimeError("the local executor needs DATABASE_URL (tekoa up sets it)")
    database = PooledDatabase(settings.database_url, max_size=POLLERS + 2)
    stop = threading.Event()
    stop_on_signals(stop.set)
    threads = start(settings, database, build_executor(settings, database, publish=False), stop)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        database.close()

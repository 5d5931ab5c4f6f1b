"""The evaluator's `candle.closed` invocations for `tekoa up` (the `evaluator` part).

In AWS the bus rule invokes the function; locally the same rule delivers to a queue
(`tekoa.local.aws.provision`) and this part hands each event, as the rule matched it, to the
same Lambda handler. The schedule's invocations come from the `scheduler` part.
"""

from __future__ import annotations

import json
import threading

from functions.evaluator.handler import EvaluatorHandler, build_evaluator
from tekoa.aws.clients import aws_client
from tekoa.db.connection import PooledDatabase
from tekoa.local.process import stop_on_signals
from tekoa.observability import logger
from tekoa.settings import get_settings


def serve() -> None:
    """Evaluate every candle.closed event until SIGTERM."""
    settings = get_settings()
    if settings.database_url is None:
        raise RuntimeError("the local evaluator needs DATABASE_URL (tekoa up sets it)")
    database = PooledDatabase(settings.database_url, max_size=2)
    handler = EvaluatorHandler(build_evaluator(settings, database))
    sqs = aws_client("sqs", settings)
    queue_url = sqs.get_queue_url(QueueName=settings.names.evaluator_events_queue)["QueueUrl"]
    stop = threading.Event()
    stop_on_signals(stop.set)
    logger.info("evaluator listening for candle.closed", extra={"queue": queue_url})
    try:
        while not stop.is_set():
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            for message in messages:
                try:
                    handler(json.loads(message["Body"]), None)
                except Exception:
                    # As an asynchronous invocation: logged, and the next event goes on.
                    logger.exception("evaluator invocation failed")
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    finally:
        database.close()

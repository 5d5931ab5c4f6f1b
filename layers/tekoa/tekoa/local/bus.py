"""The `bus` part of `tekoa up`: EventBridge rules invoking their functions, locally.

`provision` gave every rule of `tekoa.bus_rules.BUS_RULES` an SQS queue as its target on moto's
bus, so moto does the matching. Here each rule has a thread (its own "function") that takes the
events from its queue and calls the rule's handler with each, one at a time, as Lambda's
asynchronous invocation does. A handler that raises gets the event again after the queue's
visibility timeout, twice at most (Lambda retries an asynchronous event twice), then it is
dropped with an error in the log. The notification retry queue is fed to the notify handler
the same way, as Lambda's SQS event source does (`{"Records": [...]}`).

It long-polls for a second at a time: the local AWS endpoint answers the moment an event
arrives, so a live update waits for no polling interval, and an idle rule costs one request a
second (a stopping part waits at most that long for its receive to return).
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from tekoa.aws.clients import aws_client
from tekoa.bus_rules import BUS_RULES, NOTIFY, BusRule, rule_name
from tekoa.local.aws import bus_queue_name
from tekoa.local.process import stop_on_signals
from tekoa.local.scheduler import LOCAL_ACCOUNT, LocalLambdaContext
from tekoa.observability import logger
from tekoa.settings import Settings, get_settings

MAX_RECEIVES = 3
"""The first try and Lambda's two retries of an asynchronous invocation."""
RETRY_AFTER_S = 2
WAIT_S = 1
"""A receive's long poll: also how soon a stopping target notices."""

Handler = Callable[[dict[str, Any], Any], Any]


def load(path: str) -> Handler:
    """The handler named `module.function`."""
    module_name, _, function_name = path.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    return handler


class QueueFeed:
    """Feeds one queue to one handler (see the module docstring): each message's body is the
    event (`records=False`: a bus rule's target), or a record of an SQS event (`records=True`)."""

    def __init__(
        self, name: str, queue_name: str, handler: Handler, settings: Settings, *, records: bool
    ) -> None:
        self.name = name
        self.settings = settings
        self.handler = handler
        self.records = records
        self._sqs = aws_client("sqs", settings)
        self._queue_url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self._function = f"tekoa-{settings.stage}-{name}"
        self.invocations = 0

    def poll_once(self, wait_s: int = 0) -> int:
        """Receive what is waiting (waiting up to `wait_s` for an event) and invoke the handler
        with each event; events received."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s,
            VisibilityTimeout=RETRY_AFTER_S,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        for message in messages:
            self._invoke(message)
        return len(messages)

    def _invoke(self, message: dict[str, Any]) -> None:
        event = (
            {"Records": [{"body": message["Body"], "eventSource": "aws:sqs"}]}
            if self.records
            else json.loads(message["Body"])
        )
        context = LocalLambdaContext(
            function_name=self._function,
            invoked_function_arn=f"arn:aws:lambda:{self.settings.aws_region}:{LOCAL_ACCOUNT}:function:{self._function}",
            aws_request_id=str(uuid.uuid4()),
            deadline_ms=int(time.time() * 1000) + 60_000,
        )
        self.invocations += 1
        try:
            self.handler(event, context)
        except Exception:
            receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            if receives < MAX_RECEIVES:
                logger.exception("bus target failed; retried", extra={"target": self.name, "try": receives})
                return
            logger.exception(
                "bus target failed; event dropped", extra={"target": self.name, "event": event.get("id")}
            )
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def run(self, stopping: threading.Event) -> None:
        """Poll until `stopping` is set."""
        while not stopping.is_set():
            try:
                self.poll_once(WAIT_S)
            except Exception:
                logger.exception("polling the bus queue failed", extra={"target": self.name})
                stopping.wait(1.0)


def rule_target(rule: BusRule, settings: Settings, handler: Handler | None = None) -> QueueFeed:
    """A bus rule's function, fed from the rule's local queue."""
    return QueueFeed(
        rule_name(rule, settings.stage).removeprefix(f"tekoa-{settings.stage}-"),
        bus_queue_name(rule, settings.stage),
        handler or load(rule.handler),
        settings,
        records=False,
    )


def notify_retries(settings: Settings, handler: Handler | None = None) -> QueueFeed:
    """The notify function, fed from the notification retry queue."""
    return QueueFeed(
        "notify-retries",
        settings.names.notify_retry_queue,
        handler or load(NOTIFY.handler),
        settings,
        records=True,
    )


def main() -> None:
    """Entry point of the `bus` part: every bus rule's target, until SIGTERM."""
    settings = get_settings()
    stopping = threading.Event()
    stop_on_signals(stopping.set)
    targets = [*(rule_target(rule, settings) for rule in BUS_RULES), notify_retries(settings)]
    threads = [threading.Thread(target=t.run, args=(stopping,), name=f"bus:{t.name}") for t in targets]
    for thread in threads:
        thread.start()
    logger.info("bus targets running", extra={"targets": [t.name for t in targets]})
    for thread in threads:
        thread.join()

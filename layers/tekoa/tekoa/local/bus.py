"""The `bus` part of `tekoa up`: EventBridge rules invoking their functions, locally.

`provision` gave every rule of `tekoa.bus_rules.BUS_RULES` an SQS queue as its target on moto's
bus, so moto does the matching. Here each rule has a thread (its own "function") that takes the
events from its queue and calls the rule's handler with each, one at a time, as Lambda's
asynchronous invocation does. A handler that raises gets the event again after the queue's
visibility timeout, twice at most (Lambda retries an asynchronous event twice), then it is
dropped with an error in the log.

It short-polls with a short pause after an empty receive: a live update should arrive within
tens of milliseconds, and moto's long poll costs more than it saves.
"""

from __future__ import annotations

import importlib
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from tekoa.aws.clients import aws_client
from tekoa.bus_rules import BUS_RULES, BusRule, rule_name
from tekoa.local.aws import bus_queue_name
from tekoa.local.scheduler import LOCAL_ACCOUNT, LocalLambdaContext
from tekoa.observability import logger
from tekoa.settings import Settings, get_settings

MAX_RECEIVES = 3
"""The first try and Lambda's two retries of an asynchronous invocation."""
RETRY_AFTER_S = 2
IDLE_S = 0.01

Handler = Callable[[dict[str, Any], Any], Any]


def load(path: str) -> Handler:
    """The handler named `module.function`."""
    module_name, _, function_name = path.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    return handler


class RuleTarget:
    """Feeds one rule's queue to its handler (see the module docstring)."""

    def __init__(self, rule: BusRule, settings: Settings, handler: Handler | None = None) -> None:
        self.rule = rule
        self.settings = settings
        self.handler = handler or load(rule.handler)
        self._sqs = aws_client("sqs", settings)
        self._queue_url = self._sqs.get_queue_url(QueueName=bus_queue_name(rule, settings.stage))["QueueUrl"]
        self._function = rule_name(rule, settings.stage)
        self.invocations = 0

    def poll_once(self) -> int:
        """Receive what is waiting and invoke the handler with each event; events received."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=RETRY_AFTER_S,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        for message in messages:
            self._invoke(message)
        return len(messages)

    def _invoke(self, message: dict[str, Any]) -> None:
        event = json.loads(message["Body"])
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
                logger.exception(
                    "bus target failed; retried", extra={"rule": self.rule.name, "try": receives}
                )
                return
            logger.exception(
                "bus target failed; event dropped", extra={"rule": self.rule.name, "event": event.get("id")}
            )
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def run(self, stopping: threading.Event) -> None:
        """Poll until `stopping` is set."""
        while not stopping.is_set():
            try:
                received = self.poll_once()
            except Exception:
                logger.exception("polling the bus queue failed", extra={"rule": self.rule.name})
                received = 0
                stopping.wait(1.0)
            if not received:
                stopping.wait(IDLE_S)


def main() -> None:
    """Entry point of the `bus` part: every bus rule's target, until SIGTERM."""
    settings = get_settings()
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    targets = [RuleTarget(rule, settings) for rule in BUS_RULES]
    threads = [threading.Thread(target=t.run, args=(stopping,), name=f"bus:{t.rule.name}") for t in targets]
    for thread in threads:
        thread.start()
    logger.info("bus targets running", extra={"rules": [t.rule.name for t in targets]})
    for thread in threads:
        thread.join()

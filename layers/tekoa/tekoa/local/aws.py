"""The local AWS endpoint: moto's server on 127.0.0.1, with the platform's resources.

Resources are created from `tekoa.names.ResourceNames`, the module the CDK app uses too,
so what runs locally is named exactly as in the cloud.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tekoa.aws.clients import aws_client
from tekoa.bus_rules import BUS_RULES, BusRule, rule_name
from tekoa.local.process import stop_on_signals
from tekoa.names import CANDLE_CLOSED_PATTERN, TRADE_CHART_EVENTS
from tekoa.observability import logger
from tekoa.settings import Settings

# moto accepts any credentials; boto3 refuses to sign without some.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "tekoa-local", "AWS_SECRET_ACCESS_KEY": "tekoa-local"}


def use_local_credentials() -> None:
    """Give boto3 credentials for the local endpoint unless real ones are configured."""
    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)


class LocalAwsEndpoint:
    """moto's server, serving every AWS API the platform uses, behind a guard that makes
    presigned S3 URLs expire and keep their signature as S3 does (`tekoa.local.presign`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566) -> None:
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        # Only the local cloud needs moto.
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from tekoa.local.presign import PresignedUrlGuard

        use_local_credentials()
        _quicker_sqs()
        _waiting_sqs()
        _quicker_events()
        # werkzeug logs every request moto serves; the platform's own logs are what matter.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # Presigned URLs are signed with this process's credentials, which every local part shares.
        known = {os.environ["AWS_ACCESS_KEY_ID"]: os.environ["AWS_SECRET_ACCESS_KEY"]}
        app = PresignedUrlGuard(DomainDispatcherApplication(create_backend_app), known)
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        logger.info("local aws endpoint started", extra={"url": self.url})
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _quicker_sqs() -> None:
    """Take two needless costs out of moto's SQS, so the local order queue keeps up.

    Every send, receive and delete reads the queue's attributes dozens of times per message;
    each read converts every attribute name from CamelCase (a pure function: cached here) and
    counts the visible, delayed and in-flight messages, reading the clock through naive
    datetimes (so freezegun could move it; `time.time` here, nothing local freezes time) twice
    per message. Unpatched, a queue a few hundred orders deep took a second per
    SendMessageBatch and could not carry 200 orders/s; patched, a send-receive-delete round
    costs a tenth of that. Each message received also checked its retention through that whole
    attribute map (three queue scans per message): read the one attribute instead; and each
    message deleted scanned the queue twice.
    """
    import functools
    import time

    import moto.sqs.models as sqs_models
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    queue_class: Any = sqs_models.Queue
    if getattr(queue_class, "tekoa_quick", False):  # an earlier endpoint in this process
        return  # (patching again would also undo `_waiting_sqs`'s wrapping of delete_message)
    queue_class.tekoa_quick = True

    def millis(dt: object = None) -> float:
        return time.time() * 1000.0

    quicker = {
        "unix_time": time.time,
        "unix_time_millis": millis,
        "camelcase_to_underscores": functools.cache(vars(sqs_models)["camelcase_to_underscores"]),
    }
    for name, function in quicker.items():
        setattr(sqs_models, name, function)

    def within_retention(backend: Any, queue_name: str, message: Any) -> bool:
        # moto reads the retention period through the queue's whole attribute map, which counts
        # every message of the queue (twice over): per message received, a queue scan.
        period = float(backend.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > time.time())

    for name, function in {"is_message_valid_based_on_retention_period": within_retention}.items():
        setattr(sqs_models.SQSBackend, name, function)

    def delete_message(queue: Any, receipt_handle: str) -> None:
        # moto scans the whole queue twice per message deleted; one scan that stops at the
        # message (a FIFO queue's received messages are near its head) does the same.
        if receipt_handle in queue.deleted_messages:
            return
        messages = queue._messages
        index = next((n for n, m in enumerate(messages) if m.had_receipt_handle(receipt_handle)), None)
        if index is None:
            raise ReceiptHandleIsInvalid()
        message = messages[index]
        queue.pending_messages.discard(message)
        queue.deleted_messages.update(message.all_receipt_handles)
        queue._messages = messages[:index] + messages[index + 1 :]

    for name, function in {"delete_message": delete_message}.items():
        setattr(sqs_models.Queue, name, function)


def _quicker_events() -> None:
    """Take moto's EventBridge from hundreds of milliseconds per PutEvents to a few.

    Delivering an event to a target fills the target's input template, parsing each of the
    template's JSONPath expressions (eight, for the default template) with a parser that
    jsonpath-ng builds anew on every call (a yacc table each time): 40 ms per event per rule.
    The parse is a pure function of the expression's text, so it is cached here.
    """
    import functools

    import jsonpath_ng.ext

    parse = vars(jsonpath_ng.ext)["parse"]
    if not hasattr(parse, "cache_info"):
        for name, function in {"parse": functools.cache(parse)}.items():
            setattr(jsonpath_ng.ext, name, function)


def _waiting_sqs() -> None:
    """Make moto's SQS long poll wait instead of spin.

    moto waits only while a queue has no visible message. A visible message it cannot deliver
    (its FIFO message group is in flight with another consumer) ends that wait at once, and its
    receive loop keeps a copy of the groups in flight taken when it began: it rescans the
    queue, holding the GIL, until the poll's time is up. Here a long poll is a series of
    non-waiting receives, each followed by a wait until the queue changes (a message added,
    deleted or made visible again) or a second passes (a visibility timeout or a delay ran out).
    """
    import time

    import moto.sqs.models as sqs_models

    queue_class: Any = sqs_models.Queue
    backend_class: Any = sqs_models.SQSBackend
    if getattr(backend_class, "tekoa_waits", False):  # an earlier endpoint in this process
        return
    backend_class.tekoa_waits = True
    add, delete = queue_class.add_message, queue_class.delete_message
    receive, change = backend_class.receive_message, backend_class.change_message_visibility

    def changed(queue: Any) -> None:
        with queue._messages_lock:
            queue.tekoa_changes = getattr(queue, "tekoa_changes", 0) + 1
            queue._messages_lock.notify_all()

    def add_message(self: Any, message: Any) -> None:
        add(self, message)
        changed(self)

    def delete_message(self: Any, receipt_handle: str) -> None:
        delete(self, receipt_handle)
        changed(self)

    def change_message_visibility(
        self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        change(self, queue_name, receipt_handle, visibility_timeout)
        changed(self.get_queue(queue_name))

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        queue = self.get_queue(queue_name)
        deadline = time.time() + wait_seconds_timeout
        while True:
            seen = getattr(queue, "tekoa_changes", 0)
            messages: list[Any] = receive(
                self, queue_name, count, 0, visibility_timeout, message_attribute_names
            )
            left = deadline - time.time()
            if messages or left <= 0:
                return messages
            with queue._messages_lock:
                queue._messages_lock.wait_for(
                    lambda seen=seen: getattr(queue, "tekoa_changes", 0) != seen, timeout=min(left, 1.0)
                )

    queue_class.add_message, queue_class.delete_message = add_message, delete_message
    backend_class.receive_message = receive_message
    backend_class.change_message_visibility = change_message_visibility


@dataclass(frozen=True, slots=True)
class ProvisionedResources:
    """Identifiers of what `provision` created (URLs and ARNs are only known at run time)."""

    charts_bucket: str
    order_queue_url: str
    order_dlq_url: str
    chart_queue_url: str
    chart_dlq_url: str
    event_bus_arn: str
    bus_queue_urls: dict[str, str]
    kms_key_id: str
    jwt_secret_arn: str


def provision(settings: Settings, *, jwt_signing_key: str | None = None) -> ProvisionedResources:
    """Create the platform's resources on the configured endpoint; safe to call again.

    `jwt_signing_key` is the value the JWT signing secret gets (default: a random one). The
    local platform passes the key it keeps under its data directory: moto forgets its
    secrets when it stops, and a new key would sign every user out and void every cursor.
    """
    names = settings.names
    s3 = aws_client("s3", settings)
    sqs = aws_client("sqs", settings)
    events = aws_client("events", settings)
    kms = aws_client("kms", settings)
    secretsmanager = aws_client("secretsmanager", settings)

    s3.create_bucket(Bucket=names.charts_bucket)
    s3.put_public_access_block(
        Bucket=names.charts_bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )

    order_dlq_url = sqs.create_queue(QueueName=names.order_dlq, Attributes={"FifoQueue": "true"})["QueueUrl"]
    order_dlq_arn = _queue_arn(sqs, order_dlq_url)
    order_queue_url = sqs.create_queue(
        QueueName=names.order_queue,
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": order_dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    chart_dlq_url = sqs.create_queue(QueueName=names.chart_dlq)["QueueUrl"]
    chart_queue_url = sqs.create_queue(
        QueueName=names.chart_queue,
        Attributes={
            "VisibilityTimeout": "120",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": _queue_arn(sqs, chart_dlq_url), "maxReceiveCount": "3"}
            ),
        },
    )["QueueUrl"]

    try:
        event_bus_arn = events.describe_event_bus(Name=names.event_bus)["Arn"]
    except events.exceptions.ResourceNotFoundException:
        event_bus_arn = events.create_event_bus(Name=names.event_bus)["EventBusArn"]

    # candle.closed reaches the evaluator as in AWS (a rule on the bus), through a queue the
    # local `evaluator` part polls: the event it hands the handler is the one the rule matched.
    evaluator_queue_url = sqs.create_queue(QueueName=names.evaluator_events_queue)["QueueUrl"]
    events.put_rule(
        Name=names.candle_closed_rule,
        EventBusName=names.event_bus,
        EventPattern=json.dumps(CANDLE_CLOSED_PATTERN),
        State="ENABLED",
    )
    events.put_targets(
        Rule=names.candle_closed_rule,
        EventBusName=names.event_bus,
        Targets=[{"Id": "evaluator", "Arn": _queue_arn(sqs, evaluator_queue_url)}],
    )
    # What the CDK app's Messaging stack routes to the chart queue, by the same pattern.
    events.put_rule(
        Name=names.trade_chart_rule,
        EventBusName=names.event_bus,
        EventPattern=json.dumps(TRADE_CHART_EVENTS.pattern()),
        State="ENABLED",
    )
    events.put_targets(
        Rule=names.trade_chart_rule,
        EventBusName=names.event_bus,
        Targets=[{"Id": "chart-queue", "Arn": _queue_arn(sqs, chart_queue_url)}],
    )
    bus_queue_urls = {rule.name: _route_rule(events, sqs, settings, rule) for rule in BUS_RULES}
    sqs.create_queue(QueueName=names.notify_retry_queue)

    kms_key_id = _ensure_kms_key(kms, names.broker_key_alias)
    jwt_secret_arn = _ensure_secret(
        secretsmanager, names.jwt_secret, jwt_signing_key or secrets.token_urlsafe(48)
    )
    logger.info("local aws resources ready", extra={"stage": settings.stage})
    return ProvisionedResources(
        charts_bucket=names.charts_bucket,
        order_queue_url=order_queue_url,
        order_dlq_url=order_dlq_url,
        chart_queue_url=chart_queue_url,
        chart_dlq_url=chart_dlq_url,
        event_bus_arn=event_bus_arn,
        bus_queue_urls=bus_queue_urls,
        kms_key_id=kms_key_id,
        jwt_secret_arn=jwt_secret_arn,
    )


def bus_queue_name(rule: BusRule, stage: str) -> str:
    """The local queue standing in for a bus rule's Lambda target."""
    return rule_name(rule, stage)


def _route_rule(events: Any, sqs: Any, settings: Settings, rule: BusRule) -> str:
    """The bus rule with a queue as its target (what the `bus` part polls); its URL."""
    queue_url = str(sqs.create_queue(QueueName=bus_queue_name(rule, settings.stage))["QueueUrl"])
    name = rule_name(rule, settings.stage)
    events.put_rule(
        Name=name,
        EventBusName=settings.names.event_bus,
        EventPattern=json.dumps(rule.event_pattern),
        State="ENABLED",
        Description=rule.description,
    )
    events.put_targets(
        Rule=name,
        EventBusName=settings.names.event_bus,
        Targets=[{"Id": rule.name, "Arn": _queue_arn(sqs, queue_url)}],
    )
    return queue_url


def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _ensure_kms_key(kms: Any, alias: str) -> str:
    try:
        return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"])
    except kms.exceptions.NotFoundException:
        key_id = str(kms.create_key(Description="tekoa data key")["KeyMetadata"]["KeyId"])
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        return key_id


def _ensure_secret(secretsmanager: Any, name: str, value: str) -> str:
    try:
        return str(secretsmanager.describe_secret(SecretId=name)["ARN"])
    except secretsmanager.exceptions.ResourceNotFoundException:
        created = secretsmanager.create_secret(Name=name, SecretString=value)
        return str(created["ARN"])


JWT_KEY_FILE = "jwt-signing.key"


def local_jwt_signing_key(data_dir: Path) -> str:
    """The local platform's JWT signing key, kept in `<data_dir>/jwt-signing.key` (0600)."""
    from tekoa.security.local_key import load_or_create_key_file

    return base64.urlsafe_b64encode(load_or_create_key_file(data_dir / JWT_KEY_FILE, 48)).decode()


def serve() -> None:
    """Entry point of the `aws` part of `tekoa up`: moto's server until SIGTERM."""
    from tekoa.settings import get_settings

    endpoint = LocalAwsEndpoint(port=get_settings().aws_port)
    stopping = threading.Event()
    stop_on_signals(stopping.set)
    endpoint.start()
    stopping.wait()
    endpoint.stop()

"""The local AWS endpoint gets the same resources, by the same names, as the CDK app."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from tekoa.aws.clients import aws_client
from tekoa.local.aws import provision


def test_provisioning_creates_every_platform_resource(aws_settings: Any) -> None:
    names = aws_settings.names
    s3 = aws_client("s3", aws_settings)
    sqs = aws_client("sqs", aws_settings)

    block = s3.get_public_access_block(Bucket=names.charts_bucket)["PublicAccessBlockConfiguration"]
    order_queue = sqs.get_queue_url(QueueName=names.order_queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=order_queue, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    bus = aws_client("events", aws_settings).describe_event_bus(Name=names.event_bus)
    key = aws_client("kms", aws_settings).describe_key(KeyId=names.broker_key_alias)
    secret = aws_client("secretsmanager", aws_settings).get_secret_value(SecretId=names.jwt_secret)

    assert all(block.values())
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "false"
    assert redrive["deadLetterTargetArn"].endswith(names.order_dlq)
    assert bus["Name"] == names.event_bus
    assert key["KeyMetadata"]["Enabled"] is True
    assert len(secret["SecretString"]) >= 48


def test_provisioning_again_keeps_what_exists(aws_settings: Any) -> None:
    first_secret = aws_client("secretsmanager", aws_settings).get_secret_value(
        SecretId=aws_settings.names.jwt_secret
    )["SecretString"]

    again = provision(aws_settings)

    second_secret = aws_client("secretsmanager", aws_settings).get_secret_value(
        SecretId=aws_settings.names.jwt_secret
    )["SecretString"]
    assert first_secret == second_secret
    assert (
        again.kms_key_id
        == aws_client("kms", aws_settings).describe_key(KeyId=aws_settings.names.broker_key_alias)[
            "KeyMetadata"
        ]["KeyId"]
    )


def test_a_long_poll_gets_a_fifo_groups_next_message_once_the_group_frees(aws_settings: Any) -> None:
    # moto's own long poll keeps the groups in flight it saw when it began: it spins for the
    # whole wait and answers nothing, though the group freed meanwhile.
    sqs = aws_client("sqs", aws_settings)
    queue = sqs.create_queue(
        QueueName=f"long-poll-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for body in ("first", "second"):
        sqs.send_message(QueueUrl=queue, MessageBody=body, MessageGroupId="account")
    (first,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"]
    waiting: list[dict[str, Any]] = []
    poll = threading.Thread(
        target=lambda: waiting.extend(
            sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=10).get(
                "Messages", []
            )
        )
    )
    poll.start()
    time.sleep(0.3)  # the poll is waiting, the group still in flight
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"])
    poll.join()

    assert first["Body"] == "first"
    assert [message["Body"] for message in waiting] == ["second"]

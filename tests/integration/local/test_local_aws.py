"""The local AWS endpoint gets the same resources, by the same names, as the CDK app."""

from __future__ import annotations

import json
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

"""Secrets Manager reads (the JWT signing key, database credentials)."""

from __future__ import annotations

from tekoa.aws.clients import aws_client
from tekoa.settings import Settings


def secret_string(settings: Settings, secret_id: str) -> str:
    """The current value of a string secret."""
    response = aws_client("secretsmanager", settings).get_secret_value(SecretId=secret_id)
    return str(response["SecretString"])

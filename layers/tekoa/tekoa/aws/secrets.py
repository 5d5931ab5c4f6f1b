"""Secrets Manager reads (the JWT signing key, database credentials)."""

from __future__ import annotations

from tekoa.aws.clients import aws_client
from tekoa.db.connection import resolve_conninfo
from tekoa.settings import Settings


def secret_string(settings: Settings, secret_id: str) -> str:
    """The current value of a string secret."""
    response = aws_client("secretsmanager", settings).get_secret_value(SecretId=secret_id)
    return str(response["SecretString"])


def database_conninfo(settings: Settings) -> str:
    """DATABASE_URL when set, else the connection the credentials secret describes (AWS)."""
    return resolve_conninfo(settings, lambda arn: secret_string(settings, arn))

"""The migrations Lambda (run by a CDK trigger on deploy): reads the database secret from
Secrets Manager (moto), applies every migration, and applies nothing the second time."""

from __future__ import annotations

import importlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from psycopg.conninfo import conninfo_to_dict

from tekoa.db.migrate import discover


@dataclass
class FakeContext:
    function_name: str = "tekoa-test-migrate"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tekoa-test-migrate"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "req-1"


def test_the_lambda_migrates_the_database_its_secret_names(
    empty_database_url: str, aws_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the database's credentials as RDS stores them in Secrets Manager
    parts = conninfo_to_dict(empty_database_url)
    secrets = boto3.client("secretsmanager", endpoint_url=aws_settings.aws_endpoint_url)
    secret_arn = secrets.create_secret(
        Name=f"tekoa/test/db-{uuid.uuid4().hex[:8]}",
        SecretString=json.dumps(
            {
                "host": parts["host"],
                "port": int(parts.get("port") or 5432),
                "username": parts["user"],
                "password": parts.get("password", ""),
                "dbname": parts["dbname"],
            }
        ),
    )["ARN"]
    # ... and the Lambda's environment as the construct sets it (no DATABASE_URL)
    from tekoa.settings import get_settings

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("TEKOA_STAGE", "test")
    monkeypatch.setenv("TEKOA_DATABASE_SECRET_ARN", secret_arn)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_settings.aws_endpoint_url)
    get_settings.cache_clear()
    try:
        import functions.migrate.handler as module

        module = importlib.reload(module)

        # When the trigger invokes it on a first deploy, then on a redeploy
        first = module.handler({}, FakeContext())
        second = module.handler({}, FakeContext())
    finally:
        get_settings.cache_clear()

    # Then the first run applied every migration in order and the second nothing
    assert first == {"applied": [f"{m.version:04d}_{m.name}" for m in discover()]}
    assert second == {"applied": []}

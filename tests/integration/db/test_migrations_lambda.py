"""The migrations Lambda (run by a CDK trigger on deploy): reads the master secret from Secrets
Manager (moto), applies every migration, provisions the declared workload logins from their
secrets, applies nothing the second time, and waits for a database that is still starting."""

from __future__ import annotations

import importlib
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tekoa.db.connection import connect, retry_while_unreachable
from tekoa.db.migrate import discover, migrate


@dataclass
class FakeContext:
    function_name: str = "tekoa-test-migrate"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tekoa-test-migrate"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "req-1"
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def _master_secret(database_url: str, **override: Any) -> str:
    parts = conninfo_to_dict(database_url)
    return json.dumps(
        {
            "host": parts["host"],
            "port": int(parts.get("port") or 5432),
            "username": parts["user"],
            "password": parts.get("password", ""),
            "dbname": parts["dbname"],
            **override,
        }
    )


@pytest.fixture
def secrets(aws_settings: Any) -> Any:
    return boto3.client("secretsmanager", endpoint_url=aws_settings.aws_endpoint_url)


@pytest.fixture
def lambda_module(
    aws_settings: Any, secrets: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, str, dict[str, str]]]:
    """The handler as the construct configures it: master secret, one declared login, no DATABASE_URL.

    Yields the module, the master secret's ARN, and role -> password of the declared login.
    """
    from tekoa.settings import get_settings

    suffix = uuid.uuid4().hex[:8]
    master_arn = secrets.create_secret(Name=f"tekoa/test/db-{suffix}", SecretString="{}")["ARN"]
    password = f"pw-{suffix}-{uuid.uuid4().hex}"
    login_arn = secrets.create_secret(
        Name=f"tekoa/test/db-login/tekoa_api-{suffix}",
        SecretString=json.dumps({"username": "tekoa_api", "password": password}),
    )["ARN"]
    logins = [{"role": "tekoa_api", "secret_arn": login_arn, "member_of": ["tekoa_app", "tekoa_service"],
               "connection_limit": 7}]  # fmt: skip
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("TEKOA_STAGE", "test")
    monkeypatch.setenv("TEKOA_DATABASE_SECRET_ARN", master_arn)
    monkeypatch.setenv("TEKOA_DATABASE_LOGINS", json.dumps(logins))
    monkeypatch.setenv("TEKOA_DB_CONNECT_TIMEOUT_S", "2")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_settings.aws_endpoint_url)
    get_settings.cache_clear()
    import functions.migrate.handler as module

    yield importlib.reload(module), master_arn, {"tekoa_api": password}
    get_settings.cache_clear()


def test_the_lambda_migrates_the_database_and_provisions_the_logins(
    empty_database_url: str, secrets: Any, lambda_module: tuple[ModuleType, str, dict[str, str]]
) -> None:
    module, master_arn, _ = lambda_module
    # Given the database's master credentials as RDS stores them in Secrets Manager
    secrets.put_secret_value(SecretId=master_arn, SecretString=_master_secret(empty_database_url))

    # When the trigger invokes it on a first deploy, then on a redeploy
    first = module.handler({}, FakeContext())
    second = module.handler({}, FakeContext())

    # Then the first run applied every migration in order and the second nothing; both made the
    # declared login match its secret
    assert first == {"applied": [f"{m.version:04d}_{m.name}" for m in discover()], "logins": ["tekoa_api"]}
    assert second == {"applied": [], "logins": ["tekoa_api"]}
    with connect(empty_database_url) as conn:
        row = conn.execute(
            "SELECT rolcanlogin, rolinherit, rolconnlimit FROM pg_roles WHERE rolname = 'tekoa_api'"
        ).fetchone()
    assert row == (True, False, 7)


def test_the_lambda_waits_for_a_database_that_is_still_starting(
    empty_database_url: str, secrets: Any, lambda_module: tuple[ModuleType, str, dict[str, str]]
) -> None:
    module, master_arn, _ = lambda_module
    # Given a database that refuses connections at first (the secret names a closed port) ...
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    secrets.put_secret_value(
        SecretId=master_arn,
        SecretString=_master_secret(empty_database_url, host="127.0.0.1", port=closed_port),
    )
    # ... and becomes reachable half a second later (the retry re-reads the secret)
    becomes_reachable = threading.Timer(
        0.5,
        lambda: secrets.put_secret_value(
            SecretId=master_arn, SecretString=_master_secret(empty_database_url)
        ),
    )
    becomes_reachable.start()

    # When the trigger invokes the Lambda
    try:
        result = module.handler({}, FakeContext())
    finally:
        becomes_reachable.cancel()

    # Then it retried and did all its work
    assert result["applied"] == [f"{m.version:04d}_{m.name}" for m in discover()]


def test_a_database_that_never_answers_times_out_instead_of_hanging(empty_database_url: str) -> None:
    # Given a listener that accepts the TCP connection and then says nothing (a wedged endpoint)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host, port = silent.getsockname()

        # When migrations try to connect with a 1 s timeout, Then they fail instead of waiting forever
        with pytest.raises(psycopg.OperationalError):
            migrate(f"host={host} port={port} dbname=x user=x", connect_timeout_s=1)


def test_retries_stop_at_the_deadline_and_report_the_last_error() -> None:
    import time

    attempts: list[float] = []
    pauses: list[float] = []

    def unreachable() -> None:
        attempts.append(time.monotonic())
        raise psycopg.OperationalError("connection refused")

    with pytest.raises(psycopg.OperationalError, match="refused"):
        retry_while_unreachable(unreachable, deadline=time.monotonic() + 7.5, sleep=pauses.append)

    # Growing pauses (1, 2, 4 s), none of which would end past the deadline
    assert pauses == [1.0, 2.0, 4.0]
    assert len(attempts) == 4


def test_only_connection_failures_are_retried() -> None:
    import time

    calls = 0

    def broken_sql() -> None:
        nonlocal calls
        calls += 1
        raise psycopg.errors.SyntaxError("not a connection problem")

    with pytest.raises(psycopg.errors.SyntaxError):
        retry_while_unreachable(broken_sql, deadline=time.monotonic() + 60, sleep=lambda _: None)
    assert calls == 1

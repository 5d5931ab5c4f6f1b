"""Scheduled work: the local scheduler fires each handler of `tekoa.schedules` with the event
EventBridge sends, and the scheduled housekeeping purges what has expired."""

from __future__ import annotations

import importlib
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from tekoa.db.connection import service_transaction
from tekoa.local.scheduler import Scheduler, invoke, next_run
from tekoa.schedules import SCHEDULES, Schedule
from tekoa.settings import get_settings


def test_every_schedule_has_a_valid_rate_and_an_importable_handler() -> None:
    for entry in SCHEDULES:
        assert entry.period.total_seconds() >= 60
        module, _, function = entry.handler.rpartition(".")
        assert module.startswith("functions.") and function == "handler"


@pytest.mark.parametrize(
    ("rate", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600), ("rate(2 days)", 172800)],
)
def test_rates_read_as_eventbridge_writes_them(rate: str, seconds: int) -> None:
    assert Schedule("x", rate, "functions.x.handler", "").period.total_seconds() == seconds


@pytest.mark.parametrize(
    "rate", ["rate(1 minutes)", "rate(2 hour)", "rate(0 minutes)", "cron(0 * * * ? *)", "every hour"]
)
def test_rates_eventbridge_would_refuse_are_refused(rate: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        _ = Schedule("x", rate, "functions.x.handler", "").period


def test_runs_fall_on_whole_periods() -> None:
    minutely = Schedule("m", "rate(1 minute)", "functions.x.handler", "")

    assert next_run(minutely, 1_000_000_000.5) == 1_000_000_020.0
    assert next_run(minutely, 1_000_000_020.0) == 1_000_000_080.0


def test_the_scheduler_fires_each_schedule_when_due_with_a_scheduled_event(aws_settings: Any) -> None:
    now = [3_599.5]
    fired: list[tuple[str, dict[str, Any]]] = []
    done = threading.Event()
    schedule = Schedule("maintenance", "rate(1 hour)", "functions.maintenance.handler.handler", "")

    def record(entry: Schedule, settings: Any, at: datetime) -> None:
        from tekoa.local.scheduler import scheduled_event

        fired.append((entry.name, scheduled_event(entry, settings, at)))
        done.set()

    scheduler = Scheduler([schedule], aws_settings, clock=lambda: now[0], fire=record)
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    time.sleep(0.1)
    assert fired == []  # not due yet
    now[0] = 3_600.0
    assert done.wait(5)
    scheduler.stop()
    thread.join(5)

    ((name, event),) = fired
    assert name == "maintenance"
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["time"] == "1970-01-01T01:00:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/tekoa-test-maintenance"]
    assert event["detail"] == {}


def _expired_rows(conn: psycopg.Connection[Any]) -> None:
    user_id = conn.execute(
        "INSERT INTO users (email, password_hash) VALUES ('old@example.com', 'x') RETURNING id"
    ).fetchone()[0]  # type: ignore[index]
    for key, expires in (("expired", "now() - interval '1 hour'"), ("live", "now() + interval '1 hour'")):
        conn.execute(
            "INSERT INTO idempotency_keys"
            " (user_id, key, request_method, request_path, request_hash, expires_at)"
            f" VALUES (%s, %s, 'POST', '/v1/x', 'h', {expires})",
            (user_id, key),
        )
    for age in ("2 days", "1 second"):
        conn.execute(
            "INSERT INTO login_attempts (email, client_address, attempted_at)"
            " VALUES ('a@example.com', '1.2.3.4', now() - %s::interval)",
            (age,),
        )
        conn.execute(
            "INSERT INTO signup_attempts (client_address, attempted_at)"
            " VALUES ('1.2.3.4', now() - %s::interval)",
            (age,),
        )
    for connection_id, expires in (
        ("gone=", "now() - interval '1 minute'"),
        ("open=", "now() + interval '1 hour'"),
    ):
        with service_transaction(conn):
            conn.execute(
                f"INSERT INTO ws_connections (connection_id, user_id, expires_at) VALUES (%s, %s, {expires})",
                (connection_id, user_id),
            )


def test_the_scheduled_housekeeping_purges_what_expired(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        _expired_rows(conn)
    # The handler reads its settings from the environment, as in Lambda.
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", settings.aws_endpoint_url)
    monkeypatch.setenv("TEKOA_STAGE", settings.stage)
    get_settings.cache_clear()
    try:
        importlib.reload(importlib.import_module("functions.maintenance.handler"))
        (maintenance,) = [entry for entry in SCHEDULES if entry.name == "maintenance"]
        result = invoke(maintenance, get_settings(), datetime.now(UTC))
    finally:
        get_settings.cache_clear()

    assert result == {"idempotency_keys": 1, "login_attempts": 1, "signup_attempts": 1, "ws_connections": 1}
    with psycopg.connect(settings.database_url) as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM idempotency_keys")]
        attempts = conn.execute("SELECT count(*) FROM login_attempts").fetchone()
        signups = conn.execute("SELECT count(*) FROM signup_attempts").fetchone()
    with psycopg.connect(settings.database_url, autocommit=True) as conn, service_transaction(conn):
        connections = [row[0] for row in conn.execute("SELECT connection_id FROM ws_connections")]
    assert keys == ["live"] and attempts == (1,) and signups == (1,) and connections == ["open="]

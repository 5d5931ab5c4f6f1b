"""candle.closed events really reach an EventBridge bus (moto), and the service process stops on
SIGTERM after flushing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tekoa.aws.events import EventBridgePublisher
from tekoa.db.connection import connect
from tekoa.domain.timeframes import Timeframe
from tekoa.market.simulated import SimulatedExchange
from tekoa.market.stream.service import MarketStreamService
from tests.conftest import free_port
from tests.integration.market.market_support import T0, M, config, eventually, pooled, run, start, stop

ENTRY_POINT = Path(__file__).resolve().parents[3] / "fargate" / "market-stream" / "main.py"


@pytest.fixture
def candle_queue(aws_settings: Any) -> Any:
    """An SQS queue receiving this test's candle.closed events (rule on the stage's bus)."""
    exchange = f"sim{uuid.uuid4().hex[:8]}"
    region = aws_settings.aws_region
    endpoint = aws_settings.aws_endpoint_url
    sqs = boto3.client("sqs", region_name=region, endpoint_url=endpoint)
    events = boto3.client("events", region_name=region, endpoint_url=endpoint)
    queue_url = sqs.create_queue(QueueName=f"candles-{exchange}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = aws_settings.names.event_bus
    events.put_rule(
        Name=f"candles-{exchange}",
        EventBusName=bus,
        EventPattern=json.dumps(
            {"source": ["tekoa"], "detail-type": ["candle.closed"], "detail": {"exchange": [exchange]}}
        ),
    )
    events.put_targets(
        Rule=f"candles-{exchange}", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    yield exchange, sqs, queue_url
    events.remove_targets(Rule=f"candles-{exchange}", EventBusName=bus, Ids=["queue"])
    events.delete_rule(Name=f"candles-{exchange}", EventBusName=bus)
    sqs.delete_queue(QueueUrl=queue_url)


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_closed_candles_are_published_to_the_event_bus(settings: Any, candle_queue: Any) -> None:
    exchange_name, sqs, queue_url = candle_queue

    async def body() -> None:
        # Given the service streaming 4.5 minutes of one market, publishing through boto3 to moto
        exchange = SimulatedExchange(
            ["ETH/USDT"],
            seed=3,
            speed=float("inf"),
            start_ms=T0,
            stop_ms=T0 + 4 * M + 30_000,
            exchange=exchange_name,
        )
        database = pooled(settings.database_url)
        service = MarketStreamService(
            exchange,
            database,
            EventBridgePublisher(settings),
            config(["ETH/USDT"], timeframes=(Timeframe.M1, Timeframe.M5), history_days=0),
            clock_ms=exchange.now_ms,
        )

        # When it runs until minute 3 is announced
        task = await start(service)
        await eventually(lambda: service.counters["events_published"] >= 4, "four candles announced")
        await stop(service, task)
        database.close()

    run(body)

    # Then the bus delivered one event per announced candle, with ms times and decimal strings
    events = drain(sqs, queue_url)
    details = {(e["detail"]["timeframe"], e["detail"]["open_time"]): e["detail"] for e in events}
    assert len(details) == len(events)
    assert {("1m", T0 + m * M) for m in range(4)} <= set(details)
    first = details[("1m", T0)]
    assert first["close_time"] == T0 + M and first["symbol"] == "ETH/USDT"
    assert all(isinstance(first[k], str) and Decimal(first[k]) > 0 for k in ("open", "high", "low", "close"))
    assert events[0]["source"] == "tekoa" and events[0]["detail-type"] == "candle.closed"
    with connect(settings.database_url) as conn:
        pending = conn.execute("SELECT count(*) FROM candles WHERE NOT announced").fetchone()
    assert pending is not None and pending[0] == 0


def test_the_service_process_stops_on_sigterm_after_flushing(settings: Any) -> None:
    # Given the market-stream process (the container's command), simulated exchange in real time
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
        "TEKOA_STAGE": settings.stage,
        "TEKOA_MARKET_SYMBOLS": "BTC/USDT",
        "TEKOA_MARKET_HEALTH_PORT": str(port),
        "TEKOA_MARKET_HISTORY_DAYS": "0.01",
        "TEKOA_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, str(ENTRY_POINT)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # When it serves health and has repaired the recent history (candles exist at once)
        deadline = time.monotonic() + 60
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                if health["markets"]["BTC/USDT"]["fresh"]:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            time.sleep(0.2)
        assert health["status"] == "ok" and health["exchange"] == "simulated"
        process.send_signal(signal.SIGTERM)

        # Then it exits cleanly within the stop budget
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0
    # ... and every candle it stored had closed by then (the forming ones were dropped)
    stopped_ms = time.time_ns() // 1_000_000
    with connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT s.timeframe, c.open_time FROM candles c JOIN candle_series s ON s.id = c.series_id"
        ).fetchall()
    assert rows
    assert all(open_time + Timeframe(tf).ms <= stopped_ms for tf, open_time in rows)

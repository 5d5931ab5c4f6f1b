"""Helpers for the chart tests: stored candles, the chart queue read as Lambda's event source
mapping hands it to the function, and PNGs fetched through their presigned URLs."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tekoa.aws.clients import aws_client
from tekoa.db import candles as store
from tekoa.db.connection import Database, service_transaction
from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import Timeframe

H = Timeframe.H1.ms
NOW = 1_717_200_000_000 + 400 * H  # 2024-06-17T16:00Z: every test's clock


def store_candles(
    database: Database,
    count: int,
    *,
    end: int = NOW,
    exchange: str = "simulated",
    symbol: str = "BTC/USDT",
    timeframe: Timeframe = Timeframe.H1,
    seed: int = 3,
) -> list[Candle]:
    """`count` closed candles of a seeded walk, the last one opening one candle before `end`."""
    rng = np.random.default_rng(seed)
    close = 60_000 * np.exp(np.cumsum(rng.normal(0, 0.004, count)))
    open_ = np.concatenate(([60_000.0], close[:-1]))
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    first = timeframe.open_time(end) - count * timeframe.ms
    candles = [
        Candle.from_floats(
            exchange,
            symbol,
            timeframe,
            first + i * timeframe.ms,
            (float(open_[i]), float(high[i]), float(low[i]), float(close[i]), float(10 + i % 7)),
            trades=5,
        )
        for i in range(count)
    ]
    with database.connection() as conn, service_transaction(conn):
        store.upsert_candles(conn, candles)
    return candles


def queue_url(settings: Any) -> str:
    return str(aws_client("sqs", settings).get_queue_url(QueueName=settings.names.chart_queue)["QueueUrl"])


def drain(settings: Any) -> list[dict[str, Any]]:
    """Every message waiting on the chart queue, removed."""
    sqs = aws_client("sqs", settings)
    url = queue_url(settings)
    taken: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not messages:
            return taken
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        taken.extend(messages)


def sqs_event(settings: Any, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping would invoke the function with."""
    arn = f"arn:aws:sqs:{settings.aws_region}:123456789012:{settings.names.chart_queue}"
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": settings.aws_region,
            }
            for m in messages
        ]
    }


def png_at(url: str) -> Image.Image:
    """The PNG a presigned URL serves."""
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image

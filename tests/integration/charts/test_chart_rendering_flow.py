"""A chart from request to PNG: resolved and stored as pending, queued, rendered by the chart
function's handler into S3 under the owner's prefix, then handed out as a presigned URL; an
identical request is served from the existing object. Real PostgreSQL, real moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from functions.charts.handler import ChartHandler
from tekoa.aws.charts import S3ChartObjects, SqsChartRequests
from tekoa.aws.clients import aws_client
from tekoa.charts.spec import MAX_BARS
from tekoa.charts.worker import ChartWorker
from tekoa.db.connection import PooledDatabase, tenant_transaction
from tekoa.domain.resources import BotNotFound
from tekoa.errors import ValidationFailed
from tekoa.services.charts import (
    ChartNotFound,
    ChartPorts,
    ChartRequest,
    RangeTooLong,
    get_chart,
    request_chart,
)
from tests.integration.api.auth_support import settings as settings
from tests.integration.api.trading_support import create_bot, new_user
from tests.integration.charts.chart_support import NOW, H, drain, png_at, sqs_event, store_candles


@pytest.fixture
def database(settings: Any) -> Iterator[PooledDatabase]:
    database = PooledDatabase(settings.database_url, max_size=4)
    yield database
    database.close()


@pytest.fixture
def ports(settings: Any, database: PooledDatabase) -> ChartPorts:
    drain(settings)
    return ChartPorts(
        database, S3ChartObjects(settings), SqsChartRequests(settings), settings.chart_url_ttl_s
    )


@pytest.fixture
def handler(settings: Any, database: PooledDatabase) -> ChartHandler:
    return ChartHandler(ChartWorker(database, S3ChartObjects(settings), SqsChartRequests(settings)))


MARKET = {"exchange": "simulated", "symbol": "BTC/USDT", "timeframe": "1h"}
WITH_INDICATORS = {
    **MARKET,
    "bars": 120,
    "overlays": [{"name": "ema", "params": {"period": 20}}],
    "panels": [{"name": "rsi", "params": {"period": 14}}],
    "style": "dark",
}


def run_queue(settings: Any, handler: ChartHandler) -> dict[str, Any]:
    """Hand everything on the chart queue to the handler, as the event source mapping would."""
    messages = drain(settings)
    assert messages, "nothing was queued"
    return handler(sqs_event(settings, messages), None)


def test_a_chart_is_queued_rendered_and_then_served_from_its_object(
    api: httpx.Client,
    settings: Any,
    database: PooledDatabase,
    ports: ChartPorts,
    handler: ChartHandler,
) -> None:
    user = new_user(api)
    store_candles(database, 300)
    request = ChartRequest.model_validate(WITH_INDICATORS)

    pending = request_chart(ports, user.user_id, request, now_ms=NOW)

    assert pending.url is None and pending.chart.status == "pending"
    assert pending.chart.object_key == f"charts/{user.user_id}/{pending.chart.digest}.png"
    assert run_queue(settings, handler) == {"batchItemFailures": []}

    ready = request_chart(ports, user.user_id, request, now_ms=NOW + 20 * 60_000)  # same candle

    assert ready.chart.id == pending.chart.id and ready.url is not None
    assert drain(settings) == []  # served from the object: nothing queued
    image = png_at(ready.url)
    assert image.size == (1280, 720)
    document = ready.chart.document
    assert (document.end, document.bars) == (NOW, 120)
    assert document.history_start < document.start  # the EMA and RSI warm up before the first bar


def test_a_new_candle_makes_a_new_chart(
    api: httpx.Client,
    database: PooledDatabase,
    ports: ChartPorts,
    settings: Any,
) -> None:
    user = new_user(api)
    store_candles(database, 300)
    request = ChartRequest.model_validate({**MARKET, "bars": 50})
    first = request_chart(ports, user.user_id, request, now_ms=NOW)

    store_candles(database, 301, end=NOW + H)  # the next candle closed
    later = request_chart(ports, user.user_id, request, now_ms=NOW + H)

    assert later.chart.id != first.chart.id
    assert later.chart.document.end == NOW + H
    assert len(drain(settings)) == 2


def test_a_backfilled_candle_in_the_range_changes_the_chart(
    api: httpx.Client,
    database: PooledDatabase,
    ports: ChartPorts,
) -> None:
    user = new_user(api)
    candles = store_candles(database, 100)
    request = ChartRequest.model_validate({**MARKET, "start": candles[0].open_time, "end": NOW})
    first = request_chart(ports, user.user_id, request, now_ms=NOW)

    store_candles(database, 10, end=candles[0].open_time)  # history arrives before the range...
    ema = ChartRequest.model_validate(
        {
            **MARKET,
            "start": candles[0].open_time,
            "end": NOW,
            "overlays": [{"name": "sma", "params": {"period": 5}}],
        }
    )
    same = request_chart(ports, user.user_id, request, now_ms=NOW)
    warmed = request_chart(ports, user.user_id, ema, now_ms=NOW)

    assert same.chart.id == first.chart.id  # which a chart without indicators does not read...
    # ...and one whose SMA(5) warms up on the 5 candles before its first does.
    assert warmed.chart.document.data.first == candles[0].open_time - 5 * H


def test_another_users_chart_is_not_found_and_gets_no_url(
    api: httpx.Client,
    database: PooledDatabase,
    ports: ChartPorts,
) -> None:
    owner, stranger = new_user(api), new_user(api)
    store_candles(database, 100)
    chart = request_chart(ports, owner.user_id, ChartRequest.model_validate(MARKET), now_ms=NOW).chart

    with pytest.raises(ChartNotFound):
        get_chart(ports, stranger.user_id, chart.id)
    # The same content asked for by the stranger is the stranger's own chart, under their prefix.
    theirs = request_chart(ports, stranger.user_id, ChartRequest.model_validate(MARKET), now_ms=NOW).chart
    assert theirs.id != chart.id
    assert theirs.digest == chart.digest
    assert theirs.object_key.startswith(f"charts/{stranger.user_id}/")


def test_bad_ranges_and_a_foreign_bot_are_refused(
    api: httpx.Client,
    database: PooledDatabase,
    ports: ChartPorts,
    settings: Any,
) -> None:
    owner, stranger = new_user(api), new_user(api)
    store_candles(database, 100)
    bot = create_bot(api, owner)

    with pytest.raises(RangeTooLong) as too_long:
        request_chart(ports, owner.user_id, ChartRequest.model_validate({**MARKET, "start": 0}), now_ms=NOW)
    assert too_long.value.field == "start" and str(MAX_BARS) in too_long.value.message
    with pytest.raises(ValidationFailed, match="no stored 1h candles"):
        request_chart(
            ports, owner.user_id, ChartRequest.model_validate({**MARKET, "symbol": "ETH/USDT"}), now_ms=NOW
        )
    with pytest.raises(ValidationFailed, match="no closed candle"):
        request_chart(
            ports, owner.user_id, ChartRequest.model_validate({**MARKET, "start": NOW + H}), now_ms=NOW
        )
    with pytest.raises(BotNotFound):
        request_chart(ports, stranger.user_id, ChartRequest.model_validate({"bot_id": bot["id"]}), now_ms=NOW)
    with pytest.raises(ValidationFailed, match="the bot's"):
        request_chart(
            ports,
            owner.user_id,
            ChartRequest.model_validate({"bot_id": bot["id"], "symbol": "ETH/USDT"}),
            now_ms=NOW,
        )
    assert drain(settings) == []


def test_an_expired_image_is_rendered_again(
    api: httpx.Client,
    settings: Any,
    ports: ChartPorts,
    handler: ChartHandler,
    database: PooledDatabase,
) -> None:
    user = new_user(api)
    store_candles(database, 100)
    chart = request_chart(ports, user.user_id, ChartRequest.model_validate(MARKET), now_ms=NOW).chart
    run_queue(settings, handler)
    assert get_chart(ports, user.user_id, chart.id).url is not None

    # The bucket's lifecycle rule expired it.
    aws_client("s3", settings).delete_object(Bucket=settings.charts_bucket_name, Key=chart.object_key)
    again = get_chart(ports, user.user_id, chart.id)

    assert again.url is None and again.chart.status == "pending"
    run_queue(settings, handler)
    assert get_chart(ports, user.user_id, chart.id).url is not None


def test_a_lost_render_request_is_queued_again_after_a_while(
    api: httpx.Client,
    settings: Any,
    ports: ChartPorts,
    database: PooledDatabase,
) -> None:
    user = new_user(api)
    store_candles(database, 100)
    chart = request_chart(ports, user.user_id, ChartRequest.model_validate(MARKET), now_ms=NOW).chart
    drain(settings)  # the message is lost

    assert get_chart(ports, user.user_id, chart.id).url is None
    assert drain(settings) == []  # just queued: not again yet
    with database.connection() as conn, tenant_transaction(conn, user.user_id):  # time passes
        conn.execute("UPDATE charts SET queued_at = now() - interval '3 minutes' WHERE id = %s", (chart.id,))
    get_chart(ports, user.user_id, chart.id)

    (message,) = drain(settings)
    assert json.loads(message["Body"]) == {
        "kind": "render",
        "chart_id": str(chart.id),
        "user_id": str(user.user_id),
    }


def test_each_message_is_rendered_once_and_a_bad_one_fails_alone(
    api: httpx.Client,
    settings: Any,
    ports: ChartPorts,
    handler: ChartHandler,
    database: PooledDatabase,
) -> None:
    user = new_user(api)
    store_candles(database, 100)
    request_chart(ports, user.user_id, ChartRequest.model_validate(MARKET), now_ms=NOW)
    (message,) = drain(settings)
    twice = [message, {**message, "MessageId": "again"}, {**message, "MessageId": "bad", "Body": "{}"}]

    response = handler(sqs_event(settings, twice), None)

    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def test_a_chart_whose_candles_are_gone_fails_and_is_not_retried(
    api: httpx.Client,
    settings: Any,
    ports: ChartPorts,
    handler: ChartHandler,
    database: PooledDatabase,
) -> None:
    user = new_user(api)
    store_candles(database, 100)
    chart = request_chart(ports, user.user_id, ChartRequest.model_validate(MARKET), now_ms=NOW).chart
    with database.connection() as conn:  # retention removed them meanwhile
        conn.execute("DELETE FROM candles")

    assert run_queue(settings, handler) == {"batchItemFailures": []}
    failed = get_chart(ports, user.user_id, chart.id).chart
    assert failed.status == "failed" and failed.error == "no candles to draw"
    assert drain(settings) == []


def test_the_chart_function_writes_only_under_the_owners_prefix(
    api: httpx.Client,
    settings: Any,
    ports: ChartPorts,
    handler: ChartHandler,
    database: PooledDatabase,
) -> None:
    user = new_user(api)
    store_candles(database, 100)
    request_chart(ports, user.user_id, ChartRequest.model_validate(MARKET), now_ms=NOW)
    run_queue(settings, handler)

    listed = aws_client("s3", settings).list_objects_v2(
        Bucket=settings.charts_bucket_name, Prefix=f"charts/{user.user_id}/"
    )
    assert [UUID(o["Key"].split("/")[1]) for o in listed["Contents"]] == [user.user_id]

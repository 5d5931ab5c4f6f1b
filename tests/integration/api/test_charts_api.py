"""/v1/charts and /v1/bots/{id}/chart over HTTP: 202 while a chart renders, 200 with a
presigned URL once it exists (and at once for an identical request), a PNG behind the URL,
clear 4xx for bad input, and nothing for anyone but the owner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from functions.charts.handler import ChartHandler
from tekoa.aws.charts import S3ChartObjects, SqsChartRequests
from tekoa.charts.worker import ChartWorker
from tekoa.db.connection import PooledDatabase
from tekoa.domain.timeframes import Timeframe
from tests.integration.api.auth_support import settings as settings
from tests.integration.api.trading_support import create_bot, new_user, read_only
from tests.integration.charts.chart_support import drain, png_at, sqs_event, store_candles

H = Timeframe.H1.ms


@pytest.fixture
def database(settings: Any) -> Iterator[PooledDatabase]:
    database = PooledDatabase(settings.database_url, max_size=2)
    yield database
    database.close()


@pytest.fixture
def candles(settings: Any, database: PooledDatabase) -> list[Any]:
    """300 hourly candles of simulated BTC/USDT and 300 1m ones (the bots' timeframe), up to now."""
    drain(settings)
    now = int(time.time() * 1000)
    store_candles(database, 300, end=now, timeframe=Timeframe.M1)
    return store_candles(database, 300, end=now)


@pytest.fixture
def render(settings: Any, database: PooledDatabase) -> Any:
    """Run what is on the chart queue through the chart function's handler."""
    handler = ChartHandler(ChartWorker(database, S3ChartObjects(settings), SqsChartRequests(settings)))

    def run() -> None:
        messages = drain(settings)
        assert messages, "nothing queued"
        assert handler(sqs_event(settings, messages), None) == {"batchItemFailures": []}

    return run


def _market(candles: list[Any], **extra: Any) -> dict[str, Any]:
    """A chart of a fixed, fully stored range (so the answer cannot change with the clock)."""
    return {
        "exchange": "simulated",
        "symbol": "btc/usdt",
        "timeframe": "1h",
        "start": candles[100].open_time,
        "end": candles[-1].open_time + H,
        **extra,
    }


def test_a_chart_is_202_then_200_with_a_url_to_its_png_and_identical_requests_share_it(
    api: httpx.Client, candles: list[Any], render: Any, settings: Any
) -> None:
    alice = new_user(api)
    body = _market(
        candles,
        overlays=[{"name": "sma", "params": {"period": 20}}, {"name": "bollinger"}],
        panels=[{"name": "rsi", "params": {"period": 14}}, {"name": "macd"}],
        style="dark",
        size="mobile",
    )

    queued = api.post("/v1/charts", json=body, headers=alice.headers)

    assert queued.status_code == 202, queued.text
    chart = queued.json()
    assert queued.headers["location"] == f"/v1/charts/{chart['id']}"
    assert (chart["status"], chart["url"], chart["symbol"], chart["bars"]) == (
        "pending",
        None,
        "BTC/USDT",
        200,
    )
    assert chart["overlays"][1] == {"name": "bollinger", "params": {"period": 20, "std": "2"}}

    render()
    ready = api.get(f"/v1/charts/{chart['id']}", headers=alice.headers)
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    image = png_at(ready.json()["url"])
    assert image.size == (ready.json()["width"], ready.json()["height"]) == (720, 1080)

    again = api.post("/v1/charts", json=body, headers=read_only(api, alice))  # a read token may ask too
    assert again.status_code == 200
    assert again.json()["id"] == chart["id"] and again.json()["url"]
    assert drain(settings) == []  # served from the stored object


def test_a_url_lives_the_configured_ttl_at_most_15_minutes(
    api: httpx.Client, candles: list[Any], render: Any, settings: Any
) -> None:
    alice = new_user(api)
    chart = api.post("/v1/charts", json=_market(candles), headers=alice.headers).json()
    render()

    before = int(time.time() * 1000)
    ready = api.get(f"/v1/charts/{chart['id']}", headers=alice.headers).json()

    query = dict(parse_qsl(urlsplit(ready["url"]).query))
    assert int(query["X-Amz-Expires"]) == settings.chart_url_ttl_s <= 900
    assert 0 <= ready["url_expires_at"] - before - settings.chart_url_ttl_s * 1000 < 5_000


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"overlays": [{"name": "supertrend"}]}, "overlays.0.name", "unknown indicator 'supertrend'"),
        ({"overlays": [{"name": "sma", "params": {"period": 0}}]}, "overlays.0.params", "greater than"),
        ({"overlays": [{"name": "rsi", "params": {"period": 14}}]}, "overlays", "ask for it in panels"),
        ({"panels": [{"name": "macd", "params": {"fast": 30}}]}, "panels.0.params", "slow period"),
        ({"style": "neon"}, "style", "light"),
        ({"timeframe": "7m"}, "timeframe", "1m"),
        ({"symbol": "BTCUSDT"}, "symbol", "BASE/QUOTE"),
        ({"exchange": "nowhere"}, "exchange", "unknown exchange"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    api: httpx.Client, candles: list[Any], change: dict[str, Any], field: str, words: str, settings: Any
) -> None:
    alice = new_user(api)

    response = api.post("/v1/charts", json={**_market(candles), **change}, headers=alice.headers)

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert (detail["code"], detail["field"]) == ("VALIDATION_ERROR", field)
    assert words in detail["message"]
    assert drain(settings) == []


def test_a_range_too_long_or_without_candles_is_a_clear_422(
    api: httpx.Client, candles: list[Any], settings: Any
) -> None:
    alice = new_user(api)

    too_long = api.post(
        "/v1/charts", json=_market(candles, start=candles[0].open_time - 900 * H), headers=alice.headers
    )
    empty = api.post("/v1/charts", json=_market(candles, symbol="ETH/USDT"), headers=alice.headers)
    no_market = api.post("/v1/charts", json={"bars": 50}, headers=alice.headers)

    assert too_long.status_code == 422
    assert too_long.json()["detail"]["code"] == "RANGE_TOO_LONG"
    assert too_long.json()["detail"]["field"] == "start"
    assert (
        empty.status_code == 422 and "no stored 1h candles of ETH/USDT" in empty.json()["detail"]["message"]
    )
    assert no_market.status_code == 422 and "exchange is required" in no_market.json()["detail"]["message"]
    assert drain(settings) == []


def test_a_bots_chart_comes_from_its_market_and_a_foreign_bot_is_404(
    api: httpx.Client, candles: list[Any], render: Any
) -> None:
    alice, bob = new_user(api), new_user(api)
    bot = create_bot(api, alice)

    queued = api.get(f"/v1/bots/{bot['id']}/chart?size=mobile&bars=120", headers=alice.headers)
    assert queued.status_code == 202, queued.text
    assert (queued.json()["bot_id"], queued.json()["timeframe"], queued.json()["bars"]) == (
        bot["id"],
        "1m",
        120,
    )
    render()
    ready = api.get(f"/v1/bots/{bot['id']}/chart?size=mobile&bars=120", headers=alice.headers)
    assert ready.status_code == 200 and ready.json()["id"] == queued.json()["id"]
    assert png_at(ready.json()["url"]).size == (720, 1080)

    for response in (
        api.get(f"/v1/bots/{bot['id']}/chart", headers=bob.headers),
        api.post("/v1/charts", json={"bot_id": bot["id"]}, headers=bob.headers),
    ):
        assert response.status_code == 404
        assert response.json()["detail"]["code"] == "NOT_FOUND"
    assert api.get(f"/v1/bots/{bot['id']}/chart?bars=5000", headers=alice.headers).status_code == 422


def test_another_users_chart_is_404_with_no_url(api: httpx.Client, candles: list[Any], render: Any) -> None:
    alice, bob = new_user(api), new_user(api)
    chart = api.post("/v1/charts", json=_market(candles), headers=alice.headers).json()
    render()

    response = api.get(f"/v1/charts/{chart['id']}", headers=bob.headers)

    assert response.status_code == 404
    assert "amazonaws" not in response.text and "X-Amz" not in response.text
    assert api.get(f"/v1/charts/{chart['id']}", headers=alice.headers).json()["url"]

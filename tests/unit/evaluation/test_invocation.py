"""What invokes the evaluator, typed: the market stream's candle.closed, the schedule, a shard."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import Timeframe
from tekoa.evaluation.invocation import UnknownInvocation, parse
from tekoa.market.stream.outbox import candle_event
from tekoa.names import EVENT_SOURCE


def _as_eventbridge_delivers(
    detail_type: str, detail: dict[str, object], source: str = EVENT_SOURCE
) -> dict[str, object]:
    return {
        "version": "0",
        "detail-type": detail_type,
        "source": source,
        "detail": json.loads(json.dumps(detail)),
    }


def test_the_stream_s_candle_closed_event_makes_its_series_candle_due() -> None:
    candle = Candle(
        exchange="binance",
        symbol="ETH/USDT",
        timeframe=Timeframe.M5,
        open_time=1_717_200_000_000,
        open=Decimal("3000.1"),
        high=Decimal("3001"),
        low=Decimal("2999.5"),
        close=Decimal("3000.7"),
        volume=Decimal("12.5"),
        trades=None,
    )
    event = candle_event(candle)

    due, fans_out = parse(_as_eventbridge_delivers(event.detail_type, event.detail))

    assert not fans_out and due.candle_open_time == candle.open_time
    assert (due.filter.exchange, due.filter.symbol, due.filter.timeframe) == ("binance", "ETH/USDT", "5m")


def test_a_schedule_tick_may_fan_out_and_a_shard_takes_its_markets() -> None:
    due, fans_out = parse({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
    shard, shard_fans_out = parse({"kind": "shard", "shard": 3, "shards": 8})

    assert fans_out and due.candle_open_time is None and due.filter.exchange is None
    assert not shard_fans_out and (shard.filter.shard, shard.filter.shards) == (3, 8)


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "order.filled", "source": EVENT_SOURCE, "detail": {}},
        {"detail-type": "candle.closed", "source": "someone.else", "detail": {}},
        {"kind": "shard", "shard": 9, "shards": 8, "extra": 1},
    ],
)
def test_anything_else_is_refused(event: dict[str, object]) -> None:
    with pytest.raises((UnknownInvocation, ValueError)):
        parse(event)

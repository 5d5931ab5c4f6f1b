"""What invokes the evaluator, typed: an EventBridge schedule, a `candle.closed` event, or a
shard of a schedule tick that fanned out (`{"shard": i, "shards": n}`, invoked asynchronously
by the first invocation when more bots run than one invocation should take)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tekoa.db.evaluations import MarketFilter
from tekoa.domain.events import CandleClosed
from tekoa.evaluation.tick import Due
from tekoa.names import EVENT_SOURCE, EventType


class ShardInvocation(BaseModel):
    """One shard of a fanned-out schedule tick: the markets whose hash falls in `shard`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["shard"] = "shard"
    shard: int = Field(ge=0, lt=1024)
    shards: int = Field(ge=1, le=1024)


class UnknownInvocation(ValueError):
    """An event the evaluator does not handle (it is logged and dropped, never retried)."""


def parse(event: dict[str, Any]) -> tuple[Due, bool]:
    """What `event` makes due, and whether it is a schedule tick that may fan out."""
    if event.get("kind") == "shard":
        shard = ShardInvocation.model_validate(event)
        return Due(MarketFilter(shard=shard.shard, shards=shard.shards)), False
    detail_type = event.get("detail-type")
    if detail_type == "Scheduled Event" and event.get("source") == "aws.events":
        return Due(), True
    if detail_type == EventType.CANDLE_CLOSED and event.get("source") == EVENT_SOURCE:
        candle = CandleClosed.model_validate(event.get("detail"))
        return (
            Due(
                MarketFilter(
                    exchange=candle.exchange, symbol=candle.symbol, timeframe=candle.timeframe.value
                ),
                candle_open_time=candle.open_time,
            ),
            False,
        )
    raise UnknownInvocation(
        f"not an evaluator event: detail-type {detail_type!r}, source {event.get('source')!r}"
    )

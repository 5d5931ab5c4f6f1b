"""Messages on the chart queue: render requests from the API, and `order.filled` events.

EventBridge delivers an event to an SQS target as the event's own JSON envelope
(`{"detail-type": ..., "source": ..., "detail": {...}}`); the API's requests are small
documents of their own. Anything else is malformed (ValidationError).
"""

from __future__ import annotations

import json
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class RenderChart(BaseModel):
    """Render a chart the API stored as pending."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["render"]
    chart_id: UUID
    user_id: UUID


class FilledOrder(BaseModel):
    """What the chart function reads of an `order.filled` event's detail."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: UUID
    order_id: UUID
    bot_id: UUID | None = None


class OrderFilledEvent(BaseModel):
    """An `order.filled` event as EventBridge hands it to an SQS target (the literals are
    `tekoa.names.EventType.ORDER_FILLED` and `EVENT_SOURCE`; a test holds them equal)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: Literal["order.filled"] = Field(alias="detail-type")
    source: Literal["tekoa"]
    detail: FilledOrder


ChartMessage = RenderChart | OrderFilledEvent
_MESSAGE: TypeAdapter[ChartMessage] = TypeAdapter(ChartMessage)


def parse_chart_message(body: str) -> ChartMessage:
    """The message in an SQS record's body; ValidationError (or ValueError) when malformed."""
    return _MESSAGE.validate_python(json.loads(body))


def order_filled_message(filled: FilledOrder) -> dict[str, Any]:
    """`filled` as the `order.filled` event the bus delivers (to put it back on the queue)."""
    return {"detail-type": "order.filled", "source": "tekoa", "detail": filled.model_dump(mode="json")}

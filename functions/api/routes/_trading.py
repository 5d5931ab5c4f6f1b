"""Adapters the trading routes share: the order queue and the event bus of the app."""

from __future__ import annotations

from fastapi import Request

from functions.api.deps import AppContext
from tekoa.aws.events import EventBridgePublisher, EventPublisher
from tekoa.aws.queues import OrderQueue, SqsOrderQueue


def order_queue(request: Request) -> OrderQueue:
    """The app's order queue (`app.state.order_queue`; default: the stage's SQS FIFO queue)."""
    queue: OrderQueue | None = getattr(request.app.state, "order_queue", None)
    if queue is None:
        context: AppContext = request.app.state.context
        queue = request.app.state.order_queue = SqsOrderQueue(context.settings)
    return queue


def event_publisher(request: Request) -> EventPublisher:
    """The app's event bus publisher (`app.state.event_publisher`; default: the stage's bus)."""
    publisher: EventPublisher | None = getattr(request.app.state, "event_publisher", None)
    if publisher is None:
        context: AppContext = request.app.state.context
        publisher = request.app.state.event_publisher = EventBridgePublisher(context.settings)
    return publisher

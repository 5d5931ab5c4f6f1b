"""MessagingStack: the queues and the event bus that connect the workloads."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.components.messaging import PlatformEventBus, QueueWithDeadLetters
from infra.constants import CHART_MAX_RECEIVE_COUNT, ORDER_MAX_RECEIVE_COUNT, ORDER_VISIBILITY_TIMEOUT
from tekoa.names import ResourceNames


class MessagingStack(Stack):
    """Order queue (FIFO, per-bot ordering), chart-render queue, and the platform event bus."""

    def __init__(self, scope: Construct, construct_id: str, *, names: ResourceNames, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        orders = QueueWithDeadLetters(
            self,
            "Orders",
            queue_name=names.order_queue,
            dlq_name=names.order_dlq,
            fifo=True,
            max_receive_count=ORDER_MAX_RECEIVE_COUNT,
            visibility_timeout=ORDER_VISIBILITY_TIMEOUT,
        )
        charts = QueueWithDeadLetters(
            self,
            "ChartRequests",
            queue_name=names.chart_queue,
            dlq_name=names.chart_dlq,
            fifo=False,
            max_receive_count=CHART_MAX_RECEIVE_COUNT,
        )
        self.order_queue = orders.queue
        self.chart_queue = charts.queue
        self.event_bus = PlatformEventBus(self, "EventBus", bus_name=names.event_bus).bus

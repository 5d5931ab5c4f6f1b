"""What the platform's event bus delivers to which function: one table shared by the CDK app
and the local cloud.

In AWS each entry becomes an EventBridge rule on the platform bus whose target is the entry's
function. Locally `tekoa.local.aws.provision` creates the same rule on moto's bus with an SQS
queue as its target (moto cannot invoke a Lambda), and the `bus` part of `tekoa up` hands each
queued event to the same handler, with the event EventBridge would have sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from tekoa.names import EVENT_SOURCE, EventType


@dataclass(frozen=True, slots=True)
class BusRule:
    """Events of `detail_types` (from source `tekoa`) invoke `handler` (`module.function`)."""

    name: str
    detail_types: tuple[str, ...]
    handler: str
    description: str

    @property
    def event_pattern(self) -> dict[str, list[str]]:
        """The rule's EventBridge event pattern."""
        return {"source": [EVENT_SOURCE], "detail-type": list(self.detail_types)}


PUSH = BusRule(
    "push",
    (
        EventType.CANDLE_CLOSED,
        EventType.ORDER_UPDATED,
        EventType.ORDER_FILLED,
        EventType.BOT_STATUS_CHANGED,
        EventType.RISK_TRIPPED,
        EventType.EVALUATION_RECORDED,
        EventType.BACKTEST_PROGRESS,
    ),
    "functions.push.handler.handler",
    "Push platform events to the WebSocket connections allowed to see them",
)

NOTIFY = BusRule(
    "notify",
    (EventType.ORDER_FILLED, EventType.BOT_STATUS_CHANGED, EventType.RISK_TRIPPED),
    "functions.notify.handler.handler",
    "Tell users' notification channels (Telegram, webhooks) about fills, stops, risk and failed bots",
)

BUS_RULES: tuple[BusRule, ...] = (PUSH, NOTIFY)


def rule_name(rule: BusRule, stage: str) -> str:
    """The rule's name (the CDK app names it the same)."""
    return f"tekoa-{stage}-bus-{rule.name}"

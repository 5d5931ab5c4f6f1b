"""Names of the platform's AWS resources: one module shared by the CDK app and the local cloud.

Local (moto) and cloud resources are created from the same names, so they cannot drift.
A stage suffix keeps several deployments apart in one account.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE = "tekoa"


@dataclass(frozen=True, slots=True)
class ResourceNames:
    """Every named AWS resource of one stage."""

    stage: str = "local"

    def _name(self, suffix: str) -> str:
        return f"{SERVICE}-{self.stage}-{suffix}"

    @property
    def charts_bucket(self) -> str:
        return self._name("charts")

    @property
    def order_queue(self) -> str:
        # SQS requires FIFO queue names to end in ".fifo".
        return self._name("orders.fifo")

    @property
    def order_dlq(self) -> str:
        return self._name("orders-dlq.fifo")

    @property
    def chart_queue(self) -> str:
        return self._name("charts-requests")

    @property
    def chart_dlq(self) -> str:
        return self._name("charts-requests-dlq")

    @property
    def event_bus(self) -> str:
        return self._name("events")

    @property
    def kms_key_alias(self) -> str:
        return f"alias/{self._name('data')}"

    @property
    def jwt_secret(self) -> str:
        return f"{SERVICE}/{self.stage}/jwt-signing-key"

    @property
    def db_secret(self) -> str:
        return f"{SERVICE}/{self.stage}/db-credentials"


EVENT_SOURCE = "tekoa"


class EventType:
    """detail-type values on the platform's EventBridge bus."""

    CANDLE_CLOSED = "candle.closed"
    ORDER_UPDATED = "order.updated"
    ORDER_FILLED = "order.filled"
    BOT_STATUS_CHANGED = "bot.status_changed"
    RISK_TRIPPED = "risk.tripped"

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
        """The local cloud's bucket; in AWS bucket names are global, see `charts_bucket_in`."""
        return self._name("charts")

    def charts_bucket_in(self, account: str, region: str) -> str:
        """The bucket's name in an AWS account and region: S3 names are global, so the same
        stage deployed twice (two accounts, two regions) must not collide."""
        return f"{self.charts_bucket}-{account}-{region}"

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
    def notify_retry_queue(self) -> str:
        """Notifications whose delivery failed, held back until their next attempt."""
        return self._name("notify-retries")

    @property
    def event_bus(self) -> str:
        return self._name("events")

    @property
    def candle_closed_rule(self) -> str:
        """The bus rule that sends `candle.closed` to the evaluator."""
        return self._name("candle-closed")

    @property
    def evaluator_events_queue(self) -> str:
        """Local only: where the `candle.closed` rule delivers (AWS targets the function)."""
        return self._name("evaluator-events")

    @property
    def trade_chart_rule(self) -> str:
        """The bus rule sending sell fills to the chart queue (named locally; CDK names its own)."""
        return self._name("chart-on-fill")

    @property
    def broker_key_alias(self) -> str:
        """KMS key that wraps the data keys of users' broker-key envelopes (and nothing else)."""
        return f"alias/{self._name('broker-keys')}"

    @property
    def data_key_alias(self) -> str:
        """KMS key of the platform's own data at rest: database storage, secrets, alarm topic."""
        return f"alias/{self._name('data')}"

    @property
    def jwt_secret(self) -> str:
        return f"{SERVICE}/{self.stage}/jwt-signing-key"

    @property
    def db_secret(self) -> str:
        """The cluster's master credentials (schema migrations only)."""
        return f"{SERVICE}/{self.stage}/db-credentials"

    def db_login_secret(self, role: str) -> str:
        """The credentials one workload logs in with (its own database role)."""
        return f"{SERVICE}/{self.stage}/db-login/{role}"


EVENT_SOURCE = "tekoa"


class EventType:
    """detail-type values on the platform's EventBridge bus."""

    CANDLE_CLOSED = "candle.closed"
    ORDER_UPDATED = "order.updated"
    ORDER_FILLED = "order.filled"
    BOT_STATUS_CHANGED = "bot.status_changed"
    RISK_TRIPPED = "risk.tripped"
    EVALUATION_RECORDED = "evaluation.recorded"
    BACKTEST_PROGRESS = "backtest.progress"


CANDLE_CLOSED_PATTERN = {"source": [EVENT_SOURCE], "detail-type": [EventType.CANDLE_CLOSED]}
"""The event pattern of the rule that invokes the evaluator on every closed candle."""


@dataclass(frozen=True, slots=True)
class EventRoute:
    """Which bus events a rule sends on: the CDK rule and the local cloud's are made from one."""

    detail_types: tuple[str, ...]
    detail: dict[str, list[str]]
    sources: tuple[str, ...] = (EVENT_SOURCE,)

    def pattern(self) -> dict[str, object]:
        """The EventBridge event pattern (JSON form)."""
        return {"source": list(self.sources), "detail-type": list(self.detail_types), "detail": self.detail}


TRADE_CHART_EVENTS = EventRoute(detail_types=(EventType.ORDER_FILLED,), detail={"side": ["sell"]})
"""Events routed to the chart queue: sell fills, which may close a bot's trade (positions are
long only); the chart function checks whether one did."""

"""MonitoringStack: alarms on an encrypted topic, the dashboard and the budget, for the whole app."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from constructs import Construct, IConstruct

from infra.components.monitoring import PlatformMonitoring
from infra.config import StageConfig


class MonitoringStack(Stack):
    """Watches every resource the app contains when it is synthesised (see PlatformMonitoring)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        watched: IConstruct,
        key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.monitoring = PlatformMonitoring(self, "Monitoring", config=config, watched=watched, key=key)

"""WorkersStack: the background compute (ingest Lambda, market-stream Fargate service, executor
and reconciler Lambdas, scheduled housekeeping)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.components.execution import ExecutionFunctions
from infra.components.ingest import IngestFunction
from infra.components.market_stream import MarketStreamService
from infra.components.network import PlatformNetwork
from infra.components.schedules import MaintenanceFunction
from infra.config import StageConfig
from infra.stacks.data import DataStack
from infra.stacks.messaging import MessagingStack
from tekoa.schedules import schedule


class WorkersStack(Stack):
    """Background workloads; the evaluator and charts functions will join here."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        network: PlatformNetwork,
        data: DataStack,
        messaging: MessagingStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.ingest = IngestFunction(
            self,
            "Ingest",
            stage=config.stage,
            every=config.profile.ingest_every,
            reserved_concurrency=config.reserved_concurrency,
            vpc=network.vpc,
            subnets=network.compute_subnets,
            database=data.database,
        )
        self.market_stream = MarketStreamService(
            self,
            "MarketStream",
            stage=config.stage,
            running=config.runs_market_stream,
            vpc=network.vpc,
            subnets=network.compute_subnets,
            database=data.database,
            event_bus=messaging.event_bus,
            order_queue=messaging.order_queue,
            market_environment=config.market_environment,
        )
        self.execution = ExecutionFunctions(
            self,
            "Execution",
            stage=config.stage,
            vpc=network.vpc,
            subnets=network.compute_subnets,
            database=data.database,
            order_queue=messaging.order_queue,
            event_bus=messaging.event_bus,
            broker_key=data.broker_key,
            schedule=schedule("reconcile"),
            reconcile_every=config.reconcile_every,
        )
        self.maintenance = MaintenanceFunction(
            self,
            "Maintenance",
            stage=config.stage,
            bundle=config.bundle,
            reserved_concurrency=config.reserved_concurrency,
            vpc=network.vpc,
            subnets=network.compute_subnets,
            database=data.database,
            schedule=schedule("maintenance"),
        )

"""The executor Lambda on the order queue, and the reconciler Lambda on a schedule (every minute
while the market stream runs).

One image holds both (the engine's fill model needs numpy/numba, live accounts need ccxt);
each function picks its handler. Exactly the grants they use: their database login, opening
broker-key envelopes (Decrypt only, under the envelope's context), putting order events on
the bus, and on the order queue: consuming it (the executor, through the event source
mapping; ChangeMessageVisibility lets it send a poison message on to the DLQ at once) or
sending to it (the reconciler: stuck orders and paper triggers).
"""

from __future__ import annotations

import dataclasses

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.database import Database
from infra.components.encryption import BrokerKey
from infra.components.functions import workload_function
from infra.components.schedules import ScheduleRule
from infra.constants import (
    EXECUTOR_BATCH_SIZE,
    EXECUTOR_MEMORY_MB,
    EXECUTOR_TIMEOUT_S,
    RECONCILER_MEMORY_MB,
    RECONCILER_TIMEOUT,
)
from infra.workloads import EXECUTOR, RECONCILER, Workload
from tekoa.schedules import Schedule


class ExecutionFunctions(Construct):
    """The executor (order queue consumer) and the reconciler (every minute)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        order_queue: sqs.IQueue,
        event_bus: events.IEventBus,
        broker_key: BrokerKey,
        schedule: Schedule,
        reconcile_every: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self.executor = self._function(
            "Executor",
            EXECUTOR,
            "Tekoa executor: places each order once, records fills, positions and the ledger",
            EXECUTOR_MEMORY_MB,
            Duration.seconds(EXECUTOR_TIMEOUT_S),
            stage=stage,
            vpc=vpc,
            subnets=subnets,
            database=database,
            event_bus=event_bus,
            broker_key=broker_key,
        )
        self.executor.add_event_source(
            sources.SqsEventSource(
                order_queue,
                batch_size=EXECUTOR_BATCH_SIZE,
                # Failed records (and those after them in their group) come back; the rest
                # of the batch is done.
                report_batch_item_failures=True,
            )
        )
        self.reconciler = self._function(
            "Reconciler",
            RECONCILER,
            "Tekoa reconciliation: ledger checks, live orders and balances, stuck orders, paper sweep",
            RECONCILER_MEMORY_MB,
            RECONCILER_TIMEOUT,
            stage=stage,
            vpc=vpc,
            subnets=subnets,
            database=database,
            event_bus=event_bus,
            broker_key=broker_key,
        )
        order_queue.grant_send_messages(self.reconciler)
        assert schedule.handler == RECONCILER.handler, "the schedule must invoke the reconciler"
        # The table's rate is the local one; a deployment's follows whether orders can trade.
        rate = events.Schedule.rate(reconcile_every).expression_string
        self.schedule = ScheduleRule(
            self,
            "ReconcileSchedule",
            stage=stage,
            schedule=dataclasses.replace(schedule, rate=rate),
            function=self.reconciler,
        )

    def _function(
        self,
        construct_id: str,
        workload: Workload,
        description: str,
        memory_mb: int,
        timeout: Duration,
        *,
        stage: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        event_bus: events.IEventBus,
        broker_key: BrokerKey,
    ) -> lambda_.Function:
        scope = Construct(self, construct_id)
        security_group = ec2.SecurityGroup(
            scope,
            "SecurityGroup",
            vpc=vpc,
            description=f"{workload.name} Lambda: no ingress; egress to the database, AWS APIs and exchanges",
        )
        function = workload_function(
            scope,
            workload,
            bundle=True,
            description=description,
            memory_mb=memory_mb,
            timeout=timeout,
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            environment={
                **database.client_environment(stage, workload.database_login),
                # numba caches compiled kernels next to the source by default: read-only in Lambda.
                "NUMBA_CACHE_DIR": "/tmp",  # noqa: S108 - Lambda's only writable path
            },
            reserved_concurrency=None,
        )
        database.grant_connect(
            scope,
            security_group,
            function,
            f"{workload.name} Lambda to the database",
            workload.database_login,
        )
        broker_key.grant_envelope_open(function)
        event_bus.grant_put_events_to(function)
        return function

"""The ingest Lambda (container image) and the schedule that runs it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from infra.components.database import Database
from infra.components.functions import workload_function
from infra.constants import INGEST_MEMORY_MB, INGEST_TIMEOUT, ONE_AT_A_TIME
from infra.workloads import INGEST


class IngestFunction(Construct):
    """Candle backfill (ccxt REST) packaged as an image: numpy/numba/pandas/ccxt exceed a zip.

    The image is built from the repo root by `cdk deploy` (or the CI's docker); `cdk synth`
    only stages the build context, so synthesis needs no Docker engine. EventBridge runs it
    every `every`. Two runs may overlap only with reserved concurrency off, and then the
    per-series advisory locks keep two backfills of one market from interleaving.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        every: Duration,
        reserved_concurrency: bool,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Ingest Lambda: no ingress; egress to database/AWS APIs",
        )
        self.function = workload_function(
            self,
            INGEST,
            bundle=True,
            description="Tekoa candle backfill",
            memory_mb=INGEST_MEMORY_MB,
            timeout=INGEST_TIMEOUT,
            vpc=vpc,
            subnets=subnets,
            security_group=self.security_group,
            environment={
                **database.client_environment(stage, INGEST.database_login),
                # numba caches compiled kernels next to the source by default: read-only in Lambda.
                "NUMBA_CACHE_DIR": "/tmp",  # noqa: S108 - Lambda's only writable path
            },
            reserved_concurrency=ONE_AT_A_TIME if reserved_concurrency else None,
        )
        database.grant_connect(
            self, self.security_group, self.function, "Ingest Lambda to the database", INGEST.database_login
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Backfill recent candles",
            schedule=events.Schedule.rate(every),
            # A missed run is covered by the next one: do not pile retries on it.
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )

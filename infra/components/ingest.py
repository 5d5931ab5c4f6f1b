"""The ingest Lambda (container image) and the schedule that runs it."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.components.api import acknowledge_lambda_runtime
from infra.components.database import Database
from infra.constants import (
    ASSET_EXCLUDES,
    IMAGE_PLATFORM,
    INGEST_DOCKERFILE,
    INGEST_MEMORY_MB,
    INGEST_RESERVED_CONCURRENCY,
    INGEST_SCHEDULE,
    INGEST_TIMEOUT,
    LAMBDA_ARCHITECTURE,
    LOG_RETENTION,
    REPO_ROOT,
)


class IngestFunction(Construct):
    """Candle backfill (ccxt REST) packaged as an image: numpy/numba/pandas/ccxt exceed a zip.

    The image is built from the repo root by `cdk deploy` (or the CI's docker); `cdk synth`
    only stages the build context, so synthesis needs no Docker engine. EventBridge runs it
    every INGEST_SCHEDULE; reserved concurrency 1 keeps two backfills from racing.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="Ingest Lambda: no ingress; egress to proxy/endpoints"
        )
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            description="Tekoa candle backfill",
            code=lambda_.DockerImageCode.from_image_asset(
                str(REPO_ROOT), file=INGEST_DOCKERFILE, exclude=list(ASSET_EXCLUDES), platform=IMAGE_PLATFORM
            ),
            architecture=LAMBDA_ARCHITECTURE,
            memory_size=INGEST_MEMORY_MB,
            timeout=INGEST_TIMEOUT,
            reserved_concurrent_executions=INGEST_RESERVED_CONCURRENCY,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={
                **database.client_environment(stage),
                "POWERTOOLS_SERVICE_NAME": "tekoa-ingest",
                # numba caches compiled kernels next to the source by default: read-only in Lambda.
                "NUMBA_CACHE_DIR": "/tmp",  # noqa: S108 - Lambda's only writable path
            },
        )
        database.grant_connect(self, self.security_group, self.function, "Ingest Lambda to RDS Proxy")
        acknowledge_lambda_runtime(self.function)

        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Backfill recent candles",
            schedule=events.Schedule.rate(INGEST_SCHEDULE),
            # A missed run is covered by the next one 15 minutes later: do not pile retries on it.
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )

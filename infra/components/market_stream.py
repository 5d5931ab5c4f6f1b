"""The market-stream Fargate service: exchange WebSocket -> candles -> Postgres + events."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.components.database import Database
from infra.constants import (
    ASSET_EXCLUDES,
    FARGATE_CPU_ARCHITECTURE,
    IMAGE_PLATFORM,
    LOG_RETENTION,
    MARKET_STREAM_CPU,
    MARKET_STREAM_DOCKERFILE,
    MARKET_STREAM_HEALTH_URL,
    MARKET_STREAM_MEMORY_MB,
    MARKET_STREAM_STOP_TIMEOUT,
    REPO_ROOT,
)
from infra.nag import acknowledge

# The slim image has no curl; the interpreter it already carries does the probe.
HEALTH_PROBE = (
    "import sys, urllib.request; "
    f"sys.exit(0 if urllib.request.urlopen('{MARKET_STREAM_HEALTH_URL}', timeout=3).status == 200 else 1)"
)


class MarketStreamService(Construct):
    """Exactly one streaming task, never two.

    Two tasks would aggregate the same trades twice and announce every candle twice, so
    deployments stop the old task before starting the new one (min 0% / max 100%): a short gap
    in the stream, which the candle upserts and the ingest backfill repair. No load balancer:
    nothing calls in; the container health check restarts a wedged task.
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
        event_bus: events.IEventBus,
        market_environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=MARKET_STREAM_CPU,
            memory_limit_mib=MARKET_STREAM_MEMORY_MB,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=FARGATE_CPU_ARCHITECTURE,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        task_definition.add_container(
            "market-stream",
            image=ecs.ContainerImage.from_asset(
                str(REPO_ROOT),
                file=MARKET_STREAM_DOCKERFILE,
                exclude=list(ASSET_EXCLUDES),
                platform=IMAGE_PLATFORM,
            ),
            essential=True,
            environment={
                **database.client_environment(stage),
                **market_environment,
            },
            logging=ecs.LogDrivers.aws_logs(stream_prefix="market-stream", log_group=log_group),
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "-c", HEALTH_PROBE],
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                # numba compiles its kernels on the first candles: give start-up time to settle.
                start_period=Duration.seconds(60),
            ),
            stop_timeout=MARKET_STREAM_STOP_TIMEOUT,
        )
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="Market stream: no ingress; egress to proxy/endpoints"
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=task_definition,
            desired_count=1,
            min_healthy_percent=0,
            max_healthy_percent=100,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        # The task role gets exactly these grants: read the DB secret, publish to the bus.
        database.grant_connect(
            self, self.security_group, task_definition.task_role, "Market stream to RDS Proxy"
        )
        event_bus.grant_put_events_to(task_definition.task_role)

        acknowledge(
            task_definition,
            "The execution role's ecr:GetAuthorizationToken has no resource-level scope; image "
            "pulls themselves are scoped to the asset repository.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        acknowledge(
            task_definition,
            "Only non-secret settings are plain environment variables; the database password is "
            "fetched at runtime from Secrets Manager with the task role.",
            "AwsSolutions-ECS2",
        )

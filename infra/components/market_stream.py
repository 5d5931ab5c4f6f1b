"""The market-stream Fargate service: exchange WebSocket -> candles -> Postgres + events."""

from __future__ import annotations

from aws_cdk import Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.database import Database
from infra.components.realtime import grant_websocket_push, management_environment
from infra.constants import (
    ASSET_EXCLUDES,
    FARGATE_CPU_ARCHITECTURE,
    IMAGE_PLATFORM,
    LOG_RETENTION,
    MARKET_STREAM_CPU,
    MARKET_STREAM_HEALTH_URL,
    MARKET_STREAM_MEMORY_MB,
    MARKET_STREAM_STOP_TIMEOUT,
    REPO_ROOT,
    XRAY_DAEMON_ADDRESS,
    XRAY_DAEMON_DOCKERFILE,
    XRAY_DAEMON_MEMORY_MB,
)
from infra.nag import acknowledge
from infra.workloads import MARKET_STREAM

# The slim image has no curl; the interpreter it already carries does the probe.
HEALTH_PROBE = (
    "import sys, urllib.request; "
    f"sys.exit(0 if urllib.request.urlopen('{MARKET_STREAM_HEALTH_URL}', timeout=3).status == 200 else 1)"
)


class MarketStreamService(Construct):
    """Exactly one streaming task, never two (or none, when the profile leaves it off).

    Two tasks would aggregate the same trades twice and announce every candle twice, so
    deployments stop the old task before starting the new one (min 0% / max 100%): a short gap
    in the stream, which the candle upserts and the ingest backfill repair. No load balancer:
    nothing calls in; the container health check restarts a wedged task. An X-Ray daemon runs
    beside it, so the stream's database writes and event batches are traced like the Lambdas.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        running: bool,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        event_bus: events.IEventBus,
        order_queue: sqs.IQueue,
        market_environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            # The running-task alarm reads the service's free AWS/ECS metrics; Container
            # Insights would add about thirty custom metrics for one task.
            container_insights_v2=ecs.ContainerInsights.DISABLED,
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
        assert MARKET_STREAM.dockerfile is not None
        self.task_definition = task_definition
        self.container = task_definition.add_container(
            "market-stream",
            image=ecs.ContainerImage.from_asset(
                str(REPO_ROOT),
                file=MARKET_STREAM.dockerfile,
                exclude=list(ASSET_EXCLUDES),
                platform=IMAGE_PLATFORM,
                build_args=MARKET_STREAM.build_args,
            ),
            essential=True,
            environment={
                **database.client_environment(stage, MARKET_STREAM.database_login),
                **market_environment,
                "AWS_XRAY_DAEMON_ADDRESS": XRAY_DAEMON_ADDRESS,
                # The candle-freshness alarm evaluates one-minute periods of this metric.
                "TEKOA_MARKET_METRICS_EVERY_S": "60",
                "POWERTOOLS_SERVICE_NAME": f"tekoa-{MARKET_STREAM.name}",
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
        task_definition.add_container(
            "xray-daemon",
            image=ecs.ContainerImage.from_asset(
                str(REPO_ROOT),
                file=XRAY_DAEMON_DOCKERFILE,
                # Its build needs nothing but the Dockerfile itself.
                exclude=["*", f"!{XRAY_DAEMON_DOCKERFILE}"],
                ignore_mode=IgnoreMode.DOCKER,
                platform=IMAGE_PLATFORM,
            ),
            # Tracing is an aid: a dead daemon must not take the stream down with it.
            essential=False,
            memory_reservation_mib=XRAY_DAEMON_MEMORY_MB,
            port_mappings=[ecs.PortMapping(container_port=2000, protocol=ecs.Protocol.UDP)],
            logging=ecs.LogDrivers.aws_logs(stream_prefix="xray-daemon", log_group=log_group),
        )
        task_definition.add_to_task_role_policy(
            iam.PolicyStatement(
                actions=[
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                ],
                resources=["*"],
            )
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Market stream: no ingress; egress to database/AWS APIs",
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=task_definition,
            desired_count=1 if running else 0,
            min_healthy_percent=0,
            max_healthy_percent=100,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        # The task role gets exactly these grants: read its login secret, publish to the bus,
        # send paper-order triggers to the order queue, trace.
        database.grant_connect(
            self,
            self.security_group,
            task_definition.task_role,
            "Market stream to the database",
            MARKET_STREAM.database_login,
        )
        event_bus.grant_put_events_to(task_definition.task_role)
        order_queue.grant_send_messages(task_definition.task_role)

        acknowledge(
            task_definition,
            "No resource-level scope exists for the execution role's ecr:GetAuthorizationToken "
            "(image pulls themselves are scoped to the asset repository) nor for X-Ray's "
            "trace and sampling calls.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        acknowledge(
            task_definition,
            "Only non-secret settings are plain environment variables; the database password is "
            "fetched at runtime from Secrets Manager with the task role.",
            "AwsSolutions-ECS2",
        )
        acknowledge(
            self.cluster,
            "Container Insights is off on purpose: one task, watched through the service's free "
            "AWS/ECS metrics and the stream's own candle-age metric.",
            "AwsSolutions-ECS4",
        )

    def allow_websocket_push(self, stage: apigwv2.WebSocketStage) -> None:
        """Let the stream push forming candles to `stage`'s connections (`tekoa.market.stream.live`)."""
        for name, value in management_environment(stage).items():
            self.container.add_environment(name, value)
        grant_websocket_push(self.task_definition, self.task_definition.task_role, stage)

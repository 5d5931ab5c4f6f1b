"""Live updates in AWS: the WebSocket route handler, and the push function on the event bus.

* `WebSocketRoutesFunction` serves every route of the WebSocket API ($connect with the token,
  $disconnect, subscribe, unsubscribe, ping, $default). It answers through API Gateway (route
  responses), so it never calls @connections: it runs in the compute subnets and needs only the
  database and the JWT secret.
* `NotifyFunction` is the target of the bus rule `tekoa.bus_rules.NOTIFY` and of its own retry
  queue: it opens the channel's sealed secret and calls Telegram or the user's webhook, also
  over the internet, so it too runs only where there is egress.
* `PushFunction` is the target of the bus rule `tekoa.bus_rules.PUSH`: it looks the recipients
  up in the database and posts to the stage's @connections endpoint, a public AWS endpoint that
  no VPC endpoint serves (docs/DECISIONS.md, "Where the pusher runs"). So it runs in the compute
  subnets of a stage with egress; the app does not build it otherwise.
"""

from __future__ import annotations

from aws_cdk import CfnElement, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as lambda_events
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.database import Database
from infra.components.encryption import BrokerKey
from infra.components.functions import workload_function
from infra.components.messaging import QueueWithDeadLetters
from infra.components.schedules import ScheduleRule
from infra.components.secrets import grant_secret_read
from infra.constants import (
    NOTIFY_MAX_RECEIVE_COUNT,
    NOTIFY_MEMORY_MB,
    NOTIFY_TIMEOUT,
    PUSH_MEMORY_MB,
    PUSH_TIMEOUT,
    WS_ROUTES_MEMORY_MB,
    WS_ROUTES_TIMEOUT,
)
from infra.nag import acknowledge
from infra.workloads import NOTIFY, PUSH, WS_ROUTES
from tekoa.bus_rules import NOTIFY as NOTIFY_RULE
from tekoa.bus_rules import PUSH as PUSH_RULE
from tekoa.bus_rules import rule_name
from tekoa.names import ResourceNames
from tekoa.schedules import schedule


def grant_websocket_push(owner: Construct, grantee: iam.IGrantable, stage: apigwv2.WebSocketStage) -> None:
    """Let `grantee` (of `owner`) post to and drop the connections of `stage`
    (execute-api:ManageConnections, nothing else)."""
    stack = Stack.of(owner)
    if stack is not Stack.of(stage):
        # From another stack the API's id would be an export whose name cdk-nag cannot be told in
        # advance; the stage's name and the @connections path bound the grant instead.
        connections = stack.format_arn(
            service="execute-api", resource="*", resource_name=f"{stage.stage_name}/*/@connections/*"
        )
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["execute-api:ManageConnections"], resource_arns=[connections]
        )
        acknowledge(
            owner,
            f"Any connection of a '{stage.stage_name}' stage's @connections API (ids exist at run time).",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
            f"*/{stage.stage_name}/*/@connections/*]",
        )
        return
    stage.grant_management_api_access(grantee)
    api_resource = stage.api.node.default_child
    assert isinstance(api_resource, CfnElement)  # an L2 always wraps its L1
    api_logical_id = stack.resolve(stack.get_logical_id(api_resource))
    acknowledge(
        owner,
        "Scoped to this API's stage: any method (POST, DELETE) on any connection id, which only "
        "exists at run time.",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
        f"<{api_logical_id}>/{stage.stage_name}/*/@connections/*]",
    )


def management_environment(stage: apigwv2.WebSocketStage) -> dict[str, str]:
    """Where a pusher posts: the stage's @connections endpoint (`tekoa.settings.ws_management_url`)."""
    return {"TEKOA_WS_MANAGEMENT_URL": stage.callback_url}


class WebSocketRoutesFunction(Construct):
    """`functions.api.websocket.handler` as a zip Lambda in the VPC, logging in as `tekoa_ws`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        bundle: bool,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        jwt_secret: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="WebSocket routes: no ingress; egress to database/AWS APIs",
        )
        self.function = workload_function(
            self,
            WS_ROUTES,
            bundle=bundle,
            description="Tekoa WebSocket API routes ($connect token check, subscriptions)",
            memory_mb=WS_ROUTES_MEMORY_MB,
            timeout=WS_ROUTES_TIMEOUT,
            vpc=vpc,
            subnets=subnets,
            security_group=self.security_group,
            environment=database.client_environment(stage, WS_ROUTES.database_login),
            reserved_concurrency=None,
        )
        database.grant_connect(
            self,
            self.security_group,
            self.function,
            "WebSocket routes to the database",
            WS_ROUTES.database_login,
        )
        grant_secret_read(jwt_secret, database.key, self.function)


class PushFunction(Construct):
    """`functions.push.handler` on the bus rule `PUSH`, in the compute subnets (which have egress)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        bundle: bool,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        event_bus: events.IEventBus,
        websocket_stage: apigwv2.WebSocketStage,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Push: no ingress; egress to database and @connections",
        )
        self.function = workload_function(
            self,
            PUSH,
            bundle=bundle,
            description=f"Tekoa push: {PUSH_RULE.description}",
            memory_mb=PUSH_MEMORY_MB,
            timeout=PUSH_TIMEOUT,
            vpc=vpc,
            subnets=subnets,
            security_group=self.security_group,
            environment={
                **database.client_environment(stage, PUSH.database_login),
                **management_environment(websocket_stage),
            },
            reserved_concurrency=None,
        )
        database.grant_connect(
            self, self.security_group, self.function, "Push to the database", PUSH.database_login
        )
        grant_websocket_push(self.function, self.function, websocket_stage)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=rule_name(PUSH_RULE, stage),
            description=PUSH_RULE.description,
            event_bus=event_bus,
            event_pattern=events.EventPattern(
                source=PUSH_RULE.event_pattern["source"], detail_type=list(PUSH_RULE.detail_types)
            ),
            # A live update is worth little a minute late: one retry, then it is dropped.
            targets=[
                targets.LambdaFunction(self.function, retry_attempts=1, max_event_age=Duration.minutes(1))
            ],
        )


class NotifyFunction(Construct):
    """`functions.notify.handler` on the bus rule `NOTIFY` and on the notification retry queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        bundle: bool,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        event_bus: events.IEventBus,
        broker_key: BrokerKey,
        names: ResourceNames,
    ) -> None:
        super().__init__(scope, construct_id)
        self.retries = QueueWithDeadLetters(
            self,
            "Retries",
            queue_name=names.notify_retry_queue,
            dlq_name=f"{names.notify_retry_queue}-dlq",
            fifo=False,
            max_receive_count=NOTIFY_MAX_RECEIVE_COUNT,
            visibility_timeout=Duration.seconds(NOTIFY_TIMEOUT.to_seconds() * 6),
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Notify: no ingress; egress to database, Telegram, webhooks",
        )
        self.function = workload_function(
            self,
            NOTIFY,
            bundle=bundle,
            description=f"Tekoa notify: {NOTIFY_RULE.description}",
            memory_mb=NOTIFY_MEMORY_MB,
            timeout=NOTIFY_TIMEOUT,
            vpc=vpc,
            subnets=subnets,
            security_group=self.security_group,
            environment=database.client_environment(stage, NOTIFY.database_login),
            reserved_concurrency=None,
        )
        database.grant_connect(
            self, self.security_group, self.function, "Notify to the database", NOTIFY.database_login
        )
        broker_key.grant_envelope_open(self.function)
        self.retries.queue.grant_send_messages(self.function)
        self.function.add_event_source(lambda_events.SqsEventSource(self.retries.queue, batch_size=10))
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=rule_name(NOTIFY_RULE, stage),
            description=NOTIFY_RULE.description,
            event_bus=event_bus,
            event_pattern=events.EventPattern(
                source=NOTIFY_RULE.event_pattern["source"], detail_type=list(NOTIFY_RULE.detail_types)
            ),
            # Failed deliveries are retried through the queue; a crash retries the event twice.
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
        self.daily_summary = ScheduleRule(
            self,
            "DailySummary",
            stage=stage,
            schedule=schedule("notify-daily-summary"),
            function=self.function,
        )

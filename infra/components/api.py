"""The API Lambda and the two API Gateway front doors (HTTP and WebSocket) that invoke it."""

from __future__ import annotations

import json
from collections.abc import Mapping

import jsii
from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.database import Database
from infra.components.encryption import BrokerKey
from infra.components.functions import workload_function
from infra.components.secrets import grant_secret_read
from infra.constants import (
    API_MEMORY_MB,
    API_RESERVED_CONCURRENCY,
    API_THROTTLE_BURST,
    API_THROTTLE_RATE,
    API_TIMEOUT,
    LOG_RETENTION,
    WS_STAGE_NAME,
)
from infra.nag import acknowledge
from infra.workloads import API
from tekoa.charts.spec import CHART_PREFIX
from tekoa.names import ResourceNames
from tekoa.realtime.messages import ROUTES

_HTTP_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "method": "$context.httpMethod",
        "path": "$context.path",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "integrationError": "$context.integrationErrorMessage",
    }
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    """Access-log destination and line format for an API Gateway v2 stage."""

    def __init__(self, log_group: logs.ILogGroup, line_format: str) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)
        self._format = apigw.AccessLogFormat.custom(line_format)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


class ApiFunction(Construct):
    """The FastAPI app (via Mangum) as one zip Lambda in the VPC, with exactly the grants it uses.

    It logs in to the database as `tekoa_api`, reads the JWT secret, makes and opens broker-key
    envelopes (only under their encryption context), enqueues orders and chart renders,
    publishes platform events and presigns chart URLs. (WebSocket routes and pushes are other
    functions: `infra.components.realtime`.)

    Its concurrency is bounded three ways: API Gateway admits API_THROTTLE_RATE requests per
    second (burst API_THROTTLE_BURST), its database role may hold at most its connection limit,
    and with `reserved_concurrency` it is capped at API_RESERVED_CONCURRENCY executions.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        bundle: bool,
        reserved_concurrency: bool,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        jwt_secret: secretsmanager.ISecret,
        broker_key: BrokerKey,
        order_queue: sqs.IQueue,
        chart_queue: sqs.IQueue,
        event_bus: events.IEventBus,
        names: ResourceNames,
        market_environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="API Lambda: no ingress; egress to database/AWS APIs"
        )
        self.function = workload_function(
            self,
            API,
            bundle=bundle,
            description="Tekoa REST API (FastAPI via Mangum)",
            memory_mb=API_MEMORY_MB,
            timeout=API_TIMEOUT,
            vpc=vpc,
            subnets=subnets,
            security_group=self.security_group,
            environment={
                **database.client_environment(stage, API.database_login),
                # The markets the stream follows: /health reports whether their data is ready.
                **market_environment,
            },
            reserved_concurrency=API_RESERVED_CONCURRENCY if reserved_concurrency else None,
        )
        database.grant_connect(
            self, self.security_group, self.function, "API Lambda to the database", API.database_login
        )
        grant_secret_read(jwt_secret, database.key, self.function)
        broker_key.grant_envelope_use(self.function)
        order_queue.grant_send_messages(self.function)
        event_bus.grant_put_events_to(self.function)
        # Charts: render requests go on the chart queue; presigning a URL (and checking the image
        # is still there: HEAD) needs only s3:GetObject, on the chart prefix, not grant_read's
        # List*/GetBucket*. The bucket's name is known from ResourceNames.
        chart_queue.grant_send_messages(self.function)
        bucket = names.charts_bucket_in(Aws.ACCOUNT_ID, Aws.REGION)
        self.function.add_environment("TEKOA_CHARTS_BUCKET", bucket)
        charts_objects = Stack.of(self).format_arn(
            service="s3", region="", account="", resource=bucket, resource_name=f"{CHART_PREFIX}*"
        )
        iam.Grant.add_to_principal(
            grantee=self.function, actions=["s3:GetObject"], resource_arns=[charts_objects]
        )
        charts_finding = names.charts_bucket_in("<AWS::AccountId>", "<AWS::Region>")
        acknowledge(
            self.function,
            "GetObject on the chart prefix: a chart's key is only known per user and content.",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{charts_finding}/{CHART_PREFIX}*]",
        )


class HttpApi(Construct):
    """HTTP API (API Gateway v2): every route goes to the API Lambda; FastAPI does the routing.

    Authentication is the app's JWT check, not an API Gateway authorizer, so the same code path
    runs locally under uvicorn and in AWS, and register/login stay reachable.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, api_name: str, handler: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=api_name,
            default_integration=integrations.HttpLambdaIntegration("Lambda", handler),
            # The default stage is declared below so that it can carry throttling and access logs.
            create_default_stage=False,
        )
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = self.api.add_stage(
            "DefaultStage",
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=API_THROTTLE_RATE, burst_limit=API_THROTTLE_BURST),
            access_log_settings=_AccessLogs(access_logs, _HTTP_ACCESS_LOG_FORMAT),
        )
        acknowledge(
            self.api,
            "Authorization is the app's JWT check (a FastAPI dependency); public routes (register, "
            "login, health) must stay open.",
            "AwsSolutions-APIG4",
        )

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return self.api.api_endpoint


class WebSocketApi(Construct):
    """WebSocket API whose routes all invoke the WebSocket route handler (not the REST API's
    Mangum app, which cannot take WebSocket events).

    Routes are selected on `$request.body.action`: subscribe, unsubscribe and ping, anything else
    $default; each answers with one message (a route response). The handler authenticates on
    $connect (token in the query string or a subprotocol), so there is no API Gateway authorizer.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, api_name: str, handler: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)

        def route(route_id: str, *, answers: bool) -> apigwv2.WebSocketRouteOptions:
            return apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration(f"{route_id}Integration", handler),
                return_response=answers,
            )

        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=api_name,
            route_selection_expression="$request.body.action",
            connect_route_options=route("Connect", answers=False),
            disconnect_route_options=route("Disconnect", answers=False),
            default_route_options=route("Default", answers=True),
        )
        for action in ROUTES:
            self.api.add_route(
                action, integration=route(action.title(), answers=True).integration, return_response=True
            )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=WS_STAGE_NAME,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=API_THROTTLE_RATE, burst_limit=API_THROTTLE_BURST),
        )
        acknowledge(
            self.api,
            "The route handler authenticates the connection on $connect with the user's token.",
            "AwsSolutions-APIG4",
        )
        acknowledge(
            self.stage,
            "WebSocket access logs need the account-wide API Gateway CloudWatch role, a singleton "
            "shared by every stage in the account; the route handler logs every connect, "
            "disconnect and refusal.",
            "AwsSolutions-APIG1",
        )

    @property
    def url(self) -> str:
        """wss:// URL clients connect to."""
        return self.stage.url

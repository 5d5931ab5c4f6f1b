"""The API Lambda and the two API Gateway front doors (HTTP and WebSocket) that invoke it."""

from __future__ import annotations

import json
from collections.abc import Mapping

import jsii
from aws_cdk import Annotations, CfnElement, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.bundling import python_lambda_code
from infra.components.database import Database
from infra.components.secrets import grant_secret_read
from infra.constants import (
    API_EXTRAS,
    API_HANDLER,
    API_MEMORY_MB,
    API_THROTTLE_BURST,
    API_THROTTLE_RATE,
    API_TIMEOUT,
    LAMBDA_ARCHITECTURE,
    LAMBDA_RUNTIME,
    LOG_RETENTION,
    WS_STAGE_NAME,
)
from infra.nag import acknowledge

# Repo path -> path inside the zip. The handler is imported as `functions.api.handler`, and
# `tekoa` must sit at the zip's root to be importable without a layer.
API_SOURCES = {
    "functions/__init__.py": "functions/__init__.py",
    "functions/api": "functions/api",
    "layers/tekoa/tekoa": "tekoa",
}

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


LAMBDA_MANAGED_POLICY_FINDINGS = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
)


def acknowledge_lambda_runtime(function: lambda_.Function) -> None:
    """Accept the findings every VPC Lambda of the platform shares, with the reason."""
    acknowledge(
        function,
        "AWS-managed basic-execution and VPC-access policies only allow writing the function's "
        "logs and managing its own network interfaces.",
        *LAMBDA_MANAGED_POLICY_FINDINGS,
    )
    acknowledge(
        function,
        "X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level scope.",
        "AwsSolutions-IAM5[Resource::*]",
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

    It reads the DB and JWT secrets, envelope-encrypts broker keys with the data key, enqueues
    orders, publishes platform events, presigns chart URLs, and pushes WebSocket messages.
    """

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
        key: kms.IKey,
        order_queue: sqs.IQueue,
        event_bus: events.IEventBus,
        charts_bucket_name: str,
        market_environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="API Lambda: no ingress; egress to proxy/endpoints"
        )
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        self.function = lambda_.Function(
            self,
            "Function",
            description="Tekoa REST + WebSocket API (FastAPI via Mangum)",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler=API_HANDLER,
            code=python_lambda_code(extras=API_EXTRAS, sources=API_SOURCES, bundle=bundle),
            memory_size=API_MEMORY_MB,
            timeout=API_TIMEOUT,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={
                **database.client_environment(stage),
                # The markets the stream follows: /health reports whether their data is ready.
                **market_environment,
                "POWERTOOLS_SERVICE_NAME": "tekoa-api",
            },
        )
        if not bundle:
            Annotations.of(self.function).add_warning_v2(
                "tekoa:api-unbundled",
                "The API asset holds sources only (no dependencies): fine for synth and tests, "
                "broken if deployed. Deploy with `-c bundle=true`.",
            )
        database.grant_connect(self, self.security_group, self.function, "API Lambda to RDS Proxy")
        grant_secret_read(jwt_secret, key, self.function)
        key.grant_encrypt_decrypt(self.function)
        order_queue.grant_send_messages(self.function)
        event_bus.grant_put_events_to(self.function)
        # Presigning a chart URL needs only s3:GetObject on the objects (not grant_read's
        # List*/GetBucket*); the ARN is built from the bucket's name, known from ResourceNames.
        charts_objects = Stack.of(self).format_arn(
            service="s3", region="", account="", resource=charts_bucket_name, resource_name="*"
        )
        iam.Grant.add_to_principal(
            grantee=self.function, actions=["s3:GetObject"], resource_arns=[charts_objects]
        )

        acknowledge_lambda_runtime(self.function)
        acknowledge(
            self.function,
            "Pinned to python3.12, the interpreter the bundled wheels and the test suite target; "
            "moved deliberately, not by whatever is newest.",
            "AwsSolutions-L1",
        )
        acknowledge(
            self.function,
            "Wildcards scoped to one resource: the KMS data-key operation families on the data key, "
            "and GetObject on any chart in the charts bucket (chart keys are per evaluation).",
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{charts_bucket_name}/*]",
        )

    def allow_websocket_push(self, stage: apigwv2.WebSocketStage) -> None:
        """Let the function post to, inspect and drop connections of `stage` (@connections)."""
        stage.grant_management_api_access(self.function)
        self.function.add_environment("TEKOA_WEBSOCKET_ENDPOINT", stage.callback_url)
        stack = Stack.of(self)
        api_resource = stage.api.node.default_child
        assert isinstance(api_resource, CfnElement)  # an L2 always wraps its L1
        api_logical_id = stack.resolve(stack.get_logical_id(api_resource))
        acknowledge(
            self.function,
            "Scoped to this API's stage: any HTTP method (POST, GET, DELETE) on any connection id, "
            "which only exists at run time.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
            f"<{api_logical_id}>/{stage.stage_name}/*/@connections/*]",
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
    """WebSocket API whose $connect, $disconnect and $default routes all invoke the API Lambda.

    The app dispatches on the route key in the event and authenticates on $connect (token query
    parameter), so there is no API Gateway authorizer here either.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, api_name: str, handler: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)

        def route(route_id: str) -> apigwv2.WebSocketRouteOptions:
            return apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration(f"{route_id}Integration", handler)
            )

        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=api_name,
            connect_route_options=route("Connect"),
            disconnect_route_options=route("Disconnect"),
            default_route_options=route("Default"),
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
            "The app authenticates the connection on $connect with the user's JWT.",
            "AwsSolutions-APIG4",
        )
        acknowledge(
            self.stage,
            "WebSocket access logs need the account-wide API Gateway CloudWatch role, a singleton "
            "shared by every stage in the account; each route invokes the API Lambda, which logs "
            "every connect, disconnect and message.",
            "AwsSolutions-APIG1",
        )

    @property
    def url(self) -> str:
        """wss:// URL clients connect to."""
        return self.stage.url

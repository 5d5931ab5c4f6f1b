"""ApiStack: the API Lambda behind the HTTP API; the WebSocket API, its route handler and the
function that pushes platform events to its connections."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, CfnOutput, Stack
from constructs import Construct

from infra.components.api import ApiFunction, HttpApi, WebSocketApi
from infra.components.network import PlatformNetwork
from infra.components.realtime import NotifyFunction, PushFunction, WebSocketRoutesFunction
from infra.config import StageConfig
from infra.stacks.data import DataStack
from infra.stacks.messaging import MessagingStack


class ApiStack(Stack):
    """Everything a client talks to: REST over HTTPS and live updates over WSS."""

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
        self.api_function = ApiFunction(
            self,
            "ApiFunction",
            stage=config.stage,
            bundle=config.bundle,
            reserved_concurrency=config.reserved_concurrency,
            vpc=network.vpc,
            subnets=network.compute_subnets,
            database=data.database,
            jwt_secret=data.jwt_secret,
            broker_key=data.broker_key,
            order_queue=messaging.order_queue,
            chart_queue=messaging.chart_queue,
            event_bus=messaging.event_bus,
            names=config.names,
            market_environment=config.market_environment,
        )
        self.http_api = HttpApi(
            self, "HttpApi", api_name=f"tekoa-{config.stage}-api", handler=self.api_function.function
        )
        self.websocket_routes = WebSocketRoutesFunction(
            self,
            "WebSocketRoutes",
            stage=config.stage,
            bundle=config.bundle,
            vpc=network.vpc,
            subnets=network.compute_subnets,
            database=data.database,
            jwt_secret=data.jwt_secret,
        )
        websocket_api = WebSocketApi(
            self, "WebSocketApi", api_name=f"tekoa-{config.stage}-ws", handler=self.websocket_routes.function
        )
        self.websocket_stage = websocket_api.stage
        # @connections is a public endpoint no VPC endpoint serves: pushing needs egress.
        self.push: PushFunction | None = None
        self.notify: NotifyFunction | None = None
        if config.egress_kind != "none":
            self.notify = NotifyFunction(
                self,
                "Notify",
                stage=config.stage,
                bundle=config.bundle,
                vpc=network.vpc,
                subnets=network.compute_subnets,
                database=data.database,
                event_bus=messaging.event_bus,
                broker_key=data.broker_key,
                names=config.names,
            )
            self.push = PushFunction(
                self,
                "Push",
                stage=config.stage,
                bundle=config.bundle,
                vpc=network.vpc,
                subnets=network.compute_subnets,
                database=data.database,
                event_bus=messaging.event_bus,
                websocket_stage=websocket_api.stage,
            )
        else:
            Annotations.of(self).add_warning_v2(
                "tekoa:no-live-updates",
                "This stage has no egress, so nothing pushes to WebSocket connections (they "
                "connect and subscribe, and receive nothing) and no notification is sent: deploy "
                "with -c egress=true.",
            )

        CfnOutput(self, "HttpApiUrl", value=self.http_api.url, description="REST API base URL")
        CfnOutput(self, "WebSocketUrl", value=websocket_api.url, description="WebSocket URL")

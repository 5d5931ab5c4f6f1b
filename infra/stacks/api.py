"""ApiStack: the API Lambda behind the HTTP and WebSocket APIs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.components.api import ApiFunction, HttpApi, WebSocketApi
from infra.components.network import PlatformNetwork
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
        websocket_api = WebSocketApi(
            self, "WebSocketApi", api_name=f"tekoa-{config.stage}-ws", handler=self.api_function.function
        )
        self.api_function.allow_websocket_push(websocket_api.stage)

        CfnOutput(self, "HttpApiUrl", value=self.http_api.url, description="REST API base URL")
        CfnOutput(self, "WebSocketUrl", value=websocket_api.url, description="WebSocket URL")

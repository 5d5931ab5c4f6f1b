"""NetworkStack: the VPC every workload runs in."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.components.network import PlatformNetwork
from infra.config import StageConfig


class NetworkStack(Stack):
    """VPC, subnets, and the endpoints or NAT; changes rarely, so it lives apart from the rest."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.network = PlatformNetwork(
            self,
            "Network",
            egress=config.egress_kind,
            interface_endpoints=config.profile.interface_endpoints,
        )

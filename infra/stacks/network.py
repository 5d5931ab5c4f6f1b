"""NetworkStack: the VPC every workload runs in."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.components.network import PlatformNetwork


class NetworkStack(Stack):
    """VPC, subnets and the VPC endpoints; changes rarely, so it lives apart from the rest."""

    def __init__(self, scope: Construct, construct_id: str, *, egress: bool, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.network = PlatformNetwork(self, "Network", egress=egress)

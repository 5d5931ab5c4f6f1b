"""DataStack: everything stateful. Termination-protected; its resources outlive the stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.components.database import Database
from infra.components.encryption import DataKey
from infra.components.network import PlatformNetwork
from infra.components.secrets import JwtSigningSecret
from infra.components.storage import ChartsBucket
from tekoa.names import ResourceNames


class DataStack(Stack):
    """Aurora + RDS Proxy, the KMS data key, the JWT signing secret and the charts bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        network: PlatformNetwork,
        with_reader: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)
        self.key = DataKey(self, "DataKey", alias=names.kms_key_alias).key
        self.database = Database(
            self,
            "Database",
            vpc=network.vpc,
            subnets=network.database_subnets,
            key=self.key,
            secret_name=names.db_secret,
            with_reader=with_reader,
        )
        self.jwt_secret = JwtSigningSecret(
            self, "JwtSigningKey", secret_name=names.jwt_secret, key=self.key
        ).secret
        self.charts_bucket = ChartsBucket(self, "Charts", bucket_name=names.charts_bucket).bucket

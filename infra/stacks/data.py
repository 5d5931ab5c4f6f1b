"""DataStack: everything stateful. Termination-protected; its resources outlive the stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.components.database import Database
from infra.components.encryption import DataKey
from infra.components.migrations import DatabaseMigrations
from infra.components.network import PlatformNetwork
from infra.components.secrets import JwtSigningSecret
from infra.components.storage import ChartsBucket
from tekoa.names import ResourceNames


class DataStack(Stack):
    """Aurora + RDS Proxy with its schema migrations, the KMS data key, the JWT secret, the charts bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        network: PlatformNetwork,
        with_reader: bool,
        bundle: bool,
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
        # The schema is part of the data: it is brought up to date before any stack that uses it.
        self.migrations = DatabaseMigrations(
            self,
            "Migrations",
            stage=names.stage,
            bundle=bundle,
            vpc=network.vpc,
            subnets=network.compute_subnets,
            database=self.database,
        )
        self.jwt_secret = JwtSigningSecret(
            self, "JwtSigningKey", secret_name=names.jwt_secret, key=self.key
        ).secret
        self.charts_bucket = ChartsBucket(self, "Charts", bucket_name=names.charts_bucket).bucket

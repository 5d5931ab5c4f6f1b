"""DataStack: everything stateful. In the prod profile it is termination-protected and its data
outlives the stack; a dev stage cleans up after itself."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Stack
from constructs import Construct

from infra.components.database import Database
from infra.components.encryption import BrokerKey, DataKey
from infra.components.migrations import DatabaseMigrations
from infra.components.network import PlatformNetwork
from infra.components.secrets import JwtSigningSecret
from infra.components.storage import ChartsBucket
from infra.config import StageConfig
from infra.workloads import DATABASE_LOGINS
from tekoa.services.credentials import ENCRYPTION_CONTEXT_KEYS


class DataStack(Stack):
    """Aurora (+ RDS Proxy in prod) with its schema migrations and workload logins, the KMS keys,
    the JWT secret, the charts bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        network: PlatformNetwork,
        **kwargs: Any,
    ) -> None:
        protect = config.profile.protect
        super().__init__(scope, construct_id, termination_protection=protect, **kwargs)
        names = config.names
        self.key = DataKey(self, "DataKey", alias=names.data_key_alias, protect=protect).key
        self.broker_key = BrokerKey(
            self,
            "BrokerKey",
            alias=names.broker_key_alias,
            protect=protect,
            context_keys=ENCRYPTION_CONTEXT_KEYS,
        )
        self.database = Database(
            self,
            "Database",
            vpc=network.vpc,
            subnets=network.database_subnets,
            key=self.key,
            names=names,
            profile=config.profile,
            logins=DATABASE_LOGINS,
            with_reader=config.db_reader,
        )
        # The schema is part of the data: it is brought up to date before any stack that uses it.
        self.migrations = DatabaseMigrations(
            self,
            "Migrations",
            stage=config.stage,
            bundle=config.bundle,
            reserved_concurrency=config.reserved_concurrency,
            vpc=network.vpc,
            subnets=network.compute_subnets,
            database=self.database,
            logins=DATABASE_LOGINS,
        )
        self.jwt_secret = JwtSigningSecret(
            self, "JwtSigningKey", secret_name=names.jwt_secret, key=self.key, protect=protect
        ).secret
        self.charts_bucket = ChartsBucket(
            self,
            "Charts",
            bucket_name=names.charts_bucket_in(Aws.ACCOUNT_ID, Aws.REGION),
            protect=protect,
            retention_days=config.chart_retention_days,
        ).bucket

"""Aurora Serverless v2 PostgreSQL behind an RDS Proxy."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.secrets import grant_secret_read
from infra.constants import (
    DB_BACKUP_RETENTION,
    DB_ENGINE_VERSION,
    DB_MAX_CAPACITY,
    DB_MIN_CAPACITY,
    DB_NAME,
    DB_PORT,
    DB_USERNAME,
    LOG_RETENTION,
)
from infra.nag import acknowledge

# CDK's singleton that applies `cloudwatch_logs_retention` (one per stack, fixed id).
_LOG_RETENTION_FUNCTION_ID = "LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a"


class Database(Construct):
    """The platform's PostgreSQL 16: one writer (optionally one reader) and an RDS Proxy.

    Clients connect to the proxy only, over TLS, with the generated credentials secret (what
    `tekoa.settings` reads through DATABASE_SECRET_ARN / DATABASE_HOST). The proxy pools
    connections so hundreds of concurrent Lambdas do not exhaust Postgres's backends.
    Give a workload access with `grant_connect`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        key: kms.IKey,
        secret_name: str,
        with_reader: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self._key = key
        self.proxy_security_group = ec2.SecurityGroup(
            self, "ProxySecurityGroup", vpc=vpc, description="RDS Proxy: ingress from workloads only"
        )
        cluster_security_group = ec2.SecurityGroup(
            self, "ClusterSecurityGroup", vpc=vpc, description="Aurora: ingress from the RDS Proxy only"
        )
        # No rule needed here: adding the proxy lets its security group in on the cluster's port.

        readers = (
            [rds.ClusterInstance.serverless_v2("reader", scale_with_writer=True, publicly_accessible=False)]
            if with_reader
            else None
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=DB_ENGINE_VERSION),
            writer=rds.ClusterInstance.serverless_v2("writer", publicly_accessible=False),
            readers=readers,
            serverless_v2_min_capacity=DB_MIN_CAPACITY,
            serverless_v2_max_capacity=DB_MAX_CAPACITY,
            credentials=rds.Credentials.from_generated_secret(
                DB_USERNAME, secret_name=secret_name, encryption_key=key
            ),
            default_database_name=DB_NAME,
            port=DB_PORT,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[cluster_security_group],
            storage_encrypted=True,
            storage_encryption_key=key,
            iam_authentication=True,
            deletion_protection=True,
            # A final snapshot, not silent loss, if the cluster is ever removed from the stack.
            removal_policy=RemovalPolicy.SNAPSHOT,
            backup=rds.BackupProps(retention=DB_BACKUP_RETENTION),
            cloudwatch_logs_exports=["postgresql"],
            cloudwatch_logs_retention=LOG_RETENTION,
            enable_performance_insights=True,
            performance_insight_encryption_key=key,
        )
        if self.cluster.secret is None:  # from_generated_secret always yields one; keeps mypy honest
            raise RuntimeError("Aurora cluster was created without a credentials secret")
        self.secret: secretsmanager.ISecret = self.cluster.secret

        self.proxy = self.cluster.add_proxy(
            "Proxy",
            secrets=[self.secret],
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.proxy_security_group],
            require_tls=True,
            # The application authenticates with the secret's password (tekoa.settings); IAM
            # auth at the proxy would require it to mint a token per connection instead.
            iam_auth=False,
            debug_logging=False,
        )

        acknowledge(
            self.cluster.node.find_child("Secret"),
            "Processes cache the password in their connection pools; scheduled rotation waits "
            "until they re-read the secret on authentication failure.",
            "AwsSolutions-SMG4",
        )
        log_retention = Stack.of(self).node.try_find_child(_LOG_RETENTION_FUNCTION_ID)
        if log_retention is not None:
            acknowledge(
                log_retention,
                "CDK's log-retention helper (sets the retention of the exported Postgres logs): "
                "basic execution policy; PutRetentionPolicy has no resource-level scope.",
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                "AwsSolutions-IAM5[Resource::*]",
            )
        acknowledge(
            self.cluster,
            "Postgres's default port: only the proxy's security group can reach it, so a "
            "non-standard port would add no protection.",
            "AwsSolutions-RDS11",
        )

    def grant_connect(
        self,
        workload: Construct,
        security_group: ec2.ISecurityGroup,
        grantee: iam.IGrantable,
        description: str,
    ) -> ec2.CfnSecurityGroupIngress:
        """Let a workload reach the proxy (network) and read the credentials secret (IAM); return the rule.

        The ingress rule is created inside `workload`, i.e. in the consumer's stack: left to
        the proxy's security group it would land in this (stateful) stack and make it depend
        on every consumer, a dependency cycle.
        """
        ingress = ec2.CfnSecurityGroupIngress(
            workload,
            "DatabaseIngress",
            group_id=self.proxy_security_group.security_group_id,
            source_security_group_id=security_group.security_group_id,
            ip_protocol="tcp",
            from_port=DB_PORT,
            to_port=DB_PORT,
            description=description,
        )
        grant_secret_read(self.secret, self._key, grantee)
        return ingress

    def client_environment(self, stage: str) -> dict[str, str]:
        """The settings every workload of a stage starts with: its stage, how to reach the database, logs."""
        return {
            "TEKOA_STAGE": stage,
            "TEKOA_DATABASE_SECRET_ARN": self.secret.secret_arn,
            "TEKOA_DATABASE_HOST": self.endpoint,
            "TEKOA_LOG_LEVEL": "INFO",
        }

    @property
    def endpoint(self) -> str:
        """Host name clients connect to (the proxy's)."""
        return self.proxy.endpoint

"""Aurora Serverless v2 PostgreSQL, behind an RDS Proxy in the prod profile, with one login per workload."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.secrets import grant_secret_read
from infra.config import CostProfile
from infra.constants import (
    DB_BACKUP_RETENTION,
    DB_CONNECT_TIMEOUT_S,
    DB_DEV_BACKUP_RETENTION,
    DB_ENGINE_VERSION,
    DB_NAME,
    DB_PORT,
    DB_USERNAME,
    LOG_RETENTION,
)
from infra.nag import acknowledge
from infra.workloads import DatabaseLogin
from tekoa.names import ResourceNames

# CDK's singleton that applies `cloudwatch_logs_retention` (one per stack, fixed id).
_LOG_RETENTION_FUNCTION_ID = "LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a"
_LOGIN_PASSWORD_LENGTH = 40


class Database(Construct):
    """The platform's PostgreSQL 16: one writer (optionally one reader), and in front of it an
    RDS Proxy when the profile has one.

    Each workload logs in as its own role (infra/workloads.py), with its own generated secret;
    the migrations Lambda — the only user of the master secret — creates those roles and sets
    their passwords from the secrets. Clients connect over TLS to `endpoint` (the proxy's, or
    the writer's without one). Give a workload access with `grant_connect`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        key: kms.IKey,
        names: ResourceNames,
        profile: CostProfile,
        logins: Sequence[DatabaseLogin],
        with_reader: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = key
        cluster_security_group = ec2.SecurityGroup(
            self,
            "ClusterSecurityGroup",
            vpc=vpc,
            description="Aurora: ingress from the RDS Proxy (or, without one, the workloads) only",
        )

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
            serverless_v2_min_capacity=profile.db_min_capacity,
            serverless_v2_max_capacity=profile.db_max_capacity,
            serverless_v2_auto_pause_duration=profile.db_auto_pause,
            credentials=rds.Credentials.from_generated_secret(
                DB_USERNAME, secret_name=names.db_secret, encryption_key=key
            ),
            default_database_name=DB_NAME,
            port=DB_PORT,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[cluster_security_group],
            storage_encrypted=True,
            storage_encryption_key=key,
            iam_authentication=True,
            # prod: a final snapshot, not silent loss, if the cluster ever leaves the stack; dev
            # cleans up after itself, so a failed first deploy can simply be deployed again.
            deletion_protection=profile.protect,
            removal_policy=RemovalPolicy.SNAPSHOT if profile.protect else RemovalPolicy.DESTROY,
            backup=rds.BackupProps(
                retention=DB_BACKUP_RETENTION if profile.protect else DB_DEV_BACKUP_RETENTION
            ),
            cloudwatch_logs_exports=["postgresql"],
            cloudwatch_logs_retention=LOG_RETENTION,
            enable_performance_insights=profile.protect,
            performance_insight_encryption_key=key if profile.protect else None,
        )
        if self.cluster.secret is None:  # from_generated_secret always yields one; keeps mypy honest
            raise RuntimeError("Aurora cluster was created without a credentials secret")
        self.secret: secretsmanager.ISecret = self.cluster.secret

        # One generated password per workload role; RDS Proxy (when present) must know each.
        self.login_secrets: dict[str, secretsmanager.Secret] = {}
        for login in logins:
            secret = secretsmanager.Secret(
                self,
                f"Login-{login.role}",
                secret_name=names.db_login_secret(login.role),
                description=f"Database login of the {login.role} role",
                encryption_key=key,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template=json.dumps({"username": login.role}),
                    generate_string_key="password",
                    password_length=_LOGIN_PASSWORD_LENGTH,
                    exclude_punctuation=True,
                ),
                # Derived data: the migrations Lambda sets the role's password from whatever
                # secret exists, so a recreated secret only means a new password.
                removal_policy=RemovalPolicy.DESTROY,
            )
            self.login_secrets[login.role] = secret
            acknowledge(
                secret,
                "Processes cache the password in their connections; a rotation would need the "
                "migrations Lambda to run with it. Rotated by redeploying a new secret.",
                "AwsSolutions-SMG4",
            )

        self.proxy: rds.DatabaseProxy | None = None
        if profile.rds_proxy:
            proxy_security_group = ec2.SecurityGroup(
                self, "ProxySecurityGroup", vpc=vpc, description="RDS Proxy: ingress from workloads only"
            )
            # Adding the proxy lets its security group in on the cluster's port.
            self.proxy = self.cluster.add_proxy(
                "Proxy",
                secrets=[self.secret, *self.login_secrets.values()],
                vpc=vpc,
                vpc_subnets=subnets,
                security_groups=[proxy_security_group],
                require_tls=True,
                client_password_auth_type=rds.ClientPasswordAuthType.POSTGRES_SCRAM_SHA_256,
                # The application authenticates with its secret's password (tekoa.settings); IAM
                # auth at the proxy would require it to mint a token per connection instead.
                iam_auth=False,
                debug_logging=False,
                # A client waits this long for a pooled connection before it gets an error.
                borrow_timeout=Duration.seconds(DB_CONNECT_TIMEOUT_S),
            )
            self.client_security_group: ec2.ISecurityGroup = proxy_security_group
        else:
            self.client_security_group = cluster_security_group

        acknowledge(
            self.cluster.node.find_child("Secret"),
            "The master password is used by the migrations Lambda alone; scheduled rotation waits "
            "until it re-reads the secret on authentication failure.",
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
            "Postgres's default port: only the proxy's (or the workloads') security groups can "
            "reach it, so a non-standard port would add no protection.",
            "AwsSolutions-RDS11",
        )
        if not profile.protect:
            acknowledge(
                self.cluster,
                "dev profile: a stage that cleans up after itself (no deletion protection, so a "
                "failed first deploy rolls back and the next deploy starts clean).",
                "AwsSolutions-RDS10",
            )

    def grant_connect(
        self,
        workload: Construct,
        security_group: ec2.ISecurityGroup,
        grantee: iam.IGrantable,
        description: str,
        login: DatabaseLogin | None,
    ) -> ec2.CfnSecurityGroupIngress:
        """Let a workload reach the database (network) and read its login's secret (IAM); return the rule.

        `login=None` is the master user: the migrations Lambda only.

        The ingress rule is created inside `workload`, i.e. in the consumer's stack: left to
        the database's security group it would land in this (stateful) stack and make it depend
        on every consumer, a dependency cycle.
        """
        ingress = ec2.CfnSecurityGroupIngress(
            workload,
            "DatabaseIngress",
            group_id=self.client_security_group.security_group_id,
            source_security_group_id=security_group.security_group_id,
            ip_protocol="tcp",
            from_port=DB_PORT,
            to_port=DB_PORT,
            description=description,
        )
        grant_secret_read(self.login_secret(login), self.key, grantee)
        return ingress

    def login_secret(self, login: DatabaseLogin | None) -> secretsmanager.ISecret:
        """The secret a workload logs in with (the master secret for `None`)."""
        return self.secret if login is None else self.login_secrets[login.role]

    def client_environment(self, stage: str, login: DatabaseLogin | None) -> dict[str, str]:
        """The settings every workload of a stage starts with: its stage, how to reach the database, logs."""
        return {
            "TEKOA_STAGE": stage,
            "TEKOA_DATABASE_SECRET_ARN": self.login_secret(login).secret_arn,
            "TEKOA_DATABASE_HOST": self.endpoint,
            # Long enough for a proxy borrow or for Aurora to resume from a pause (~15 s).
            "TEKOA_DB_CONNECT_TIMEOUT_S": str(DB_CONNECT_TIMEOUT_S),
            "TEKOA_LOG_LEVEL": "INFO",
        }

    @property
    def endpoint(self) -> str:
        """Host name clients connect to (the proxy's, or the writer's without a proxy)."""
        return self.proxy.endpoint if self.proxy is not None else self.cluster.cluster_endpoint.hostname

    @property
    def connectable(self) -> Construct:
        """What a client's first connection needs to exist (the proxy, or the cluster)."""
        return self.proxy if self.proxy is not None else self.cluster

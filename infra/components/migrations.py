"""Schema migrations on deploy: a VPC Lambda that runs `tekoa.db.migrate` and creates the
workloads' database logins, invoked by a CDK trigger."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack, triggers
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.components.database import Database
from infra.components.functions import workload_function
from infra.components.secrets import grant_secret_read
from infra.constants import MIGRATE_MEMORY_MB, MIGRATE_TIMEOUT, ONE_AT_A_TIME
from infra.workloads import MIGRATE, DatabaseLogin


class DatabaseMigrations(Construct):
    """Applies pending migrations during every deploy that changes them, before the code that needs them.

    The trigger runs after the database (and proxy) exist and waits for the function's answer:
    a failing migration fails the deployment (each migration is its own transaction, so the
    schema stays as it was). Then the function makes each workload's login role match the
    registry: exists, may switch into exactly its group roles, has its secret's password and
    its connection limit. Stacks that depend on the Data stack deploy after it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        bundle: bool,
        reserved_concurrency: bool,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        logins: Sequence[DatabaseLogin],
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Migrations Lambda: no ingress; egress to the database and AWS APIs",
        )
        login_config = [
            {
                "role": login.role,
                "secret_arn": database.login_secret(login).secret_arn,
                "member_of": list(login.member_of),
                "connection_limit": login.connection_limit,
            }
            for login in logins
        ]
        self.function = workload_function(
            self,
            MIGRATE,
            bundle=bundle,
            description="Tekoa database migrations and workload logins (run on deploy)",
            memory_mb=MIGRATE_MEMORY_MB,
            timeout=MIGRATE_TIMEOUT,
            vpc=vpc,
            subnets=subnets,
            security_group=self.security_group,
            environment={
                **database.client_environment(stage, None),
                "TEKOA_DATABASE_LOGINS": Stack.of(self).to_json_string(login_config),
            },
            # migrate() serialises runs with an advisory lock; a reservation is only a courtesy.
            reserved_concurrency=ONE_AT_A_TIME if reserved_concurrency else None,
        )
        ingress = database.grant_connect(
            self, self.security_group, self.function, "Migrations Lambda to the database", None
        )
        for login in logins:
            grant_secret_read(database.login_secret(login), database.key, self.function)
        self.trigger = triggers.Trigger(
            self,
            "OnDeploy",
            handler=self.function,
            invocation_type=triggers.InvocationType.REQUEST_RESPONSE,
            timeout=MIGRATE_TIMEOUT,
            # The database (proxy, login secrets), and the rule that lets this function reach it.
            execute_after=[database, ingress],
            execute_on_handler_change=True,
        )

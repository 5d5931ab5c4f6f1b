"""Schema migrations on deploy: a VPC Lambda that runs `tekoa.db.migrate`, invoked by a CDK trigger."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, triggers
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import python_lambda_code
from infra.components.api import acknowledge_lambda_runtime
from infra.components.database import Database
from infra.constants import (
    LAMBDA_ARCHITECTURE,
    LAMBDA_RUNTIME,
    LOG_RETENTION,
    MIGRATE_HANDLER,
    MIGRATE_MEMORY_MB,
    MIGRATE_TIMEOUT,
)
from infra.nag import acknowledge

# Repo path -> path inside the zip (the handler is `functions.migrate.handler`; `tekoa` at the
# root, migrations included, so a new migration changes the code and re-runs the trigger).
MIGRATE_SOURCES = {
    "functions/__init__.py": "functions/__init__.py",
    "functions/migrate": "functions/migrate",
    "layers/tekoa/tekoa": "tekoa",
}


class DatabaseMigrations(Construct):
    """Applies pending migrations during every deploy that changes them, before the code that needs them.

    The trigger runs after the database and proxy exist and waits for the function's answer:
    a failing migration fails the deployment (each migration is its own transaction, so the
    schema stays as it was). Stacks that depend on the Data stack deploy after it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        bundle: bool,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Migrations Lambda: no ingress; egress to proxy/endpoints",
        )
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        self.function = lambda_.Function(
            self,
            "Function",
            description="Tekoa database migrations (run on deploy)",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler=MIGRATE_HANDLER,
            code=python_lambda_code(extras=(), sources=MIGRATE_SOURCES, bundle=bundle),
            memory_size=MIGRATE_MEMORY_MB,
            timeout=MIGRATE_TIMEOUT,
            # One at a time: migrate() serialises runs with an advisory lock anyway.
            reserved_concurrent_executions=1,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            log_group=log_group,
            environment={
                **database.client_environment(stage),
                "POWERTOOLS_SERVICE_NAME": "tekoa-migrate",
            },
        )
        ingress = database.grant_connect(
            self, self.security_group, self.function, "Migrations Lambda to RDS Proxy"
        )
        self.trigger = triggers.Trigger(
            self,
            "OnDeploy",
            handler=self.function,
            invocation_type=triggers.InvocationType.REQUEST_RESPONSE,
            timeout=MIGRATE_TIMEOUT,
            # The proxy, and the rule that lets this function reach it.
            execute_after=[database, ingress],
            execute_on_handler_change=True,
        )
        acknowledge_lambda_runtime(self.function)
        acknowledge(
            self.function,
            "Pinned to python3.12, the interpreter the bundled wheels and the test suite target; "
            "moved deliberately, not by whatever is newest.",
            "AwsSolutions-L1",
        )

"""Scheduled work (`tekoa.schedules`) in AWS: an EventBridge schedule rule per table entry, and
the small zip function that runs the platform's housekeeping."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
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
    MAINTENANCE_MEMORY_MB,
    MAINTENANCE_TIMEOUT,
)
from infra.nag import acknowledge
from tekoa.names import SERVICE
from tekoa.schedules import Schedule

# Repo path -> path inside the zip (the handler is `functions.maintenance.handler`).
MAINTENANCE_SOURCES = {
    "functions/__init__.py": "functions/__init__.py",
    "functions/maintenance": "functions/maintenance",
    "layers/tekoa/tekoa": "tekoa",
}


class ScheduleRule(Construct):
    """Invokes `function` as `schedule` says, with the rule name the local scheduler uses.

    A missed run is covered by the next one: no retries pile onto it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        schedule: Schedule,
        function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=f"{SERVICE}-{stage}-{schedule.name}",
            description=schedule.description,
            schedule=events.Schedule.expression(schedule.rate),
            targets=[targets.LambdaFunction(function, retry_attempts=0)],
        )


class MaintenanceFunction(Construct):
    """Housekeeping (`functions.maintenance.handler`): purges expired idempotency keys and sign-in
    and sign-up attempts. A zip Lambda in the VPC that only talks to the database."""

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
        schedule: Schedule,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="Maintenance Lambda: no ingress; egress to proxy"
        )
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        self.function = lambda_.Function(
            self,
            "Function",
            description=f"Tekoa housekeeping: {schedule.description}",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler=schedule.handler,
            code=python_lambda_code(extras=(), sources=MAINTENANCE_SOURCES, bundle=bundle),
            memory_size=MAINTENANCE_MEMORY_MB,
            timeout=MAINTENANCE_TIMEOUT,
            # One purge at a time; a second concurrent one would only wait on the same rows.
            reserved_concurrent_executions=1,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            log_group=log_group,
            environment={
                **database.client_environment(stage),
                "POWERTOOLS_SERVICE_NAME": "tekoa-maintenance",
            },
        )
        database.grant_connect(self, self.security_group, self.function, "Maintenance Lambda to RDS Proxy")
        self.schedule = ScheduleRule(self, "Schedule", stage=stage, schedule=schedule, function=self.function)
        acknowledge_lambda_runtime(self.function)
        acknowledge(
            self.function,
            "Pinned to python3.12, the interpreter the bundled wheels and the test suite target; "
            "moved deliberately, not by whatever is newest.",
            "AwsSolutions-L1",
        )

"""Scheduled work (`tekoa.schedules`) in AWS: an EventBridge schedule rule per table entry, and
the small function that runs the platform's housekeeping."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.components.database import Database
from infra.components.functions import workload_function
from infra.constants import MAINTENANCE_MEMORY_MB, MAINTENANCE_TIMEOUT, ONE_AT_A_TIME
from infra.workloads import MAINTENANCE
from tekoa.names import SERVICE
from tekoa.schedules import Schedule


class ScheduleRule(Construct):
    """Invokes `function` as `schedule` says, under the rule name the local scheduler uses.

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
    and sign-up attempts, on its schedule. A zip Lambda in the VPC that only talks to the database,
    as its own database login."""

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
        schedule: Schedule,
    ) -> None:
        super().__init__(scope, construct_id)
        assert schedule.handler == MAINTENANCE.handler, "the schedule must invoke this function's handler"
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="Maintenance Lambda: no ingress; egress to database"
        )
        self.function = workload_function(
            self,
            MAINTENANCE,
            bundle=bundle,
            description=f"Tekoa housekeeping: {schedule.description}",
            memory_mb=MAINTENANCE_MEMORY_MB,
            timeout=MAINTENANCE_TIMEOUT,
            vpc=vpc,
            subnets=subnets,
            security_group=self.security_group,
            environment=database.client_environment(stage, MAINTENANCE.database_login),
            # One purge at a time: a second would only wait on the same rows.
            reserved_concurrency=ONE_AT_A_TIME if reserved_concurrency else None,
        )
        database.grant_connect(
            self,
            self.security_group,
            self.function,
            "Maintenance Lambda to the database",
            MAINTENANCE.database_login,
        )
        self.schedule = ScheduleRule(self, "Schedule", stage=stage, schedule=schedule, function=self.function)

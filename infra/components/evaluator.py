"""The evaluator Lambda (image): every minute on a schedule, and on every `candle.closed` event.

Exactly the grants it uses: its database login, sending intents to the order queue, putting
`bot.status_changed` and `risk.tripped` on the bus, and invoking itself asynchronously (a
schedule tick past `evaluator_fanout_threshold` bots fans out by market shard).
"""

from __future__ import annotations

import dataclasses

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.database import Database
from infra.components.functions import workload_function
from infra.components.schedules import ScheduleRule
from infra.constants import EVALUATOR_MEMORY_MB, EVALUATOR_TIMEOUT_S
from infra.nag import acknowledge
from infra.workloads import EVALUATOR
from tekoa.names import CANDLE_CLOSED_PATTERN, ResourceNames
from tekoa.schedules import Schedule


class EvaluatorFunction(Construct):
    """The evaluator, its schedule rule and its `candle.closed` rule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        order_queue: sqs.IQueue,
        event_bus: events.IEventBus,
        schedule: Schedule,
        every: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        assert schedule.handler == EVALUATOR.handler, "the schedule must invoke the evaluator"
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="evaluator Lambda: no ingress; egress to the database and AWS APIs",
        )
        self.function = workload_function(
            self,
            EVALUATOR,
            bundle=True,
            description="Tekoa evaluator: running bots decide on every candle close",
            memory_mb=EVALUATOR_MEMORY_MB,
            timeout=Duration.seconds(EVALUATOR_TIMEOUT_S),
            vpc=vpc,
            subnets=subnets,
            security_group=self.security_group,
            environment={
                **database.client_environment(stage, EVALUATOR.database_login),
                # numba caches compiled kernels next to the source by default: read-only in Lambda.
                "NUMBA_CACHE_DIR": "/tmp",  # noqa: S108 - Lambda's only writable path
            },
            reserved_concurrency=None,
        )
        database.grant_connect(
            self,
            self.security_group,
            self.function,
            "evaluator Lambda to the database",
            EVALUATOR.database_login,
        )
        order_queue.grant_send_messages(self.function)
        event_bus.grant_put_events_to(self.function)
        # Fan-out invokes this same function; named by pattern (its own ARN would be a cycle).
        stack = Stack.of(self)
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[
                    stack.format_arn(
                        service="lambda",
                        resource="function",
                        resource_name=f"{stack.stack_name}-Evaluator*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        acknowledge(
            self.function,
            "Invokes only this stack's evaluator (fan-out by market shard); its own ARN would be a cycle.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:function:"
            f"{stack.stack_name}-Evaluator*]",
        )
        # The table's rate is the local one; a deployment's follows whether candles arrive.
        rate = events.Schedule.rate(every).expression_string
        self.schedule = ScheduleRule(
            self,
            "Schedule",
            stage=stage,
            schedule=dataclasses.replace(schedule, rate=rate),
            function=self.function,
        )
        self.candle_closed = events.Rule(
            self,
            "CandleClosed",
            rule_name=ResourceNames(stage).candle_closed_rule,
            description="Every closed candle invokes the evaluator for the bots of its series",
            event_bus=event_bus,
            event_pattern=events.EventPattern(
                source=CANDLE_CLOSED_PATTERN["source"], detail_type=CANDLE_CLOSED_PATTERN["detail-type"]
            ),
            # A lost invocation is covered by the next schedule tick (the bot is still due).
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )

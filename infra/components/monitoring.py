"""Alarms, the dashboard and the budget, derived from what the app contains.

`PlatformMonitoring` walks every construct of the app when the app is synthesised (an aspect
that runs once, before references between stacks are resolved), so coverage is by
construction, whatever order stacks and constructs are added in: a queue built with
`QueueWithDeadLetters` gets its DLQ alarm, a Python or image Lambda its errors and throttles
alarms, a running Fargate service its running-task alarm, an HTTP API its 5xx and latency
alarms, an Aurora cluster its CPU, capacity and connections alarms. Every alarm notifies one
SNS topic encrypted with the data key.

Plain CloudWatch constructs rather than cdk-monitoring-constructs (docs/DECISIONS.md): the
platform needs a dozen alarms whose metrics are all L2 one-liners, and owning them keeps each
alarm's threshold, missing-data rule and cost visible here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jsii
from aws_cdk import AspectPriority, Aspects, Duration, IAspect, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct, IConstruct

from infra.components.market_stream import MarketStreamService
from infra.components.messaging import QueueWithDeadLetters
from infra.config import StageConfig
from infra.constants import (
    ALARM_EVALUATION_PERIODS,
    ALARM_PERIOD,
    API_5XX_ALARM,
    API_LATENCY_P95_ALARM_MS,
    CANDLE_AGE_ALARM_S,
    DB_ACU_ALARM_PERCENT,
    DB_CONNECTIONS_ALARM_SHARE,
    DB_CPU_ALARM_PERCENT,
)
from infra.workloads import DATABASE_LOGINS
from tekoa.observability import CANDLE_AGE_METRIC, METRICS_NAMESPACE, SERVICE_NAME


@dataclass
class WatchedResources:
    """What the app contains that deserves an alarm, in construct-tree order."""

    queues: list[QueueWithDeadLetters] = field(default_factory=list)
    functions: list[lambda_.Function] = field(default_factory=list)
    services: list[ecs.FargateService] = field(default_factory=list)
    http_apis: list[apigwv2.HttpApi] = field(default_factory=list)
    clusters: list[rds.DatabaseCluster] = field(default_factory=list)

    @classmethod
    def of(cls, root: IConstruct) -> WatchedResources:
        """Every watched resource under `root` (the app)."""
        found = cls()
        for node in root.node.find_all():
            if isinstance(node, QueueWithDeadLetters):
                found.queues.append(node)
            elif isinstance(node, lambda_.Function) and _is_workload(node):
                found.functions.append(node)
            elif isinstance(node, ecs.FargateService):
                found.services.append(node)
            elif isinstance(node, apigwv2.HttpApi):
                found.http_apis.append(node)
            elif isinstance(node, rds.DatabaseCluster):
                found.clusters.append(node)
        return found


def _is_workload(function: lambda_.Function) -> bool:
    # The platform's functions are Python zips or container images; CDK's own helpers
    # (custom-resource providers, log retention) run on Node.js and are not ours to page on.
    runtime = function.runtime
    return runtime.family == lambda_.RuntimeFamily.PYTHON or runtime.name == "FROM_IMAGE"


def _desired_count(service: ecs.FargateService) -> int:
    resource = service.node.default_child
    assert isinstance(resource, ecs.CfnService)
    return int(resource.desired_count or 0)


@jsii.implements(IAspect)
class _OnceAtSynthesis:
    """Runs `action` the first time synthesis visits the construct it is attached to."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action: Callable[[], None] | None = action

    def visit(self, node: IConstruct) -> None:
        if self._action is not None:
            action, self._action = self._action, None
            action()


class PlatformMonitoring(Construct):
    """The alarm topic, one alarm per failure mode of each watched resource, a dashboard, a budget."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        watched: IConstruct,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = f"tekoa-{config.stage}"
        self._config = config
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"Tekoa {config.stage} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self._action = actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []
        self._widgets: list[cloudwatch.IWidget] = []
        if config.monthly_budget_usd > 0:
            self._budget(config.monthly_budget_usd)
        Aspects.of(self).add(
            _OnceAtSynthesis(lambda: self._watch(WatchedResources.of(watched))),
            priority=AspectPriority.MUTATING,
        )

    def _watch(self, watched: WatchedResources) -> None:
        for queue in watched.queues:
            self._dead_letters(queue)
        for function in watched.functions:
            self._function(function)
        for api in watched.http_apis:
            self._http_api(api)
        for cluster in watched.clusters:
            self._database(cluster, self._config)
        for service in watched.services:
            if _desired_count(service) >= 1:
                self._running_task(service)
                if isinstance(service.node.scope, MarketStreamService):
                    self._candle_freshness()

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=self._prefix)
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24, height=6)
        )
        for start in range(0, len(self._widgets), 3):
            self.dashboard.add_widgets(*self._widgets[start : start + 3])

    # -- one method per kind of resource ------------------------------------------------------

    def _dead_letters(self, queue: QueueWithDeadLetters) -> None:
        depth = queue.dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=ALARM_PERIOD, statistic="Maximum"
        )
        self._alarm(
            f"{queue.node.id}DeadLetters",
            f"{queue.node.id}: a message gave up and waits in the dead-letter queue",
            depth,
            threshold=1,
            periods=1,
        )
        self._graph(f"{queue.node.id} dead letters", [depth])

    def _function(self, function: lambda_.Function) -> None:
        name = function.node.scope.node.id if function.node.scope else function.node.id
        errors = function.metric_errors(period=ALARM_PERIOD, statistic="Sum")
        throttles = function.metric_throttles(period=ALARM_PERIOD, statistic="Sum")
        self._alarm(f"{name}Errors", f"{name}: invocations failed", errors, threshold=1, periods=1)
        self._alarm(f"{name}Throttles", f"{name}: invocations throttled", throttles, threshold=1, periods=1)
        self._graph(
            f"{name} Lambda",
            [function.metric_invocations(period=ALARM_PERIOD), errors, throttles],
            right=[function.metric_duration(period=ALARM_PERIOD, statistic="p95")],
        )

    def _http_api(self, api: apigwv2.HttpApi) -> None:
        server_errors = api.metric_server_error(period=ALARM_PERIOD, statistic="Sum")
        latency = api.metric_latency(period=ALARM_PERIOD, statistic="p95")
        self._alarm("Api5xx", "REST API: answers 5xx", server_errors, threshold=API_5XX_ALARM, periods=1)
        self._alarm(
            "ApiLatency",
            f"REST API: p95 latency above {API_LATENCY_P95_ALARM_MS} ms",
            latency,
            threshold=API_LATENCY_P95_ALARM_MS,
            periods=ALARM_EVALUATION_PERIODS,
        )
        self._graph(
            "REST API",
            [api.metric_count(period=ALARM_PERIOD, statistic="Sum"), server_errors],
            right=[latency],
        )

    def _database(self, cluster: rds.DatabaseCluster, config: StageConfig) -> None:
        # A paused (dev) cluster reports nothing: silence there is not a fault.
        cpu = cluster.metric_cpu_utilization(period=ALARM_PERIOD, statistic="Average")
        acu = cluster.metric_acu_utilization(period=ALARM_PERIOD, statistic="Average")
        connections = cluster.metric_database_connections(period=ALARM_PERIOD, statistic="Maximum")
        connection_budget = sum(login.connection_limit for login in DATABASE_LOGINS)
        self._alarm(
            "DatabaseCpu",
            f"Aurora: CPU above {DB_CPU_ALARM_PERCENT}%",
            cpu,
            threshold=DB_CPU_ALARM_PERCENT,
            periods=ALARM_EVALUATION_PERIODS,
        )
        self._alarm(
            "DatabaseCapacity",
            f"Aurora: above {DB_ACU_ALARM_PERCENT}% of its {config.profile.db_max_capacity} ACU maximum",
            acu,
            threshold=DB_ACU_ALARM_PERCENT,
            periods=ALARM_EVALUATION_PERIODS,
        )
        self._alarm(
            "DatabaseConnections",
            f"Aurora: connections near the workloads' combined limit of {connection_budget}",
            connections,
            threshold=round(connection_budget * DB_CONNECTIONS_ALARM_SHARE),
            periods=ALARM_EVALUATION_PERIODS,
        )
        self._graph("Aurora", [cpu, acu], right=[connections])

    def _running_task(self, service: ecs.FargateService) -> None:
        # The service's CPU datapoints exist exactly while a task runs: their count is the
        # running-task count, free (RunningTaskCount would need Container Insights).
        name = service.node.scope.node.id if service.node.scope else service.node.id
        samples = service.metric_cpu_utilization(period=Duration.minutes(1), statistic="SampleCount")
        self._alarm(
            f"{name}NotRunning",
            f"{name}: no task running",
            samples,
            threshold=1,
            periods=ALARM_EVALUATION_PERIODS,
            below=True,
            missing_is_breaching=True,
        )
        self._graph(
            f"{name} task",
            [service.metric_cpu_utilization(period=ALARM_PERIOD)],
            right=[service.metric_memory_utilization(period=ALARM_PERIOD)],
        )

    def _candle_freshness(self) -> None:
        age = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=CANDLE_AGE_METRIC,
            dimensions_map={"service": SERVICE_NAME},
            period=Duration.minutes(1),
            statistic="Maximum",
        )
        self._alarm(
            "CandlesStale",
            f"Market stream: newest candle older than {CANDLE_AGE_ALARM_S} s (or no metric at all)",
            age,
            threshold=CANDLE_AGE_ALARM_S,
            periods=ALARM_EVALUATION_PERIODS,
            missing_is_breaching=True,
        )
        self._graph("Candle age (s)", [age])

    def _budget(self, amount_usd: int) -> None:
        # Budgets publishes as a service: the topic must let it in (and the data key lets it
        # encrypt, see DataKey).
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="BudgetNotifications",
                principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        subscriber = budgets.CfnBudget.SubscriberProperty(
            subscription_type="SNS", address=self.topic.topic_arn
        )
        self.budget = budgets.CfnBudget(
            self,
            "MonthlyBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=f"{self._prefix}-monthly",
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=amount_usd, unit="USD"),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind,
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[subscriber],
                )
                for kind, percent in (("ACTUAL", 80), ("FORECASTED", 100))
            ],
        )

    # -- helpers ------------------------------------------------------------------------------

    def _alarm(
        self,
        alarm_id: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        periods: int,
        below: bool = False,
        missing_is_breaching: bool = False,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            alarm_id,
            alarm_name=f"{self._prefix}-{alarm_id}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=(
                cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
                if below
                else cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
            ),
            treat_missing_data=(
                cloudwatch.TreatMissingData.BREACHING
                if missing_is_breaching
                else cloudwatch.TreatMissingData.NOT_BREACHING
            ),
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)

    def _graph(
        self, title: str, left: list[cloudwatch.IMetric], right: list[cloudwatch.IMetric] | None = None
    ) -> None:
        self._widgets.append(cloudwatch.GraphWidget(title=title, left=left, right=right or [], width=8))

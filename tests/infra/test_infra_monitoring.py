"""MonitoringStack: every queue, function, API, database and running task of the app has its
alarms, all on one encrypted topic; a dashboard; a budget; tracing on every workload.

The checks enumerate the synthesised templates rather than a list kept here, so a function or
a queue added later is covered (or fails these tests) without editing them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_helpers import resources_of_type

from tekoa.observability import CANDLE_AGE_METRIC, METRICS_NAMESPACE

pytestmark = pytest.mark.xdist_group("infra")


def _alarms(monitoring: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r["Properties"] for r in monitoring["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]


def _alarmed(monitoring: dict[str, Any], namespace: str, metric: str) -> set[str]:
    """Export names (or literal values) of the first dimension of every alarm on this metric."""
    return {
        json.dumps(alarm["Dimensions"][0]["Value"])
        for alarm in _alarms(monitoring)
        if alarm.get("Namespace") == namespace and alarm.get("MetricName") == metric
    }


def _refers_to(alarmed: set[str], logical_id: str) -> bool:
    return any(logical_id in value for value in alarmed)


@pytest.fixture(scope="module", params=["dev", "prod"])
def synthesised(request: pytest.FixtureRequest, platform: Any, prod_platform: Any) -> Any:
    return platform if request.param == "dev" else prod_platform


def test_every_dead_letter_queue_has_a_depth_alarm(synthesised: Any) -> None:
    templates = synthesised.templates()
    alarmed = _alarmed(templates["monitoring"], "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    dead_letter_queues = {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for template in templates.values()
        for queue in resources_of_type_json(template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in queue["Properties"]
    }
    assert dead_letter_queues
    for queue_id in dead_letter_queues:
        assert _refers_to(alarmed, queue_id), f"no DLQ alarm for {queue_id}"


def test_every_workload_function_has_errors_and_throttles_alarms_and_active_tracing(synthesised: Any) -> None:
    templates = synthesised.templates()
    monitoring = templates["monitoring"]
    errors = _alarmed(monitoring, "AWS/Lambda", "Errors")
    throttles = _alarmed(monitoring, "AWS/Lambda", "Throttles")
    workloads = 0
    for concern, template in templates.items():
        for function_id, function in resources_of_type_json(template, "AWS::Lambda::Function").items():
            props = function["Properties"]
            if not (
                str(props.get("Runtime", "")).startswith("python") or props.get("PackageType") == "Image"
            ):
                continue  # CDK's own Node.js helpers (custom-resource providers)
            workloads += 1
            assert props["TracingConfig"] == {"Mode": "Active"}, function_id
            assert _refers_to(errors, function_id), f"{concern}/{function_id}: no errors alarm"
            assert _refers_to(throttles, function_id), f"{concern}/{function_id}: no throttles alarm"
    assert workloads >= 3  # api, migrate, ingest (and whatever joins them)


def test_the_api_alarms_on_5xx_and_latency(synthesised: Any) -> None:
    monitoring = synthesised.templates()["monitoring"]
    assert _alarmed(monitoring, "AWS/ApiGateway", "5xx")
    (latency,) = [a for a in _alarms(monitoring) if a.get("MetricName") == "Latency"]
    assert latency["ExtendedStatistic"] == "p95"


def test_aurora_alarms_on_cpu_capacity_and_connections(synthesised: Any) -> None:
    monitoring = synthesised.templates()["monitoring"]
    for metric in ("CPUUtilization", "ACUUtilization", "DatabaseConnections"):
        (alarm,) = [
            a for a in _alarms(monitoring) if a.get("Namespace") == "AWS/RDS" and a["MetricName"] == metric
        ]
        # A paused dev cluster reports nothing, which is not a fault.
        assert alarm["TreatMissingData"] == "notBreaching"


def test_prod_alarms_when_no_stream_task_runs_or_candles_go_stale(prod_platform: Any) -> None:
    monitoring = prod_platform.templates()["monitoring"]
    (running,) = [a for a in _alarms(monitoring) if a.get("Namespace") == "AWS/ECS"]
    assert (running["MetricName"], running["Statistic"]) == ("CPUUtilization", "SampleCount")
    assert running["ComparisonOperator"] == "LessThanThreshold" and running["Threshold"] == 1
    assert running["TreatMissingData"] == "breaching"  # no datapoints at all = no task
    (stale,) = [a for a in _alarms(monitoring) if a.get("Namespace") == METRICS_NAMESPACE]
    assert stale["MetricName"] == CANDLE_AGE_METRIC
    assert stale["TreatMissingData"] == "breaching"  # a silent stream is a stale stream


def test_dev_watches_no_stream_while_the_stream_is_off(platform: Any) -> None:
    monitoring = platform.templates()["monitoring"]
    assert not [a for a in _alarms(monitoring) if a.get("Namespace") in ("AWS/ECS", METRICS_NAMESPACE)]


def test_every_alarm_notifies_the_encrypted_topic_both_ways(synthesised: Any) -> None:
    monitoring = synthesised.templates()["monitoring"]
    topic_id, topic = only_resource_json(monitoring, "AWS::SNS::Topic")
    assert "DataKey" in json.dumps(topic["Properties"]["KmsMasterKeyId"])
    alarms = _alarms(monitoring)
    assert len(alarms) >= 10
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["OKActions"] == [{"Ref": topic_id}]


def test_the_data_key_lets_cloudwatch_and_budgets_use_the_alarm_topic(data_template: Any) -> None:
    keys = resources_of_type(data_template, "AWS::KMS::Key")
    (data_key,) = [k for k in keys.values() if k["Properties"]["Description"].startswith("Tekoa data key")]
    (statement,) = [
        s for s in data_key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "AlarmNotifications"
    ]
    assert sorted(statement["Principal"]["Service"]) == ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_the_dashboard_shows_every_alarm(synthesised: Any) -> None:
    monitoring = synthesised.templates()["monitoring"]
    _, dashboard = only_resource_json(monitoring, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for alarm_id, resource in monitoring["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert alarm_id in body
    assert dashboard["Properties"]["DashboardName"].startswith("tekoa-")


@pytest.mark.parametrize(("profile", "amount"), [("dev", 60), ("prod", 300)])
def test_a_monthly_budget_warns_on_the_alarm_topic(
    profile: str, amount: int, platform: Any, prod_platform: Any
) -> None:
    synthesised = platform if profile == "dev" else prod_platform
    monitoring = synthesised.templates()["monitoring"]
    topic_id, _ = only_resource_json(monitoring, "AWS::SNS::Topic")
    _, budget = only_resource_json(monitoring, "AWS::Budgets::Budget")
    assert budget["Properties"]["Budget"]["BudgetLimit"] == {"Amount": amount, "Unit": "USD"}
    notifications = budget["Properties"]["NotificationsWithSubscribers"]
    assert {n["Notification"]["NotificationType"] for n in notifications} == {"ACTUAL", "FORECASTED"}
    assert all(
        n["Subscribers"] == [{"Address": {"Ref": topic_id}, "SubscriptionType": "SNS"}] for n in notifications
    )
    _, policy = only_resource_json(monitoring, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s.get("Principal") == {"Service": "budgets.amazonaws.com"} for s in statements)


def test_the_stream_task_is_traced_too(synthesised: Any) -> None:
    workers = synthesised.templates()["workers"]
    _, task = only_resource_json(workers, "AWS::ECS::TaskDefinition")
    names = {c["Name"] for c in task["Properties"]["ContainerDefinitions"]}
    assert "xray-daemon" in names


def test_a_queue_and_a_function_added_later_are_alarmed_by_construction(extended_platform: Any) -> None:
    # Given the real app plus a new queue and a new Python function, built the usual way
    # (see the extended_platform fixture), the monitoring stack alarms on both without having
    # been told about them.
    monitoring = extended_platform.template_json("monitoring")
    alarm_ids = set(monitoring["Resources"])
    assert any(lid.startswith("MonitoringNotificationsDeadLetters") for lid in alarm_ids)
    assert any(lid.startswith("MonitoringLaterErrors") for lid in alarm_ids)
    assert any(lid.startswith("MonitoringLaterThrottles") for lid in alarm_ids)


def resources_of_type_json(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == resource_type}


def only_resource_json(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = resources_of_type_json(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))

"""The executor on the order queue and the reconciler on its schedule: one image, two handlers,
exactly the grants they use, and a queue whose visibility outlasts six executor timeouts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_helpers import actions_of, only_resource, policy_statements, resources_of_type

from infra.constants import EXECUTOR_TIMEOUT_S
from tekoa.schedules import schedule

pytestmark = pytest.mark.xdist_group("infra")

EXECUTOR = "Tekoa executor: places each order once, records fills, positions and the ledger"
RECONCILER = "Tekoa reconciliation: ledger checks, live orders and balances, stuck orders, paper sweep"


def function(template: Any, description: str) -> tuple[str, dict[str, Any]]:
    return only_resource(template, "AWS::Lambda::Function", Description=description)


def role_of(props: dict[str, Any]) -> str:
    return str(props["Role"]["Fn::GetAtt"][0])


def test_the_executor_consumes_the_order_queue_in_batches_reporting_item_failures(
    workers_template: Any, messaging_template: Any
) -> None:
    function_id, _ = function(workers_template, EXECUTOR)
    _, mapping = only_resource(workers_template, "AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]

    assert props["FunctionName"] == {"Ref": function_id}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10
    assert "Orders" in json.dumps(props["EventSourceArn"])


def test_the_order_queue_stays_invisible_for_six_executor_timeouts(
    workers_template: Any, messaging_template: Any
) -> None:
    _, executor = function(workers_template, EXECUTOR)
    queues = resources_of_type(messaging_template, "AWS::SQS::Queue")
    (orders,) = [q for q in queues.values() if q["Properties"].get("QueueName", "").endswith("-orders.fifo")]

    assert executor["Properties"]["Timeout"] == EXECUTOR_TIMEOUT_S
    assert orders["Properties"]["VisibilityTimeout"] >= 6 * executor["Properties"]["Timeout"]


@pytest.mark.parametrize(
    ("description", "login", "command"),
    [
        (EXECUTOR, "tekoaexecutor", None),
        (RECONCILER, "tekoareconciler", ["functions.reconciler.handler.handler"]),
    ],
)
def test_both_run_the_execution_image_traced_with_their_own_login(
    workers_template: Any, description: str, login: str, command: list[str] | None
) -> None:
    _, fn = function(workers_template, description)
    props = fn["Properties"]

    assert props["PackageType"] == "Image"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Environment"]["Variables"]["NUMBA_CACHE_DIR"] == "/tmp"
    assert f"DatabaseLogin{login}" in json.dumps(
        props["Environment"]["Variables"]["TEKOA_DATABASE_SECRET_ARN"]
    )
    assert props.get("ImageConfig", {}).get("Command") == command


def test_the_executor_may_consume_orders_open_broker_keys_and_publish_nothing_more(
    workers_template: Any,
) -> None:
    _, fn = function(workers_template, EXECUTOR)
    statements = policy_statements(workers_template, role_of(fn["Properties"]))
    actions = actions_of(statements)

    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= actions
    assert "sqs:SendMessage" not in actions
    assert "events:PutEvents" in actions
    assert "kms:Decrypt" in actions and "kms:GenerateDataKey" not in actions
    (broker,) = [s for s in statements if "ForAllValues:StringEquals" in s.get("Condition", {})]
    assert broker["Action"] == "kms:Decrypt"
    assert broker["Condition"]["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"] == [
        "user_id",
        "credential_id",
    ]


@pytest.mark.parametrize(("profile", "rate"), [("prod", "rate(1 minute)"), ("dev", "rate(1 hour)")])
def test_the_reconciler_runs_every_minute_while_orders_can_trade_and_may_send_orders(
    profile: str, rate: str, workers_template: Any, prod_templates: dict[str, Any]
) -> None:
    template = workers_template if profile == "dev" else prod_templates["workers"]
    function_id, fn = function(template, RECONCILER)
    _, rule = only_resource(template, "AWS::Events::Rule", Description=schedule("reconcile").description)
    actions = actions_of(policy_statements(template, role_of(fn["Properties"])))

    assert rule["Properties"]["ScheduleExpression"] == rate
    assert rule["Properties"]["Name"] == f"tekoa-{profile}-reconcile"  # what the local scheduler calls it
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert "sqs:SendMessage" in actions and "sqs:ReceiveMessage" not in actions
    assert "kms:GenerateDataKey" not in actions


def test_the_order_dead_letter_queue_and_both_functions_are_alarmed(platform: Any) -> None:
    alarms = [
        resource
        for resource in platform.template_json("monitoring")["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    ]
    dimensions = json.dumps([alarm["Properties"].get("Dimensions", []) for alarm in alarms])

    assert "OrdersDeadLetterQueue" in dimensions
    assert dimensions.count("ExecutionExecutor") >= 2  # errors and throttles
    assert dimensions.count("ExecutionReconciler") >= 2

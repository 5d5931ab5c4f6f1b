"""The evaluator: an image Lambda on the schedule and on candle.closed, with only its grants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_helpers import actions_of, only_resource, policy_statements, resources_of_type

from tekoa.names import CANDLE_CLOSED_PATTERN

pytestmark = pytest.mark.xdist_group("infra")


@pytest.fixture(scope="module")
def evaluator(workers_template: Any) -> tuple[str, dict[str, Any]]:
    return only_resource(
        workers_template,
        "AWS::Lambda::Function",
        Description="Tekoa evaluator: running bots decide on every candle close",
    )


def _rules_targeting(template: Any, function_id: str) -> dict[str, dict[str, Any]]:
    return {
        rid: rule["Properties"]
        for rid, rule in resources_of_type(template, "AWS::Events::Rule").items()
        if {"Fn::GetAtt": [function_id, "Arn"]} in [t["Arn"] for t in rule["Properties"]["Targets"]]
    }


def test_the_evaluator_is_an_arm64_image_with_its_own_login_and_numba_cache_in_tmp(
    evaluator: tuple[str, dict[str, Any]],
) -> None:
    _, function = evaluator
    props = function["Properties"]
    assert "ImageUri" in props["Code"] and props["Architectures"] == ["arm64"]
    assert props["Environment"]["Variables"]["NUMBA_CACHE_DIR"] == "/tmp"
    assert "DatabaseLogintekoaevaluator" in json.dumps(
        props["Environment"]["Variables"]["TEKOA_DATABASE_SECRET_ARN"]
    )
    assert props["TracingConfig"] == {"Mode": "Active"} and len(props["VpcConfig"]["SubnetIds"]) == 2


def test_the_schedule_and_candle_closed_rules_invoke_it(
    workers_template: Any, evaluator: tuple[str, dict[str, Any]]
) -> None:
    function_id, _ = evaluator
    rules = list(_rules_targeting(workers_template, function_id).values())
    (schedule,) = [r for r in rules if "ScheduleExpression" in r]
    (candle_closed,) = [r for r in rules if "EventPattern" in r]
    # dev runs no market stream: no candles arrive, so the schedule keeps the database's pauses.
    assert schedule["ScheduleExpression"] == "rate(1 hour)" and schedule["Name"] == "tekoa-dev-evaluate"
    assert candle_closed["Name"] == "tekoa-dev-candle-closed"
    assert candle_closed["EventPattern"] == CANDLE_CLOSED_PATTERN
    assert "EventBusName" in candle_closed
    assert candle_closed["Targets"][0]["RetryPolicy"]["MaximumRetryAttempts"] == 2


def test_the_evaluator_may_send_orders_publish_events_and_invoke_itself_nothing_more(
    workers_template: Any, evaluator: tuple[str, dict[str, Any]]
) -> None:
    _, function = evaluator
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = policy_statements(workers_template, role_id)
    assert actions_of(statements) <= {
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "events:PutEvents",
        "lambda:InvokeFunction",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:Encrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert {"sqs:SendMessage", "events:PutEvents", "lambda:InvokeFunction"} <= actions_of(statements)
    (invoke,) = [s for s in statements if "lambda:InvokeFunction" in json.dumps(s["Action"])]
    assert "Evaluator*" in json.dumps(invoke["Resource"])

"""Live updates in CDK: the WebSocket routes go to their own function, the push function hangs on
the bus rule of `tekoa.bus_rules` and may manage only the stage's connections, and a stage without
egress has no pusher (it could not reach @connections)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_helpers import actions_of, only_resource, policy_statements, resources_of_type

from infra.constants import WS_STAGE_NAME
from infra.workloads import WORKLOADS
from tekoa.bus_rules import PUSH
from tekoa.realtime.messages import ROUTES

pytestmark = pytest.mark.xdist_group("infra")


def _function(template: Any, workload: str) -> tuple[str, dict[str, Any]]:
    return only_resource(template, "AWS::Lambda::Function", Handler=WORKLOADS[workload].handler)


def test_every_websocket_route_invokes_the_route_handler_and_the_requests_answer(api_template: Any) -> None:
    function_id, _ = _function(api_template, "ws-routes")
    api_id, api = only_resource(api_template, "AWS::ApiGatewayV2::Api", ProtocolType="WEBSOCKET")
    assert api["Properties"]["RouteSelectionExpression"] == "$request.body.action"
    integrations = resources_of_type(api_template, "AWS::ApiGatewayV2::Integration")
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in resources_of_type(api_template, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["ApiId"] == {"Ref": api_id}
    }
    assert set(routes) == {"$connect", "$disconnect", "$default", *ROUTES}
    for key, route in routes.items():
        integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
        assert function_id in json.dumps(integrations[integration_id]["Properties"]["IntegrationUri"]), key
    # Requests answer through API Gateway (route responses): the handler needs no @connections.
    answering = {key for key, route in routes.items() if route.get("RouteResponseSelectionExpression")}
    assert answering == {"$default", *ROUTES}
    responses = resources_of_type(api_template, "AWS::ApiGatewayV2::RouteResponse")
    assert len(responses) == len(answering)


def test_the_route_handler_reads_the_database_and_the_signing_key_and_pushes_nothing(
    api_template: Any,
) -> None:
    _, function = _function(api_template, "ws-routes")
    props = function["Properties"]
    assert props["Runtime"] == "python3.12" and props["Timeout"] <= 29
    assert "DatabaseLogintekoaws" in json.dumps(
        props["Environment"]["Variables"]["TEKOA_DATABASE_SECRET_ARN"]
    )
    statements = policy_statements(api_template, props["Role"]["Fn::GetAtt"][0])
    assert actions_of(statements) == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
    }


def test_the_push_function_is_the_bus_rules_target_and_manages_only_the_stages_connections(
    api_template: Any,
) -> None:
    function_id, function = _function(api_template, "push")
    props = function["Properties"]
    variables = props["Environment"]["Variables"]
    assert f"/{WS_STAGE_NAME}" in json.dumps(variables["TEKOA_WS_MANAGEMENT_URL"])
    assert "DatabaseLogintekoapush" in json.dumps(variables["TEKOA_DATABASE_SECRET_ARN"])
    assert "computeSubnet" in json.dumps(props["VpcConfig"]["SubnetIds"])  # egress: @connections is public

    _, rule = only_resource(api_template, "AWS::Events::Rule", Name="tekoa-dev-bus-push")
    assert rule["Properties"]["EventPattern"] == {"source": ["tekoa"], "detail-type": list(PUSH.detail_types)}
    assert "EventBus" in json.dumps(rule["Properties"]["EventBusName"])
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 1}

    statements = policy_statements(api_template, props["Role"]["Fn::GetAtt"][0])
    assert actions_of(statements) == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
        "execute-api:ManageConnections",
    }
    (manage,) = [s for s in statements if s["Action"] == "execute-api:ManageConnections"]
    assert f"/{WS_STAGE_NAME}/*/@connections/*" in json.dumps(manage["Resource"])


def test_a_stage_without_egress_has_no_pusher(prod_templates: dict[str, Any]) -> None:
    api = prod_templates["api"]
    assert not resources_of_type(api, "AWS::Events::Rule")
    handlers = {
        f["Properties"].get("Handler") for f in resources_of_type(api, "AWS::Lambda::Function").values()
    }
    assert WORKLOADS["push"].handler not in handlers
    assert WORKLOADS["ws-routes"].handler in handlers  # connections still open and subscribe


def test_the_notify_function_takes_bus_events_and_its_retries_and_may_only_open_sealed_secrets(
    api_template: Any,
) -> None:
    from tekoa.bus_rules import NOTIFY
    from tekoa.names import ResourceNames

    function_id, function = _function(api_template, "notify")
    props = function["Properties"]
    assert "DatabaseLogintekoanotify" in json.dumps(
        props["Environment"]["Variables"]["TEKOA_DATABASE_SECRET_ARN"]
    )
    _, rule = only_resource(api_template, "AWS::Events::Rule", Name="tekoa-dev-bus-notify")
    assert rule["Properties"]["EventPattern"]["detail-type"] == list(NOTIFY.detail_types)
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}

    queue_id, queue = only_resource(
        api_template, "AWS::SQS::Queue", QueueName=ResourceNames("dev").notify_retry_queue
    )
    assert "RedrivePolicy" in queue["Properties"]  # a retry that crashes the function ends in a DLQ
    only_resource(
        api_template,
        "AWS::Lambda::EventSourceMapping",
        EventSourceArn={"Fn::GetAtt": [queue_id, "Arn"]},
        FunctionName={"Ref": function_id},
    )
    statements = policy_statements(api_template, props["Role"]["Fn::GetAtt"][0])
    (envelope,) = [s for s in statements if "BrokerKey" in json.dumps(s["Resource"])]
    assert envelope["Action"] == "kms:Decrypt"  # opens channel secrets; never makes keys
    assert "kms:EncryptionContextKeys" in json.dumps(envelope["Condition"])
    assert "execute-api:ManageConnections" not in actions_of(statements)
    assert "sqs:SendMessage" in actions_of(statements)

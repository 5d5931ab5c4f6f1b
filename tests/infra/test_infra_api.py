"""ApiStack: one zip Lambda in the VPC serves the HTTP API and all WebSocket routes, with exactly
the permissions the API uses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_helpers import actions_of, only_resource, policy_statements, resources_of_type

from tekoa.names import ResourceNames

pytestmark = pytest.mark.xdist_group("infra")
NAMES = ResourceNames("dev")


@pytest.fixture(scope="module")
def api_function(api_template: Any) -> tuple[str, dict[str, Any]]:
    return only_resource(api_template, "AWS::Lambda::Function", Handler="functions.api.handler.handler")


def test_api_lambda_runs_the_handler_on_python_312_arm64(api_function: tuple[str, dict[str, Any]]) -> None:
    _, function = api_function
    props = function["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["Timeout"] <= 30  # API Gateway stops waiting at 30 s
    assert props["TracingConfig"] == {"Mode": "Active"}


def test_api_lambda_runs_in_the_vpc_subnets_from_the_network_stack(
    api_function: tuple[str, dict[str, Any]],
) -> None:
    _, function = api_function
    vpc_config = function["Properties"]["VpcConfig"]
    assert len(vpc_config["SubnetIds"]) == 2
    assert all("Fn::ImportValue" in subnet for subnet in vpc_config["SubnetIds"])
    assert all("isolatedSubnet" in json.dumps(subnet) for subnet in vpc_config["SubnetIds"])
    assert len(vpc_config["SecurityGroupIds"]) == 1


def test_api_lambda_settings_point_at_the_stage_database_proxy_and_websocket(
    api_function: tuple[str, dict[str, Any]],
) -> None:
    _, function = api_function
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["TEKOA_STAGE"] == "dev"
    assert "DatabaseClusterSecret" in json.dumps(variables["TEKOA_DATABASE_SECRET_ARN"])
    assert "Proxy" in json.dumps(variables["TEKOA_DATABASE_HOST"])
    assert "/live" in json.dumps(variables["TEKOA_WEBSOCKET_ENDPOINT"])
    # /health reports the readiness of the markets the stream follows: the API must know them.
    assert variables["TEKOA_MARKET_EXCHANGE"] == "simulated"


def test_api_lambda_permissions_are_exactly_what_the_api_uses(
    api_template: Any, api_function: tuple[str, dict[str, Any]]
) -> None:
    _, function = api_function
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = policy_statements(api_template, role_id)
    assert actions_of(statements) == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "events:PutEvents",
        "s3:GetObject",
        "execute-api:ManageConnections",
    }
    by_action = {
        a: s for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert by_action["s3:GetObject"]["Resource"]["Fn::Join"][1][-1] == f":s3:::{NAMES.charts_bucket}/*"
    assert "Orders" in json.dumps(by_action["sqs:SendMessage"]["Resource"])
    assert "EventBus" in json.dumps(by_action["events:PutEvents"]["Resource"])


def test_http_api_sends_every_route_to_the_api_lambda(
    api_template: Any, api_function: tuple[str, dict[str, Any]]
) -> None:
    function_id, _ = api_function
    api_id, _ = only_resource(api_template, "AWS::ApiGatewayV2::Api", ProtocolType="HTTP")
    integration_id, _ = only_resource(
        api_template,
        "AWS::ApiGatewayV2::Integration",
        ApiId={"Ref": api_id},
        IntegrationType="AWS_PROXY",
        IntegrationUri={"Fn::GetAtt": [function_id, "Arn"]},
    )
    only_resource(
        api_template,
        "AWS::ApiGatewayV2::Route",
        ApiId={"Ref": api_id},
        RouteKey="$default",
        Target={"Fn::Join": ["", ["integrations/", {"Ref": integration_id}]]},
    )


def test_http_api_stage_is_throttled_and_access_logged(api_template: Any) -> None:
    api_id, _ = only_resource(api_template, "AWS::ApiGatewayV2::Api", ProtocolType="HTTP")
    _, stage = only_resource(api_template, "AWS::ApiGatewayV2::Stage", ApiId={"Ref": api_id})
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 200, "ThrottlingRateLimit": 100}
    assert "$context.requestId" in props["AccessLogSettings"]["Format"]


def test_websocket_connect_disconnect_and_default_routes_invoke_the_api_lambda(
    api_template: Any, api_function: tuple[str, dict[str, Any]]
) -> None:
    function_id, _ = api_function
    api_id, _ = only_resource(api_template, "AWS::ApiGatewayV2::Api", ProtocolType="WEBSOCKET")
    integrations = resources_of_type(api_template, "AWS::ApiGatewayV2::Integration")
    routes = [
        r
        for r in resources_of_type(api_template, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["ApiId"] == {"Ref": api_id}
    ]
    assert {r["Properties"]["RouteKey"] for r in routes} == {"$connect", "$disconnect", "$default"}
    for route in routes:
        integration_id = route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]
        uri = json.dumps(integrations[integration_id]["Properties"]["IntegrationUri"])
        assert function_id in uri


def test_api_gateway_may_invoke_the_api_lambda_from_both_apis(
    api_template: Any, api_function: tuple[str, dict[str, Any]]
) -> None:
    function_id, _ = api_function
    permissions = [
        p["Properties"]
        for p in resources_of_type(api_template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert {p["Principal"] for p in permissions} == {"apigateway.amazonaws.com"}
    assert len(permissions) == 4  # HTTP $default + three WebSocket routes

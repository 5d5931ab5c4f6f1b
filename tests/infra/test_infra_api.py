"""ApiStack: one zip Lambda in the VPC serves the HTTP API, with exactly the permissions the API
uses (the WebSocket API's functions: test_infra_realtime)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_helpers import actions_of, only_resource, policy_statements, resources_of_type

from infra.constants import API_THROTTLE_RATE
from infra.workloads import WORKLOADS
from tekoa.names import ResourceNames

pytestmark = pytest.mark.xdist_group("infra")
NAMES = ResourceNames("dev")


@pytest.fixture(scope="module")
def api_function(api_template: Any) -> tuple[str, dict[str, Any]]:
    return only_resource(api_template, "AWS::Lambda::Function", Handler=WORKLOADS["api"].handler)


def test_api_lambda_runs_the_handler_on_python_312_arm64(api_function: tuple[str, dict[str, Any]]) -> None:
    _, function = api_function
    props = function["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["Timeout"] <= 30  # API Gateway stops waiting at 30 s
    assert props["TracingConfig"] == {"Mode": "Active"}


@pytest.mark.parametrize(("profile", "subnets"), [("dev", "computeSubnet"), ("prod", "isolatedSubnet")])
def test_api_lambda_runs_in_the_compute_subnets_of_its_profile(
    profile: str, subnets: str, api_template: Any, prod_templates: dict[str, Any]
) -> None:
    template = api_template if profile == "dev" else prod_templates["api"]
    _, function = only_resource(template, "AWS::Lambda::Function", Handler=WORKLOADS["api"].handler)
    vpc_config = function["Properties"]["VpcConfig"]
    assert len(vpc_config["SubnetIds"]) == 2
    assert all("Fn::ImportValue" in subnet for subnet in vpc_config["SubnetIds"])
    assert all(subnets in json.dumps(subnet) for subnet in vpc_config["SubnetIds"])
    assert len(vpc_config["SecurityGroupIds"]) == 1


@pytest.mark.parametrize(("profile", "host"), [("dev", "DatabaseCluster"), ("prod", "Proxy")])
def test_api_lambda_logs_in_as_its_own_role_at_the_profile_database_endpoint(
    profile: str, host: str, api_template: Any, prod_templates: dict[str, Any]
) -> None:
    template = api_template if profile == "dev" else prod_templates["api"]
    _, function = only_resource(template, "AWS::Lambda::Function", Handler=WORKLOADS["api"].handler)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["TEKOA_STAGE"] == profile
    assert "DatabaseLogintekoaapi" in json.dumps(variables["TEKOA_DATABASE_SECRET_ARN"])
    assert host in json.dumps(variables["TEKOA_DATABASE_HOST"])
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
        "kms:GenerateDataKey",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "events:PutEvents",
        "s3:GetObject",
    }
    by_action = {
        a: s for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    charts = by_action["s3:GetObject"]["Resource"]["Fn::Join"][1]
    assert charts[2:] == [
        f":s3:::{NAMES.charts_bucket}-",
        {"Ref": "AWS::AccountId"},
        "-",
        {"Ref": "AWS::Region"},
        "/charts/*",
    ]
    queues = json.dumps([s["Resource"] for s in statements if "sqs:SendMessage" in s["Action"]])
    assert "Orders" in queues and "ChartRequests" in queues
    assert function["Properties"]["Environment"]["Variables"]["TEKOA_CHARTS_BUCKET"]["Fn::Join"][1][0] == (
        f"{NAMES.charts_bucket}-"
    )
    assert "EventBus" in json.dumps(by_action["events:PutEvents"]["Resource"])
    secrets = json.dumps(by_action["secretsmanager:GetSecretValue"]["Resource"])
    assert "DatabaseLogintekoaapi" in secrets and "JwtSigningKey" in secrets
    assert "DatabaseClusterSecret" not in secrets  # never the master credentials


def test_api_lambda_uses_the_broker_key_only_with_the_envelope_context(
    api_template: Any, api_function: tuple[str, dict[str, Any]]
) -> None:
    from tekoa.services.credentials import ENCRYPTION_CONTEXT_KEYS

    _, function = api_function
    statements = policy_statements(api_template, function["Properties"]["Role"]["Fn::GetAtt"][0])
    (envelope,) = [s for s in statements if "BrokerKey" in json.dumps(s["Resource"])]
    assert sorted(envelope["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert envelope["Condition"] == {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(ENCRYPTION_CONTEXT_KEYS)},
        "Null": {f"kms:EncryptionContext:{key}": "false" for key in ENCRYPTION_CONTEXT_KEYS},
    }
    # The data key (database, secrets) is reachable only through Secrets Manager.
    (data_key,) = [s for s in statements if "DataKey" in json.dumps(s["Resource"])]
    assert data_key["Action"] == "kms:Decrypt"
    assert "kms:ViaService" in json.dumps(data_key["Condition"])


def test_api_concurrency_is_bounded_without_reserving_any_by_default(
    api_template: Any, api_function: tuple[str, dict[str, Any]]
) -> None:
    _, function = api_function
    assert "ReservedConcurrentExecutions" not in function["Properties"]
    # API Gateway admits a bounded request rate, and the API's database role a bounded number of
    # connections, so a flood can neither exhaust the database nor run unbounded.
    api_id, _ = only_resource(api_template, "AWS::ApiGatewayV2::Api", ProtocolType="HTTP")
    _, stage = only_resource(api_template, "AWS::ApiGatewayV2::Stage", ApiId={"Ref": api_id})
    assert stage["Properties"]["DefaultRouteSettings"]["ThrottlingRateLimit"] == API_THROTTLE_RATE
    assert WORKLOADS["api"].database_login is not None
    assert WORKLOADS["api"].database_login.connection_limit <= 100


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


def test_only_the_http_api_invokes_the_api_lambda(
    api_template: Any, api_function: tuple[str, dict[str, Any]]
) -> None:
    function_id, _ = api_function
    permissions = [
        p["Properties"]
        for p in resources_of_type(api_template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert {p["Principal"] for p in permissions} == {"apigateway.amazonaws.com"}
    assert len(permissions) == 1  # HTTP $default; WebSocket routes have their own function

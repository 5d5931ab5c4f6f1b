"""WorkersStack: the ingest image Lambda on a schedule, and exactly one market-stream task."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_helpers import actions_of, only_resource, policy_statements, resources_of_type

from tekoa.schedules import SCHEDULES

pytestmark = pytest.mark.xdist_group("infra")


@pytest.fixture(scope="module")
def ingest_function(workers_template: Any) -> tuple[str, dict[str, Any]]:
    return only_resource(workers_template, "AWS::Lambda::Function", PackageType="Image")


def test_ingest_is_an_arm64_image_function_with_bounded_runtime(
    ingest_function: tuple[str, dict[str, Any]],
) -> None:
    _, function = ingest_function
    props = function["Properties"]
    assert "ImageUri" in props["Code"]
    assert props["Architectures"] == ["arm64"]
    assert 300 <= props["Timeout"] <= 900
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["Environment"]["Variables"]["NUMBA_CACHE_DIR"] == "/tmp"
    assert len(props["VpcConfig"]["SubnetIds"]) == 2


def _rules_targeting(template: Any, function_id: str) -> list[dict[str, Any]]:
    return [
        rule["Properties"]
        for rule in resources_of_type(template, "AWS::Events::Rule").values()
        if {"Fn::GetAtt": [function_id, "Arn"]} in [t["Arn"] for t in rule["Properties"]["Targets"]]
    ]


def test_ingest_runs_every_15_minutes(
    workers_template: Any, ingest_function: tuple[str, dict[str, Any]]
) -> None:
    function_id, _ = ingest_function
    (rule,) = _rules_targeting(workers_template, function_id)
    assert rule["ScheduleExpression"] == "rate(15 minutes)"


@pytest.fixture(scope="module")
def maintenance_function(workers_template: Any) -> tuple[str, dict[str, Any]]:
    return only_resource(
        workers_template, "AWS::Lambda::Function", Handler="functions.maintenance.handler.handler"
    )


def test_every_schedule_of_the_table_invokes_its_handler_under_the_local_rule_name(
    workers_template: Any,
) -> None:
    functions = resources_of_type(workers_template, "AWS::Lambda::Function")
    for entry in SCHEDULES:
        (function_id,) = [
            fid for fid, f in functions.items() if f["Properties"].get("Handler") == entry.handler
        ]
        (rule,) = _rules_targeting(workers_template, function_id)
        assert rule["ScheduleExpression"] == entry.rate
        assert rule["Name"] == f"tekoa-dev-{entry.name}"  # what the local scheduler calls it
        assert rule["State"] == "ENABLED"
        assert rule["Targets"][0]["RetryPolicy"]["MaximumRetryAttempts"] == 0


def test_maintenance_is_a_small_vpc_lambda_that_only_reaches_the_database(
    workers_template: Any, maintenance_function: tuple[str, dict[str, Any]]
) -> None:
    _, function = maintenance_function
    props = function["Properties"]
    assert props["Architectures"] == ["arm64"]
    assert props["ReservedConcurrentExecutions"] == 1
    assert len(props["VpcConfig"]["SubnetIds"]) == 2
    assert props["Environment"]["Variables"]["TEKOA_STAGE"] == "dev"
    role_id = props["Role"]["Fn::GetAtt"][0]
    assert actions_of(policy_statements(workers_template, role_id)) <= {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
    }


def test_image_assets_are_staged_for_the_cli_to_build_not_built_at_synth(platform: Any) -> None:
    images = platform.assets("workers")["dockerImages"].values()
    sources = {image["source"]["dockerFile"]: image["source"] for image in images}
    assert set(sources) == {"functions/ingest/Dockerfile", "fargate/market-stream/Dockerfile"}
    for source in sources.values():
        assert source["platform"] == "linux/arm64"
        context = platform.outdir / source["directory"]
        assert (context / "pyproject.toml").exists()
        assert (context / "layers" / "tekoa" / "tekoa").is_dir()
        assert not (context / ".venv").exists()
        assert not (context / "tests").exists()


@pytest.fixture(scope="module")
def service(workers_template: Any) -> dict[str, Any]:
    return only_resource(workers_template, "AWS::ECS::Service")[1]["Properties"]


@pytest.fixture(scope="module")
def container(workers_template: Any) -> dict[str, Any]:
    _, task = only_resource(workers_template, "AWS::ECS::TaskDefinition")
    (definition,) = task["Properties"]["ContainerDefinitions"]
    return dict(definition)


def test_market_stream_runs_one_task_and_never_two_during_deploys(service: dict[str, Any]) -> None:
    assert service["DesiredCount"] == 1
    assert service["LaunchType"] == "FARGATE"
    assert service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    assert service["DeploymentConfiguration"]["MaximumPercent"] == 100


def test_market_stream_has_no_load_balancer_and_no_public_ip(service: dict[str, Any]) -> None:
    assert not service.get("LoadBalancers")
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"


def test_market_stream_logs_to_cloudwatch_with_retention(
    workers_template: Any, container: dict[str, Any]
) -> None:
    log = container["LogConfiguration"]
    assert log["LogDriver"] == "awslogs"
    group_id = log["Options"]["awslogs-group"]["Ref"]
    assert (
        resources_of_type(workers_template, "AWS::Logs::LogGroup")[group_id]["Properties"]["RetentionInDays"]
        == 30
    )


def test_market_stream_health_check_probes_the_service_and_allows_a_graceful_stop(
    container: dict[str, Any],
) -> None:
    assert "http://127.0.0.1:8080/health" in " ".join(container["HealthCheck"]["Command"])
    assert 30 <= container["StopTimeout"] <= 60


def test_market_stream_task_role_may_only_publish_events_and_read_the_db_secret(
    workers_template: Any,
) -> None:
    _, task = only_resource(workers_template, "AWS::ECS::TaskDefinition")
    role_id = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    statements = policy_statements(workers_template, role_id)
    assert actions_of(statements) == {
        "events:PutEvents",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
    }
    assert all(statement["Resource"] != "*" for statement in statements)
    (decrypt,) = [s for s in statements if s["Action"] == "kms:Decrypt"]
    assert "secretsmanager." in json.dumps(decrypt["Condition"]["StringEquals"]["kms:ViaService"])
    managed = resources_of_type(workers_template, "AWS::IAM::Role")[role_id]["Properties"].get(
        "ManagedPolicyArns"
    )
    assert not managed


def test_market_stream_is_told_which_exchange_to_follow(container: dict[str, Any]) -> None:
    environment = {variable["Name"]: variable["Value"] for variable in container["Environment"]}
    assert environment["TEKOA_MARKET_EXCHANGE"] == "simulated"  # the default stage has no egress
    assert "TEKOA_MARKET_SYMBOLS" not in environment  # the service's default set

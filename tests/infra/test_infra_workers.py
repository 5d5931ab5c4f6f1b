"""WorkersStack: the ingest image Lambda on a schedule, the chart image Lambda on the chart
queue, and at most one market-stream task."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_helpers import actions_of, only_resource, policy_statements, resources_of_type

from functions.charts.local import BATCH_SIZE as LOCAL_CHART_BATCH
from infra.workloads import WORKLOADS
from tekoa.names import ResourceNames
from tekoa.schedules import SCHEDULES

NAMES = ResourceNames("dev")

pytestmark = pytest.mark.xdist_group("infra")


@pytest.fixture(scope="module")
def ingest_function(workers_template: Any) -> tuple[str, dict[str, Any]]:
    return only_resource(workers_template, "AWS::Lambda::Function", Description="Tekoa candle backfill")


def test_ingest_is_a_traced_arm64_image_function_with_bounded_runtime(
    ingest_function: tuple[str, dict[str, Any]],
) -> None:
    _, function = ingest_function
    props = function["Properties"]
    assert "ImageUri" in props["Code"]
    assert props["Architectures"] == ["arm64"]
    assert 300 <= props["Timeout"] <= 900
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert "ReservedConcurrentExecutions" not in props
    assert props["Environment"]["Variables"]["NUMBA_CACHE_DIR"] == "/tmp"
    assert "DatabaseLogintekoaingest" in json.dumps(
        props["Environment"]["Variables"]["TEKOA_DATABASE_SECRET_ARN"]
    )
    assert len(props["VpcConfig"]["SubnetIds"]) == 2


def _rules_targeting(template: Any, function_id: str) -> list[dict[str, Any]]:
    return [
        rule["Properties"]
        for rule in resources_of_type(template, "AWS::Events::Rule").values()
        if {"Fn::GetAtt": [function_id, "Arn"]} in [t["Arn"] for t in rule["Properties"]["Targets"]]
    ]


@pytest.mark.parametrize(("profile", "rate"), [("prod", "rate(15 minutes)"), ("dev", "rate(1 hour)")])
def test_ingest_runs_on_the_profile_schedule(
    profile: str, rate: str, workers_template: Any, prod_templates: dict[str, Any]
) -> None:
    template = workers_template if profile == "dev" else prod_templates["workers"]
    function_id, _ = only_resource(template, "AWS::Lambda::Function", Description="Tekoa candle backfill")
    (rule,) = _rules_targeting(template, function_id)
    assert rule["ScheduleExpression"] == rate


@pytest.fixture(scope="module")
def maintenance_function(workers_template: Any) -> tuple[str, dict[str, Any]]:
    return only_resource(
        workers_template, "AWS::Lambda::Function", Handler="functions.maintenance.handler.handler"
    )


def test_every_schedule_of_the_table_invokes_its_handler_under_the_local_rule_name(
    workers_template: Any, api_template: Any
) -> None:
    for entry in SCHEDULES:
        # The notify function (its daily summary) lives with the API; the others are workers.
        template = api_template if entry.handler == "functions.notify.handler.handler" else workers_template
        functions = resources_of_type(template, "AWS::Lambda::Function")
        # A zip function names its handler; an image function (the reconciler) its command.
        (function_id,) = [
            fid
            for fid, f in functions.items()
            if entry.handler
            in (f["Properties"].get("Handler"), *f["Properties"].get("ImageConfig", {}).get("Command", []))
        ]
        (rule,) = [r for r in _rules_targeting(template, function_id) if "ScheduleExpression" in r]
        if entry.name not in ("reconcile", "evaluate"):  # their rate follows the stage
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
    assert len(props["VpcConfig"]["SubnetIds"]) == 2
    assert props["Environment"]["Variables"]["TEKOA_STAGE"] == "dev"
    # Its own database login, as every workload has (service role: it purges platform tables).
    assert "DatabaseLogintekoamaintenance" in json.dumps(
        props["Environment"]["Variables"]["TEKOA_DATABASE_SECRET_ARN"]
    )
    role_id = props["Role"]["Fn::GetAtt"][0]
    assert actions_of(policy_statements(workers_template, role_id)) <= {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_image_assets_are_staged_for_the_cli_to_build_not_built_at_synth(platform: Any) -> None:
    images = platform.assets("workers")["dockerImages"].values()
    sources = {image["source"]["dockerFile"]: image["source"] for image in images}
    assert set(sources) == {
        "functions/ingest/Dockerfile",
        "functions/charts/Dockerfile",
        "functions/executor/Dockerfile",
        "functions/evaluator/Dockerfile",
        "fargate/market-stream/Dockerfile",
        "fargate/xray-daemon/Dockerfile",
    }
    for workload in (
        WORKLOADS[name] for name in ("ingest", "charts", "market-stream", "executor", "evaluator")
    ):
        source = sources[str(workload.dockerfile)]
        assert source["platform"] == "linux/arm64"
        # The Dockerfile installs exactly the extras the registry (and the import test) names.
        assert source["dockerBuildArgs"] == {"EXTRAS": " ".join(workload.extras)}
        context = platform.outdir / source["directory"]
        assert (context / "pyproject.toml").exists()
        assert (context / "layers" / "tekoa" / "tekoa").is_dir()
        for excluded in (".venv", ".cache", "tests"):
            assert not (context / excluded).exists()


@pytest.fixture(scope="module")
def charts_function(workers_template: Any) -> tuple[str, dict[str, Any]]:
    return only_resource(workers_template, "AWS::Lambda::Function", Description="Tekoa chart rendering")


def test_charts_is_an_arm64_image_function_sized_for_rendering(
    charts_function: tuple[str, dict[str, Any]],
) -> None:
    _, function = charts_function
    props = function["Properties"]
    assert "ImageUri" in props["Code"]
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] >= 1769  # a full vCPU
    assert props["TracingConfig"] == {"Mode": "Active"}
    variables = props["Environment"]["Variables"]
    assert "DatabaseLogintekoacharts" in json.dumps(variables["TEKOA_DATABASE_SECRET_ARN"])
    assert variables["TEKOA_CHARTS_BUCKET"]["Fn::Join"][1][0] == f"{NAMES.charts_bucket}-"
    assert len(props["VpcConfig"]["SubnetIds"]) == 2


def test_charts_consumes_the_chart_queue_with_partial_batch_responses(
    workers_template: Any, charts_function: tuple[str, dict[str, Any]], messaging_template: Any
) -> None:
    function_id, function = charts_function
    _, mapping = only_resource(
        workers_template, "AWS::Lambda::EventSourceMapping", FunctionName={"Ref": function_id}
    )
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= props["BatchSize"] <= 10
    assert props["BatchSize"] == LOCAL_CHART_BATCH  # tekoa up feeds the handler alike
    assert "ChartRequests" in json.dumps(props["EventSourceArn"])
    # In-flight messages must not reappear while a batch is still being handled.
    (queue,) = [
        q
        for q in resources_of_type(messaging_template, "AWS::SQS::Queue").values()
        if q["Properties"]["QueueName"] == NAMES.chart_queue
    ]
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * function["Properties"]["Timeout"]


def test_charts_may_only_put_and_get_objects_under_the_chart_prefix(
    workers_template: Any, charts_function: tuple[str, dict[str, Any]]
) -> None:
    _, function = charts_function
    statements = policy_statements(workers_template, function["Properties"]["Role"]["Fn::GetAtt"][0])
    s3 = [s for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    assert {a for s in s3 for a in _actions(s)} == {"s3:PutObject", "s3:GetObject"}
    for statement in s3:
        assert statement["Resource"]["Fn::Join"][1][2:] == [
            f":s3:::{NAMES.charts_bucket}-",
            {"Ref": "AWS::AccountId"},
            "-",
            {"Ref": "AWS::Region"},
            "/charts/*",
        ]
    assert actions_of(statements) <= {
        "s3:PutObject",
        "s3:GetObject",
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


@pytest.fixture(scope="module")
def service(workers_template: Any) -> dict[str, Any]:
    return only_resource(workers_template, "AWS::ECS::Service")[1]["Properties"]


@pytest.fixture(scope="module")
def container(workers_template: Any) -> dict[str, Any]:
    _, task = only_resource(workers_template, "AWS::ECS::TaskDefinition")
    (definition,) = [c for c in task["Properties"]["ContainerDefinitions"] if c["Name"] == "market-stream"]
    return dict(definition)


def test_prod_market_stream_runs_one_task_and_never_two_during_deploys(
    prod_templates: dict[str, Any],
) -> None:
    service = only_resource(prod_templates["workers"], "AWS::ECS::Service")[1]["Properties"]
    assert service["DesiredCount"] == 1
    assert service["LaunchType"] == "FARGATE"
    assert service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    assert service["DeploymentConfiguration"]["MaximumPercent"] == 100


def test_dev_market_stream_runs_only_when_asked(service: dict[str, Any]) -> None:
    # A running stream writes every minute and would keep the dev database from pausing.
    assert service["DesiredCount"] == 0
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


def test_market_stream_task_role_may_only_publish_events_send_triggers_push_read_its_login_and_trace(
    workers_template: Any,
) -> None:
    _, task = only_resource(workers_template, "AWS::ECS::TaskDefinition")
    role_id = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    statements = policy_statements(workers_template, role_id)
    assert actions_of(statements) == {
        "events:PutEvents",
        "execute-api:ManageConnections",  # forming candles to WebSocket subscribers
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    }
    # Only X-Ray, which has no resource-level scope, gets "*".
    assert all(s["Resource"] != "*" for s in statements if not str(s["Action"][0]).startswith("xray:"))
    (secret,) = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert "DatabaseLogintekoamarketstream" in json.dumps(secret["Resource"])
    (send,) = [s for s in statements if "sqs:SendMessage" in s["Action"]]
    assert "OrdersQueue" in json.dumps(send["Resource"])  # paper triggers, nothing else
    (decrypt,) = [s for s in statements if s["Action"] == "kms:Decrypt"]
    assert "secretsmanager." in json.dumps(decrypt["Condition"]["StringEquals"]["kms:ViaService"])
    managed = resources_of_type(workers_template, "AWS::IAM::Role")[role_id]["Properties"].get(
        "ManagedPolicyArns"
    )
    assert not managed


def test_market_stream_traces_through_a_daemon_beside_it(workers_template: Any) -> None:
    _, task = only_resource(workers_template, "AWS::ECS::TaskDefinition")
    containers = {c["Name"]: c for c in task["Properties"]["ContainerDefinitions"]}
    daemon = containers["xray-daemon"]
    assert daemon["Essential"] is False  # tracing must not take the stream down
    assert daemon["PortMappings"] == [{"ContainerPort": 2000, "Protocol": "udp"}]
    environment = {v["Name"]: v["Value"] for v in containers["market-stream"]["Environment"]}
    assert environment["AWS_XRAY_DAEMON_ADDRESS"] == "127.0.0.1:2000"
    # ... and publishes the candle-age metric the freshness alarm evaluates each minute.
    assert environment["TEKOA_MARKET_METRICS_EVERY_S"] == "60"


def test_market_stream_is_told_which_exchange_to_follow(container: dict[str, Any]) -> None:
    environment = {variable["Name"]: variable["Value"] for variable in container["Environment"]}
    assert environment["TEKOA_MARKET_EXCHANGE"] == "simulated"  # the default stage has no egress
    assert "TEKOA_MARKET_SYMBOLS" not in environment  # the service's default set

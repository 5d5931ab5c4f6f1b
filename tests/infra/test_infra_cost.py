"""The idle-cost report: computed from synthesised templates, within budget, and the README's
table is exactly what the script prints."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from infra.cost import PRICE, VARIANTS, idle_cost, monthly_total, readme_block, report

pytestmark = pytest.mark.xdist_group("infra")


@pytest.fixture(scope="module")
def profiles(platform: Any, prod_platform: Any, dev_stream_platform: Any) -> dict[str, Any]:
    synthesised = {"prod": prod_platform, "dev": platform, "dev + market stream": dev_stream_platform}
    assert set(synthesised) == set(VARIANTS)
    return {name: idle_cost(s.templates()) for name, s in synthesised.items()}


def test_the_readme_table_is_what_the_script_prints(profiles: dict[str, Any]) -> None:
    assert readme_block() == report(profiles), "README is stale: run `make cost`"


def test_prod_idles_under_300_and_dev_under_60_dollars_a_month(profiles: dict[str, Any]) -> None:
    assert monthly_total(profiles["prod"]) <= 300
    assert monthly_total(profiles["dev"]) <= 60


def test_what_makes_dev_cheap_shows_in_its_bill(profiles: dict[str, Any]) -> None:
    prod = {item.category for item in profiles["prod"]}
    dev = {item.category for item in profiles["dev"]}
    assert {"RDS Proxy", "VPC interface endpoints", "Fargate (market stream)"} <= prod - dev
    (aurora,) = [item for item in profiles["dev"] if item.category.startswith("Aurora")]
    assert "auto-pause" in aurora.what


def _template(*resources: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "main": {
            "Resources": {
                logical_id: {"Type": resource_type, "Properties": props}
                for logical_id, resource_type, props in resources
            }
        }
    }


def test_rds_proxy_is_billed_at_its_eight_acu_minimum() -> None:
    (item,) = idle_cost(_template(("Proxy", "AWS::RDS::DBProxy", {})))
    assert item.usd == 8 * Decimal("0.015") * 730


def test_interface_endpoints_are_billed_per_az() -> None:
    endpoint = {"VpcEndpointType": "Interface", "SubnetIds": ["a", "b"]}
    items = idle_cost(
        _template(("E1", "AWS::EC2::VPCEndpoint", endpoint), ("E2", "AWS::EC2::VPCEndpoint", endpoint))
    )
    assert [i.usd for i in items] == [4 * PRICE["interface_endpoint_az_hour"] * 730]


def test_a_paused_database_is_billed_for_the_hours_a_schedule_wakes_it() -> None:
    cluster = {"ServerlessV2ScalingConfiguration": {"MinCapacity": 0, "SecondsUntilAutoPause": 300}}
    function = {"MemorySize": 1024, "Environment": {"Variables": {"TEKOA_DATABASE_SECRET_ARN": "x"}}}
    rule = {"ScheduleExpression": "rate(1 hour)", "Targets": [{"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}}]}
    items = idle_cost(
        _template(
            ("Cluster", "AWS::RDS::DBCluster", cluster),
            ("Writer", "AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless"}),
            ("Fn", "AWS::Lambda::Function", function),
            ("Rule", "AWS::Events::Rule", rule),
        )
    )
    (aurora,) = [i for i in items if i.category.startswith("Aurora")]
    # (10 s run + 300 s until it pauses) of every hour, at 0.5 ACU
    assert aurora.usd == Decimal("0.5") * (Decimal(310) / 3600) * 730 * PRICE["aurora_acu_hour"]


def test_a_running_task_keeps_a_pausing_database_awake() -> None:
    cluster = {"ServerlessV2ScalingConfiguration": {"MinCapacity": 0, "SecondsUntilAutoPause": 300}}
    task = {"Cpu": "256", "Memory": "512", "RuntimePlatform": {"CpuArchitecture": "ARM64"}}
    items = idle_cost(
        _template(
            ("Cluster", "AWS::RDS::DBCluster", cluster),
            ("Writer", "AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless"}),
            ("Task", "AWS::ECS::TaskDefinition", task),
            ("Service", "AWS::ECS::Service", {"DesiredCount": 1, "TaskDefinition": {"Ref": "Task"}}),
        )
    )
    (aurora,) = [i for i in items if i.category.startswith("Aurora")]
    assert aurora.usd == Decimal("0.5") * 730 * PRICE["aurora_acu_hour"]


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            ("Rule", "AWS::Events::Rule", {"ScheduleExpression": "cron(0 * * * ? *)", "Targets": []}),
            "schedule",
        ),
        (
            ("Task", "AWS::ECS::TaskDefinition", {"Cpu": "256", "Memory": "512"}),
            "ARM64",
        ),
    ],
)
def test_what_the_price_table_cannot_price_is_refused(
    resource: tuple[str, str, dict[str, Any]], message: str
) -> None:
    resources = [resource]
    if resource[1] == "AWS::ECS::TaskDefinition":
        resources.append(
            ("Service", "AWS::ECS::Service", {"DesiredCount": 1, "TaskDefinition": {"Ref": "Task"}})
        )
    with pytest.raises(ValueError, match=message):
        idle_cost(_template(*resources))

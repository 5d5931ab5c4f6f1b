"""The app entry point and its context: `python -m infra.app` synthesises what the CLI deploys,
offline once the bundle cache is warm; knobs come from CDK context (cdk.json or `-c`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config import StageConfig, cdk_json_context
from infra.constants import API_RESERVED_CONCURRENCY, LAMBDA_WHEEL_PLATFORM, PYTHON_VERSION, REPO_ROOT
from infra.workloads import WORKLOADS

pytestmark = pytest.mark.xdist_group("infra")


def test_the_app_synthesises_what_the_cli_asks_offline_once_bundles_are_cached(tmp_path: Path) -> None:
    from infra.bundling import install_dependencies

    # Given the zips' dependency trees in the bundle cache (the first synth on a machine builds them)
    for workload in WORKLOADS.values():
        if workload.package == "zip":
            install_dependencies(
                workload.extras, platform=LAMBDA_WHEEL_PLATFORM, python_version=PYTHON_VERSION
            )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDK_", "AWS_"))}
    env |= {
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        # Any attempt to reach a package index fails fast instead of passing by luck.
        "UV_OFFLINE": "1",
        "PIP_NO_INDEX": "1",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        # What the CLI hands the app for `cdk synth -c stage=qa`: cdk.json's context plus the flag.
        "CDK_CONTEXT_JSON": json.dumps({**cdk_json_context(), "stage": "qa"}),
    }
    # When the app runs as `cdk synth -c stage=qa` runs it
    result = subprocess.run(
        [sys.executable, "-m", "infra.app"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    # Then every stack of that stage is synthesised, with bundled zips
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = {
        artifact["properties"]["stackName"]
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {
        f"tekoa-qa-{concern}" for concern in ("network", "data", "messaging", "api", "workers", "monitoring")
    }
    assert list(tmp_path.glob("asset.*/fastapi"))


def test_the_app_reads_cdk_json_context_when_run_without_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.app import new_app

    monkeypatch.delenv("CDK_CONTEXT_JSON", raising=False)
    monkeypatch.delenv("CONTEXT_OVERFLOW_LOCATION_ENV", raising=False)
    app = new_app(context={"stage": "qa"})

    assert app.node.try_get_context("@aws-cdk/aws-lambda:useCdkManagedLogGroup") is True
    assert app.node.try_get_context("stage") == "qa"  # `-c` wins over cdk.json


def test_stage_and_switches_come_from_cdk_context() -> None:
    from aws_cdk import App

    app = App(
        context={
            "stage": "qa",
            "profile": "prod",
            "bundle": "false",
            "egress": True,
            "db_reader": "false",
            "reserved_concurrency": "true",
            "market_stream": "on",
            "alarm_email": "ops@example.com",
            "budget_usd": "120",
            "chart_retention_days": "7",
        }
    )

    config = StageConfig.from_context(app.node)

    assert config == StageConfig(
        stage="qa",
        profile_name="prod",
        bundle=False,
        egress=True,
        db_reader=False,
        reserved_concurrency=True,
        market_stream=True,
        alarm_email="ops@example.com",
        budget_usd=120,
        chart_retention_days=7,
    )
    assert config.names.order_queue == "tekoa-qa-orders.fifo"
    assert config.stack_name("data") == "tekoa-qa-data"
    assert config.egress_kind == "nat-gateway"
    assert config.monthly_budget_usd == 120


def test_defaults_are_a_bundled_dev_stage_on_the_dev_profile() -> None:
    from aws_cdk import App

    config = StageConfig.from_context(App().node)

    assert config == StageConfig(stage="dev", bundle=True, reserved_concurrency=False)
    assert config.profile.name == "dev"
    assert config.egress_kind == "nat-instance"
    assert config.runs_market_stream is False
    assert config.monthly_budget_usd == 60


@pytest.mark.parametrize(("stage", "profile"), [("prod", "prod"), ("dev", "dev"), ("qa", "dev")])
def test_the_profile_follows_the_stage_unless_named(stage: str, profile: str) -> None:
    assert StageConfig(stage=stage).profile.name == profile
    assert StageConfig(stage=stage, profile_name="prod").profile.name == "prod"


@pytest.mark.parametrize("days", [0, -1, 3651])
def test_a_chart_retention_outside_one_day_to_ten_years_fails_at_synth(days: int) -> None:
    with pytest.raises(ValueError, match="chart_retention_days"):
        StageConfig(chart_retention_days=days)


def test_an_unknown_profile_fails_at_synth() -> None:
    with pytest.raises(ValueError, match="profile"):
        StageConfig(profile_name="cheap")  # type: ignore[arg-type]


@pytest.mark.parametrize("stage", ["Prod", "1dev", "a" * 21, "dev_1"])
def test_a_stage_the_processes_would_reject_fails_at_synth(stage: str) -> None:
    with pytest.raises(ValueError, match="stage"):
        StageConfig(stage=stage)


def test_cdk_json_runs_the_app_with_the_project_venv() -> None:
    cdk_json: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert cdk_json["app"] == ".venv/bin/python -m infra.app"
    assert cdk_json_context() == cdk_json["context"]


def test_the_market_stream_follows_the_exchange_and_symbols_the_context_names() -> None:
    from aws_cdk import App

    app = App(
        context={"egress": "true", "market_exchange": "binance", "market_symbols": "btc/usdt, ETH/USDT"}
    )

    config = StageConfig.from_context(app.node)

    assert config.market_environment == {
        "TEKOA_MARKET_EXCHANGE": "binance",
        "TEKOA_MARKET_SYMBOLS": "BTC/USDT,ETH/USDT",
    }
    assert StageConfig().market_environment == {"TEKOA_MARKET_EXCHANGE": "simulated"}


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        # a real exchange with no way out of the VPC (prod without egress has none)
        ({"market_exchange": "binance", "profile_name": "prod"}, "egress"),
        ({"market_exchange": "nyse", "egress": True}, "ccxt exchange id"),
        ({"market_symbols": ("BTCUSDT",)}, "BASE/QUOTE"),
        ({"alarm_email": "not an address"}, "email"),
        ({"budget_usd": -1}, "budget"),
    ],
)
def test_a_deployment_that_could_not_work_fails_at_synth(knobs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StageConfig(**knobs)


def test_the_dev_nat_instance_lets_the_stream_reach_a_real_exchange() -> None:
    assert StageConfig(market_exchange="binance").egress_kind == "nat-instance"


def test_reserved_concurrency_is_only_there_when_asked(platform: Any, dev_stream_platform: Any) -> None:
    def reserved(templates: dict[str, Any]) -> dict[str, int]:
        return {
            function["Properties"].get("Handler") or "image": function["Properties"][
                "ReservedConcurrentExecutions"
            ]
            for template in templates.values()
            for function in template["Resources"].values()
            if function["Type"] == "AWS::Lambda::Function"
            and "ReservedConcurrentExecutions" in function["Properties"]
        }

    # Accounts with the default quota of 10 refuse any reservation: none unless asked ...
    assert reserved(platform.templates()) == {}
    # ... and when asked (-c reserved_concurrency=true): the API capped, ingest, migrations and
    # housekeeping one at a time.
    assert dev_stream_platform.synth_error is None
    assert reserved(dev_stream_platform.templates()) == {
        WORKLOADS["api"].handler: API_RESERVED_CONCURRENCY,
        WORKLOADS["migrate"].handler: 1,
        WORKLOADS["maintenance"].handler: 1,
        "image": 1,
    }

"""The app entry point and its context: `python -m infra.app` synthesises offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from infra.config import StageConfig
from infra.constants import REPO_ROOT

pytestmark = pytest.mark.xdist_group("infra")


def test_python_m_infra_app_synthesises_every_stack_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDK_", "AWS_"))}
    env |= {
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        # Any attempt to reach a package index fails fast instead of passing by luck.
        "UV_OFFLINE": "1",
        "PIP_NO_INDEX": "1",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "infra.app"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started < 120

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = {
        artifact["properties"]["stackName"]
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {
        f"tekoa-dev-{concern}" for concern in ("network", "data", "messaging", "api", "workers")
    }


def test_stage_and_switches_come_from_cdk_context() -> None:
    from aws_cdk import App

    app = App(context={"stage": "qa", "bundle": "true", "egress": True, "db_reader": "false"})

    config = StageConfig.from_context(app.node)

    assert config == StageConfig(stage="qa", bundle=True, egress=True, db_reader=False)
    assert config.names.order_queue == "tekoa-qa-orders.fifo"
    assert config.stack_name("data") == "tekoa-qa-data"


def test_defaults_are_an_offline_dev_stage_without_egress() -> None:
    from aws_cdk import App

    assert StageConfig.from_context(App().node) == StageConfig(stage="dev", bundle=False, egress=False)


@pytest.mark.parametrize("stage", ["Prod", "1dev", "a" * 21, "dev_1"])
def test_a_stage_the_processes_would_reject_fails_at_synth(stage: str) -> None:
    with pytest.raises(ValueError, match="stage"):
        StageConfig(stage=stage)


def test_cdk_json_runs_the_app_with_the_project_venv() -> None:
    cdk_json: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert cdk_json["app"] == ".venv/bin/python -m infra.app"
    assert cdk_json["context"]["bundle"] is False


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
        ({"market_exchange": "binance"}, "egress"),  # a real exchange with no way out of the VPC
        ({"market_exchange": "nyse", "egress": True}, "ccxt exchange id"),
        ({"market_symbols": ("BTCUSDT",)}, "BASE/QUOTE"),
    ],
)
def test_a_market_the_stream_could_not_follow_fails_at_synth(knobs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StageConfig(**knobs)

"""Zip bundles: built by default, from the lock, for Lambda's platform, with the sources in import
layout; dependency trees are cached per lock and target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra import bundling
from infra.constants import LAMBDA_WHEEL_PLATFORM, PYTHON_VERSION
from infra.workloads import WORKLOADS

pytestmark = pytest.mark.xdist_group("infra")


def _zip_asset(platform: Any, concern: str, handler: str) -> Path:
    """The staged asset directory of the zip function with this handler."""
    template = platform.template_json(concern)
    (function,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler
    ]
    # The zip's S3 key is the asset hash; the staged directory carries the same hash.
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    return Path(platform.outdir) / f"asset.{asset_hash}"


@pytest.mark.parametrize(("concern", "workload"), [("api", "api"), ("data", "migrate")])
def test_the_default_synth_bundles_each_zip_with_its_locked_dependencies_for_lambda(
    platform: Any, concern: str, workload: str
) -> None:
    asset = _zip_asset(platform, concern, WORKLOADS[workload].handler)

    # the sources, where the handler string expects them ...
    assert (asset / WORKLOADS[workload].module.replace(".", "/")).with_suffix(".py").is_file()
    assert (asset / "tekoa" / "names.py").is_file()
    # ... and the runtime dependencies, as Linux arm64 wheels for Lambda's python3.12
    assert (asset / "aws_xray_sdk").is_dir()
    assert (asset / "psycopg_binary").is_dir()
    (core,) = (asset / "pydantic_core").glob("_pydantic_core*.so")
    assert core.name.endswith("cpython-312-aarch64-linux-gnu.so")
    assert not list(asset.rglob("__pycache__"))


def test_the_api_bundle_never_carries_the_numeric_stack(platform: Any) -> None:
    asset = _zip_asset(platform, "api", WORKLOADS["api"].handler)
    assert (asset / "fastapi").is_dir()
    for heavy in ("numpy", "numba", "pandas", "matplotlib", "ccxt"):
        assert not (asset / heavy).exists(), heavy


def test_dependency_trees_are_built_once_per_lock_and_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = bundling.install_dependencies(
        WORKLOADS["api"].extras, platform=LAMBDA_WHEEL_PLATFORM, python_version=PYTHON_VERSION
    )
    # A second build of the same target must not need uv at all.
    monkeypatch.setattr(bundling, "find_uv", lambda: pytest.fail("rebuilt a cached tree"))
    again = bundling.install_dependencies(
        WORKLOADS["api"].extras, platform=LAMBDA_WHEEL_PLATFORM, python_version=PYTHON_VERSION
    )
    assert again == first
    assert first.parent == bundling.bundle_cache_root()


def test_a_synth_without_bundling_warns_that_the_zip_cannot_be_deployed() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk.assertions import Annotations, Match

    from infra.components.functions import workload_function
    from infra.constants import API_MEMORY_MB, API_TIMEOUT

    stack = Stack(App(), "Unbundled")
    vpc = ec2.Vpc(stack, "Vpc")
    workload_function(
        stack,
        WORKLOADS["migrate"],
        bundle=False,
        description="sources only",
        memory_mb=API_MEMORY_MB,
        timeout=API_TIMEOUT,
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        security_group=ec2.SecurityGroup(stack, "Group", vpc=vpc),
        environment={},
        reserved_concurrency=None,
    )

    Annotations.from_stack(stack).has_warning(
        "/Unbundled/Function", Match.string_like_regexp("holds sources only")
    )


def test_cdk_json_leaves_bundling_on() -> None:
    from infra.config import StageConfig, cdk_json_context

    context = cdk_json_context()
    assert "bundle" not in context or context["bundle"] is True
    assert StageConfig().bundle is True

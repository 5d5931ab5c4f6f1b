"""Lambda functions of the platform's workloads, built one way: the registry entry says what
runs and what it imports; this module adds what every function must have (arm64, its own log
group, active tracing, the runtime's findings acknowledged, a warning when not deployable)."""

from __future__ import annotations

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import python_lambda_code
from infra.constants import (
    ASSET_EXCLUDES,
    IMAGE_PLATFORM,
    LAMBDA_ARCHITECTURE,
    LAMBDA_RUNTIME,
    LOG_RETENTION,
    REPO_ROOT,
)
from infra.nag import acknowledge
from infra.workloads import Workload

LAMBDA_MANAGED_POLICY_FINDINGS = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
)


def workload_function(
    scope: Construct,
    workload: Workload,
    *,
    bundle: bool,
    description: str,
    memory_mb: int,
    timeout: Duration,
    vpc: ec2.IVpc,
    subnets: ec2.SubnetSelection,
    security_group: ec2.ISecurityGroup,
    environment: dict[str, str],
    reserved_concurrency: int | None,
) -> lambda_.Function:
    """The workload's function in the VPC: a zip bundle, or an image built from its Dockerfile."""
    common: dict[str, object] = {
        "description": description,
        "architecture": LAMBDA_ARCHITECTURE,
        "memory_size": memory_mb,
        "timeout": timeout,
        "reserved_concurrent_executions": reserved_concurrency,
        "vpc": vpc,
        "vpc_subnets": subnets,
        "security_groups": [security_group],
        "tracing": lambda_.Tracing.ACTIVE,
        "log_group": logs.LogGroup(
            scope, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        ),
        "environment": {**environment, "POWERTOOLS_SERVICE_NAME": f"tekoa-{workload.name}"},
    }
    function: lambda_.Function
    if workload.package == "zip":
        function = lambda_.Function(
            scope,
            "Function",
            runtime=LAMBDA_RUNTIME,
            handler=workload.handler,
            code=python_lambda_code(extras=workload.extras, sources=workload.sources, bundle=bundle),
            **common,  # type: ignore[arg-type]
        )
        acknowledge(
            function,
            "Pinned to python3.12, the interpreter the bundled wheels and the test suite target; "
            "moved deliberately, not by whatever is newest.",
            "AwsSolutions-L1",
        )
        if not bundle:
            Annotations.of(function).add_warning_v2(
                "tekoa:unbundled",
                f"The {workload.name} asset holds sources only (no dependencies): fine for a quick "
                "synth, broken if deployed. Deploy without `-c bundle=false`.",
            )
    else:
        assert workload.dockerfile is not None
        function = lambda_.DockerImageFunction(
            scope,
            "Function",
            code=lambda_.DockerImageCode.from_image_asset(
                str(REPO_ROOT),
                file=workload.dockerfile,
                exclude=list(ASSET_EXCLUDES),
                platform=IMAGE_PLATFORM,
                build_args=workload.build_args,
                cmd=list(workload.image_command) if workload.image_command else None,
            ),
            **common,  # type: ignore[arg-type]
        )
    acknowledge(
        function,
        "AWS-managed basic-execution and VPC-access policies only allow writing the function's "
        "logs and managing its own network interfaces.",
        *LAMBDA_MANAGED_POLICY_FINDINGS,
    )
    acknowledge(
        function,
        "X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level scope.",
        "AwsSolutions-IAM5[Resource::*]",
    )
    return function

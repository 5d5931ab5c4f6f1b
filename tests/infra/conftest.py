"""The CDK app, built and synthesised ONCE per profile per test session: jsii makes every build
cost seconds.

All infra tests join one xdist group, so under `pytest -n 2 --dist loadgroup` a single worker
builds the app. Templates are read back from the synthesised cloud assembly as plain JSON, and
the assertions wrap them in `aws_cdk.assertions.Template`.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

# jsii prints a banner for Node 20 (end of life) at start-up; it says nothing about the app.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# jsii starts on this import, hence after the line above.
from synthesis import SynthesisedPlatform, synthesise

from infra.app import CONCERNS


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> SynthesisedPlatform:
    """The app for stage `dev` exactly as cdk.json configures it (the dev cost profile)."""
    return synthesise(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def prod_platform(tmp_path_factory: pytest.TempPathFactory) -> SynthesisedPlatform:
    """The app for stage `prod` (the prod cost profile), otherwise as cdk.json configures it."""
    return synthesise(tmp_path_factory.mktemp("cdk.out.prod"), stage="prod")


@pytest.fixture(scope="session")
def dev_stream_platform(tmp_path_factory: pytest.TempPathFactory) -> SynthesisedPlatform:
    """The dev profile with the market stream and reserved concurrency asked for, not bundled.

    One synthesis serves two kinds of test: neither switch nor bundling changes what is billed
    (the README's "dev + market stream" column), and reserved concurrency is visible here."""
    return synthesise(
        tmp_path_factory.mktemp("cdk.out.dev-stream"),
        market_stream="true",
        reserved_concurrency="true",
        bundle="false",
    )


@pytest.fixture(scope="session")
def extended_platform(tmp_path_factory: pytest.TempPathFactory) -> SynthesisedPlatform:
    """The real app plus what a later change might add, built the usual way: a queue with its
    DLQ, a Python function, and one careless queue (no DLQ, no TLS) that cdk-nag must reject."""
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_sqs as sqs
    from constructs import Construct

    from infra.components.functions import workload_function
    from infra.components.messaging import QueueWithDeadLetters
    from infra.constants import API_MEMORY_MB, API_TIMEOUT
    from infra.workloads import WORKLOADS

    def extend(stacks: Any) -> None:
        QueueWithDeadLetters(
            stacks.messaging,
            "Notifications",
            queue_name="n",
            dlq_name="n-dlq",
            fifo=False,
            max_receive_count=3,
        )
        network = stacks.network.network
        later = Construct(stacks.workers, "Later")
        workload_function(
            later,
            WORKLOADS["migrate"],
            bundle=False,
            description="a function added later",
            memory_mb=API_MEMORY_MB,
            timeout=API_TIMEOUT,
            vpc=network.vpc,
            subnets=network.compute_subnets,
            security_group=ec2.SecurityGroup(later, "Group", vpc=network.vpc),
            environment={},
            reserved_concurrency=None,
        )
        sqs.Queue(stacks.messaging, "QueueWithoutDlqOrTls")

    return synthesise(tmp_path_factory.mktemp("cdk.out.extended"), extend=extend, bundle="false")


def _template(platform: SynthesisedPlatform, concern: str) -> Any:
    from aws_cdk.assertions import Template

    return Template.from_json(platform.template_json(concern))


@pytest.fixture(scope="session")
def network_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "network")


@pytest.fixture(scope="session")
def data_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "data")


@pytest.fixture(scope="session")
def messaging_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "messaging")


@pytest.fixture(scope="session")
def api_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "api")


@pytest.fixture(scope="session")
def workers_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "workers")


@pytest.fixture(scope="session")
def monitoring_template(platform: SynthesisedPlatform) -> Any:
    return _template(platform, "monitoring")


@pytest.fixture(scope="session")
def prod_templates(prod_platform: SynthesisedPlatform) -> dict[str, Any]:
    """Concern -> Template of the prod profile."""
    return {concern: _template(prod_platform, concern) for concern in CONCERNS}

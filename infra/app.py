"""Entry point of the CDK app: `python -m infra.app` (what cdk.json's "app" runs).

Every synthesis runs the AWS Solutions cdk-nag pack as a validation plugin: a finding that is
neither fixed nor acknowledged (infra.nag.acknowledge, with its reason) fails `cdk synth` and
`cdk deploy`, not just a test. Run without the CDK CLI (`make synth`, tests), the app reads
cdk.json's context itself, so it synthesises exactly what the CLI would deploy.

Zip functions are bundled with their dependencies (a package index, or uv's cache, is needed
once); `-c bundle=false` skips that for a quick look and produces undeployable zips. Image
assets are only staged here (`cdk deploy` builds them), so synthesis needs no Docker engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import StageConfig, cdk_json_context
from infra.stacks.api import ApiStack
from infra.stacks.data import DataStack
from infra.stacks.messaging import MessagingStack
from infra.stacks.monitoring import MonitoringStack
from infra.stacks.network import NetworkStack
from infra.stacks.workers import WorkersStack

CONCERNS = ("network", "data", "messaging", "api", "workers", "monitoring")


@dataclass(frozen=True, slots=True)
class PlatformStacks:
    """The stacks of one stage, for callers (tests, the cost report) that inspect them."""

    config: StageConfig
    network: NetworkStack
    data: DataStack
    messaging: MessagingStack
    api: ApiStack
    workers: WorkersStack
    monitoring: MonitoringStack

    def artifact_ids(self) -> dict[str, str]:
        """Concern -> cloud-assembly artifact id (its template is `<id>.template.json`)."""
        return {concern: getattr(self, concern).artifact_id for concern in CONCERNS}


def build(app: App, config: StageConfig | None = None) -> PlatformStacks:
    """Add one stage's stacks to `app` (configuration from its context unless given), checked by cdk-nag."""
    config = config or StageConfig.from_context(app.node)
    # The CLI fills these from the credentials in use; without them the stacks stay
    # environment-agnostic, which is what keeps `synth` free of AWS lookups.
    env = Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )

    network = NetworkStack(app, "Network", stack_name=config.stack_name("network"), env=env, config=config)
    data = DataStack(
        app, "Data", stack_name=config.stack_name("data"), env=env, config=config, network=network.network
    )
    messaging = MessagingStack(
        app, "Messaging", stack_name=config.stack_name("messaging"), env=env, names=config.names
    )
    stack_inputs: dict[str, Any] = {
        "env": env,
        "config": config,
        "network": network.network,
        "data": data,
        "messaging": messaging,
    }
    api = ApiStack(app, "Api", stack_name=config.stack_name("api"), **stack_inputs)
    workers = WorkersStack(app, "Workers", stack_name=config.stack_name("workers"), **stack_inputs)
    if api.push is not None:  # forming candles go from the stream to @connections, as pushes do
        workers.market_stream.allow_websocket_push(api.websocket_stage)
    # Last: it alarms on whatever the stacks above contain.
    monitoring = MonitoringStack(
        app,
        "Monitoring",
        stack_name=config.stack_name("monitoring"),
        env=env,
        config=config,
        watched=app,
        key=data.key,
    )
    # CloudFormation rejects Tags on a proxy target group although CDK considers it taggable.
    untaggable = ["AWS::RDS::DBProxyTargetGroup"]
    Tags.of(app).add("project", "tekoa", exclude_resource_types=untaggable)
    Tags.of(app).add("stage", config.stage, exclude_resource_types=untaggable)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return PlatformStacks(
        config=config,
        network=network,
        data=data,
        messaging=messaging,
        api=api,
        workers=workers,
        monitoring=monitoring,
    )


def new_app(**options: Any) -> App:
    """An App with cdk.json's context, as the CDK CLI would pass it (unless the CLI already does)."""
    # Run by the CLI, the context (cdk.json's included) arrives in one of these variables.
    if {"CDK_CONTEXT_JSON", "CONTEXT_OVERFLOW_LOCATION_ENV"} & set(os.environ):
        return App(**options)
    context = {**cdk_json_context(), **options.pop("context", {})}
    return App(context=context, **options)


def main() -> None:
    """Synthesise every stack into the cloud assembly (cdk.out, or $CDK_OUTDIR)."""
    app = new_app()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()

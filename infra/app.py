"""Entry point of the CDK app: `python -m infra.app` (what cdk.json's "app" runs).

Synthesis is offline and needs no Docker engine: the API zip is the plain source unless
context `bundle=true` asks for its dependencies, and image assets are only staged here
(`cdk deploy` builds them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from aws_cdk import App, Environment, Tags

from infra.config import StageConfig
from infra.stacks.api import ApiStack
from infra.stacks.data import DataStack
from infra.stacks.messaging import MessagingStack
from infra.stacks.network import NetworkStack
from infra.stacks.workers import WorkersStack


@dataclass(frozen=True, slots=True)
class PlatformStacks:
    """The stacks of one stage, for callers (tests) that inspect them."""

    network: NetworkStack
    data: DataStack
    messaging: MessagingStack
    api: ApiStack
    workers: WorkersStack


def build(app: App, config: StageConfig | None = None) -> PlatformStacks:
    """Add one stage's stacks to `app` (configuration from its context unless given)."""
    config = config or StageConfig.from_context(app.node)
    # The CLI fills these from the credentials in use; without them the stacks stay
    # environment-agnostic, which is what keeps `synth` free of AWS lookups.
    env = Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )

    network = NetworkStack(
        app, "Network", stack_name=config.stack_name("network"), env=env, egress=config.egress
    )
    data = DataStack(
        app,
        "Data",
        stack_name=config.stack_name("data"),
        env=env,
        names=config.names,
        network=network.network,
        with_reader=config.db_reader,
        bundle=config.bundle,
    )
    messaging = MessagingStack(
        app, "Messaging", stack_name=config.stack_name("messaging"), env=env, names=config.names
    )
    api = ApiStack(
        app,
        "Api",
        stack_name=config.stack_name("api"),
        env=env,
        config=config,
        network=network.network,
        data=data,
        messaging=messaging,
    )
    workers = WorkersStack(
        app,
        "Workers",
        stack_name=config.stack_name("workers"),
        env=env,
        config=config,
        network=network.network,
        data=data,
        messaging=messaging,
    )
    # CloudFormation rejects Tags on a proxy target group although CDK considers it taggable.
    untaggable = ["AWS::RDS::DBProxyTargetGroup"]
    Tags.of(app).add("project", "tekoa", exclude_resource_types=untaggable)
    Tags.of(app).add("stage", config.stage, exclude_resource_types=untaggable)
    return PlatformStacks(network=network, data=data, messaging=messaging, api=api, workers=workers)


def main() -> None:
    """Synthesise every stack into the cloud assembly (cdk.out, or $CDK_OUTDIR)."""
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()

"""The deployment's knobs, read once from CDK context (`cdk -c key=value` or cdk.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from constructs import Node

from infra.constants import DEFAULT_STAGE, STAGE_PATTERN
from tekoa.names import ResourceNames


def _flag(node: Node, key: str) -> bool:
    # `-c key=true` arrives as a string, cdk.json values as JSON booleans: accept both.
    value = node.try_get_context(key)
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class StageConfig:
    """What differs between deployments of the same code.

    - `stage`: prefixes every resource name (context `stage`, default "dev").
    - `bundle`: install the API's dependencies into its zip (needs a package index, so it is
      off for `synth` and the tests; `deploy` must turn it on).
    - `egress`: add public subnets and one NAT gateway so compute can reach the internet
      (exchange WebSocket, ccxt REST, Anthropic, API Gateway @connections).
    - `db_reader`: add an Aurora reader that scales with the writer.
    """

    stage: str = DEFAULT_STAGE
    bundle: bool = False
    egress: bool = False
    db_reader: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(STAGE_PATTERN, self.stage):
            raise ValueError(f"stage {self.stage!r} must match {STAGE_PATTERN} (lowercase, <= 20 chars)")

    @classmethod
    def from_context(cls, node: Node) -> StageConfig:
        """Read the configuration from the app's context."""
        return cls(
            stage=str(node.try_get_context("stage") or DEFAULT_STAGE),
            bundle=_flag(node, "bundle"),
            egress=_flag(node, "egress"),
            db_reader=_flag(node, "db_reader"),
        )

    @property
    def names(self) -> ResourceNames:
        """Names of this stage's AWS resources (shared with the local cloud)."""
        return ResourceNames(self.stage)

    def stack_name(self, concern: str) -> str:
        """CloudFormation stack name, e.g. `tekoa-dev-data`."""
        return f"tekoa-{self.stage}-{concern}"

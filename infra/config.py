"""The deployment's knobs, read once from CDK context (`cdk -c key=value` or cdk.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from constructs import Node

from infra.constants import DEFAULT_STAGE, STAGE_PATTERN
from tekoa.domain.exchanges import CCXT_EXCHANGE_IDS, SIMULATED_EXCHANGE
from tekoa.domain.symbols import normalize_symbol
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
    - `market_exchange`, `market_symbols`: the ccxt exchange id the market stream follows and
      the markets it always streams (comma-separated; empty keeps the service's default set).
      A real exchange needs `egress`: without it the task has no way out.
    """

    stage: str = DEFAULT_STAGE
    bundle: bool = False
    egress: bool = False
    db_reader: bool = False
    market_exchange: str = SIMULATED_EXCHANGE
    market_symbols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(STAGE_PATTERN, self.stage):
            raise ValueError(f"stage {self.stage!r} must match {STAGE_PATTERN} (lowercase, <= 20 chars)")
        if self.market_exchange != SIMULATED_EXCHANGE and self.market_exchange not in CCXT_EXCHANGE_IDS:
            raise ValueError(f"market_exchange {self.market_exchange!r} is not a ccxt exchange id")
        if self.market_exchange != SIMULATED_EXCHANGE and not self.egress:
            raise ValueError(
                f"market_exchange {self.market_exchange!r} needs egress=true to reach the exchange"
            )
        for symbol in self.market_symbols:
            normalize_symbol(symbol)  # raises ValueError naming the expected shape

    @classmethod
    def from_context(cls, node: Node) -> StageConfig:
        """Read the configuration from the app's context."""
        return cls(
            stage=str(node.try_get_context("stage") or DEFAULT_STAGE),
            bundle=_flag(node, "bundle"),
            egress=_flag(node, "egress"),
            db_reader=_flag(node, "db_reader"),
            market_exchange=str(node.try_get_context("market_exchange") or SIMULATED_EXCHANGE),
            market_symbols=tuple(
                normalize_symbol(symbol)
                for symbol in str(node.try_get_context("market_symbols") or "").split(",")
                if symbol.strip()
            ),
        )

    @property
    def market_environment(self) -> dict[str, str]:
        """The market stream's settings for these knobs (`tekoa.settings` reads them)."""
        environment = {"TEKOA_MARKET_EXCHANGE": self.market_exchange}
        if self.market_symbols:
            environment["TEKOA_MARKET_SYMBOLS"] = ",".join(self.market_symbols)
        return environment

    @property
    def names(self) -> ResourceNames:
        """Names of this stage's AWS resources (shared with the local cloud)."""
        return ResourceNames(self.stage)

    def stack_name(self, concern: str) -> str:
        """CloudFormation stack name, e.g. `tekoa-dev-data`."""
        return f"tekoa-{self.stage}-{concern}"

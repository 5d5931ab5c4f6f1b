"""The deployment's knobs, read once from CDK context (`cdk -c key=value` or cdk.json)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from aws_cdk import Duration
from constructs import Node

from infra.constants import DEFAULT_STAGE, REPO_ROOT, STAGE_PATTERN
from tekoa.domain.exchanges import CCXT_EXCHANGE_IDS, SIMULATED_EXCHANGE
from tekoa.domain.symbols import normalize_symbol
from tekoa.names import ResourceNames

ProfileName = Literal["prod", "dev"]
Egress = Literal["none", "nat-gateway", "nat-instance"]


@dataclass(frozen=True, slots=True)
class CostProfile:
    """What a profile trades between resilience and idle cost (README: "Idle cost").

    - `protect`: deletion protection, termination protection, and retained data (retained only
      once created: a failed first deploy still rolls back cleanly, so the retry works).
    - `rds_proxy`: pool connections in front of Aurora; without it workloads connect to the
      writer directly and each login's connection limit bounds them.
    - `interface_endpoints`: reach AWS APIs through PrivateLink (per AZ-hour) instead of a NAT.
    - `nat_instance`: a t4g.nano NAT instance gives the compute its way to AWS APIs (and the
      internet) for a fraction of seven endpoints in two AZs.
    - `db_min_capacity` / `db_auto_pause`: Aurora's floor; 0 ACU lets it pause when nothing is
      connected (it then resumes on the next connection in ~15 s).
    - `market_stream`: whether the stream runs unless context says otherwise. A running stream
      writes every minute, which keeps Aurora from ever pausing.
    - `ingest_every`: how often the scheduled gap repair runs (and wakes the database).
    - `budget_usd`: the monthly AWS Budgets threshold the budget alarm watches.
    """

    name: ProfileName
    protect: bool
    rds_proxy: bool
    interface_endpoints: bool
    nat_instance: bool
    db_min_capacity: float
    db_max_capacity: float
    db_auto_pause: Duration | None
    market_stream: bool
    ingest_every: Duration
    budget_usd: int


PROFILES: dict[str, CostProfile] = {
    "prod": CostProfile(
        name="prod",
        protect=True,
        rds_proxy=True,
        interface_endpoints=True,
        nat_instance=False,
        db_min_capacity=0.5,
        db_max_capacity=8,
        db_auto_pause=None,
        market_stream=True,
        ingest_every=Duration.minutes(15),
        budget_usd=300,
    ),
    "dev": CostProfile(
        name="dev",
        protect=False,
        rds_proxy=False,
        interface_endpoints=False,
        nat_instance=True,
        db_min_capacity=0,
        db_max_capacity=2,
        db_auto_pause=Duration.minutes(5),  # Aurora's shortest
        market_stream=False,
        ingest_every=Duration.hours(1),
        budget_usd=60,
    ),
}


def _flag(node: Node, key: str) -> bool | None:
    # `-c key=true` arrives as a string, cdk.json values as JSON booleans: accept both.
    value = node.try_get_context(key)
    if value is None or isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context: what the CDK CLI hands the app, for runs without the CLI (tests, `make synth`)."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


@dataclass(frozen=True, slots=True)
class StageConfig:
    """What differs between deployments of the same code.

    - `stage`: prefixes every resource name (context `stage`, default "dev").
    - `profile`: the cost profile (`prod` or `dev`, see `PROFILES`); defaults to `prod` for the
      stage named prod and `dev` for every other stage.
    - `bundle`: install each zip function's dependencies into its asset (default on; off only
      for a quick synth without a package index, and such an asset cannot be deployed).
    - `egress`: add a NAT gateway so compute can reach the internet (exchange WebSocket, ccxt
      REST, Anthropic, API Gateway @connections). The dev profile's NAT instance gives egress
      anyway.
    - `db_reader`: add an Aurora reader that scales with the writer.
    - `reserved_concurrency`: reserve Lambda concurrency (the API's cap, one run at a time for
      ingest and migrations). Off by default: accounts with the default quota of 10 refuse any.
    - `market_stream`: run the market-stream task (default: the profile's choice).
    - `market_exchange`, `market_symbols`: the ccxt exchange id the market stream follows and
      the markets it always streams (comma-separated; empty keeps the service's default set).
      A real exchange needs a way out of the VPC.
    - `alarm_email`: subscribe this address to the alarm topic.
    - `budget_usd`: the monthly budget the budget alarm watches (default: the profile's; 0: none).
    """

    stage: str = DEFAULT_STAGE
    profile_name: ProfileName | None = None
    bundle: bool = True
    egress: bool = False
    db_reader: bool = False
    reserved_concurrency: bool = False
    market_stream: bool | None = None
    market_exchange: str = SIMULATED_EXCHANGE
    market_symbols: tuple[str, ...] = ()
    alarm_email: str | None = None
    budget_usd: int | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(STAGE_PATTERN, self.stage):
            raise ValueError(f"stage {self.stage!r} must match {STAGE_PATTERN} (lowercase, <= 20 chars)")
        if self.profile_name is not None and self.profile_name not in PROFILES:
            raise ValueError(f"profile {self.profile_name!r} must be one of {sorted(PROFILES)}")
        if self.market_exchange != SIMULATED_EXCHANGE and self.market_exchange not in CCXT_EXCHANGE_IDS:
            raise ValueError(f"market_exchange {self.market_exchange!r} is not a ccxt exchange id")
        if self.market_exchange != SIMULATED_EXCHANGE and self.egress_kind == "none":
            raise ValueError(
                f"market_exchange {self.market_exchange!r} needs egress=true to reach the exchange"
            )
        for symbol in self.market_symbols:
            normalize_symbol(symbol)  # raises ValueError naming the expected shape
        if self.budget_usd is not None and self.budget_usd < 0:
            raise ValueError("budget_usd must be >= 0")
        if self.alarm_email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", self.alarm_email):
            raise ValueError(f"alarm_email {self.alarm_email!r} is not an email address")

    @classmethod
    def from_context(cls, node: Node) -> StageConfig:
        """Read the configuration from the app's context."""
        stage = str(node.try_get_context("stage") or DEFAULT_STAGE)
        profile = node.try_get_context("profile")
        budget = node.try_get_context("budget_usd")
        return cls(
            stage=stage,
            profile_name=str(profile) if profile else None,  # type: ignore[arg-type]
            bundle=_flag(node, "bundle") is not False,
            egress=bool(_flag(node, "egress")),
            db_reader=bool(_flag(node, "db_reader")),
            reserved_concurrency=bool(_flag(node, "reserved_concurrency")),
            market_stream=_flag(node, "market_stream"),
            market_exchange=str(node.try_get_context("market_exchange") or SIMULATED_EXCHANGE),
            market_symbols=tuple(
                normalize_symbol(symbol)
                for symbol in str(node.try_get_context("market_symbols") or "").split(",")
                if symbol.strip()
            ),
            alarm_email=str(node.try_get_context("alarm_email") or "") or None,
            budget_usd=None if budget in (None, "") else int(budget),
        )

    @property
    def profile(self) -> CostProfile:
        """The cost profile in force."""
        return PROFILES[self.profile_name or ("prod" if self.stage == "prod" else "dev")]

    @property
    def egress_kind(self) -> Egress:
        """How compute reaches the internet, if at all."""
        if self.profile.nat_instance:
            return "nat-instance"
        return "nat-gateway" if self.egress else "none"

    @property
    def runs_market_stream(self) -> bool:
        """Whether the market-stream service runs a task."""
        return self.profile.market_stream if self.market_stream is None else self.market_stream

    @property
    def reconcile_every(self) -> Duration:
        """Every minute while orders can trade (the market stream runs, which keeps the database
        awake anyway); otherwise as often as the gap repair, so an idle stage's database pauses."""
        return Duration.minutes(1) if self.runs_market_stream else self.profile.ingest_every

    @property
    def monthly_budget_usd(self) -> int:
        """The budget alarm's threshold (0: no budget)."""
        return self.profile.budget_usd if self.budget_usd is None else self.budget_usd

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

"""Idle cost of a deployment, read from its synthesised CloudFormation templates.

`python -m infra.cost` synthesises the prod and dev profiles (and dev with the market stream
on) and prints the README's idle-cost table; `--write-readme` puts it into README.md between
its markers, and a test fails when the two drift apart.

"Idle" means nobody uses the platform and no bot runs: what is billed by the hour or the month
whatever happens (databases, proxies, endpoints, NAT, tasks, keys, secrets, alarms), plus the
scheduled work the templates start on their own. Per-request and per-GB charges (API calls,
Lambda invocations by users, SQS, logs, traces, storage, data transfer) are usage, not idle,
and are left out; the table says so.

Prices: AWS list prices, us-east-1, on-demand, no free tier, as published on the AWS pricing
pages (aws.amazon.com/<service>/pricing) and checked on 2025-06-01. Change them here only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

HOURS_PER_MONTH = Decimal(730)
DAYS_PER_MONTH = Decimal("30.42")

# --- List prices, us-east-1 (see the module docstring for source and date) -----------------------
PRICE: dict[str, Decimal] = {
    # Aurora PostgreSQL Serverless v2, Aurora Standard: per ACU-hour.
    "aurora_acu_hour": Decimal("0.12"),
    # RDS Proxy in front of Aurora Serverless v2: per ACU-hour of the database, 8 ACU minimum.
    "rds_proxy_acu_hour": Decimal("0.015"),
    "rds_proxy_min_acu": Decimal(8),
    # VPC interface endpoint (PrivateLink): per endpoint per AZ-hour.
    "interface_endpoint_az_hour": Decimal("0.01"),
    "nat_gateway_hour": Decimal("0.045"),
    # Every public IPv4 address, attached or not (since 2024-02-01).
    "public_ipv4_hour": Decimal("0.005"),
    "ebs_gp3_gb_month": Decimal("0.08"),
    # Fargate Linux/ARM (Graviton): per vCPU-hour and per GB-hour.
    "fargate_arm_vcpu_hour": Decimal("0.03238"),
    "fargate_arm_gb_hour": Decimal("0.00356"),
    # KMS customer-managed key, per key-month (rotations add $1/month each for the first two,
    # from the first anniversary on).
    "kms_key_month": Decimal("1.00"),
    "secret_month": Decimal("0.40"),
    # CloudWatch: standard-resolution alarm, dashboard, custom metric (first 10,000 tier).
    "alarm_month": Decimal("0.10"),
    "dashboard_month": Decimal("3.00"),
    "custom_metric_month": Decimal("0.30"),
    # AWS Budgets beyond an account's first two (those are free): per budget-day.
    "budget_day": Decimal("0.02"),
    # Lambda on arm64: per GB-second, and per million requests.
    "lambda_arm_gb_second": Decimal("0.0000133334"),
    "lambda_million_requests": Decimal("0.20"),
}

# EC2 on-demand Linux, per instance-hour.
EC2_HOUR: dict[str, Decimal] = {"t4g.nano": Decimal("0.0042"), "t4g.micro": Decimal("0.0084")}

# --- Assumptions the templates cannot tell --------------------------------------------------------
# The root volume of an instance whose template names none (Amazon Linux 2023's AMI default).
DEFAULT_ROOT_VOLUME_GB = Decimal(8)
# How long a scheduled run takes when there is nothing to catch up on.
IDLE_RUN_SECONDS = Decimal(10)
# The smallest capacity of an awake Serverless v2 instance whose minimum is 0 ACU.
AWAKE_MIN_ACU = Decimal("0.5")

CATEGORIES = (
    "Aurora Serverless v2 (compute)",
    "RDS Proxy",
    "VPC interface endpoints",
    "NAT (gateway or instance, its IPv4 and disk)",
    "Fargate (market stream)",
    "KMS keys",
    "Secrets Manager secrets",
    "CloudWatch alarms, dashboard, custom metrics",
    "AWS Budgets",
    "Scheduled Lambda runs",
)


@dataclass(frozen=True, slots=True)
class LineItem:
    """One billable resource (or a group of them) and its monthly cost."""

    category: str
    what: str
    usd: Decimal


def _resources(templates: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, Mapping[str, Any]]]:
    return [
        (logical_id, resource["Type"], resource)
        for template in templates.values()
        for logical_id, resource in template.get("Resources", {}).items()
    ]


def _of_type(
    templates: Mapping[str, Mapping[str, Any]], resource_type: str
) -> list[tuple[str, Mapping[str, Any]]]:
    return [(lid, r) for lid, t, r in _resources(templates) if t == resource_type]


def _rate_seconds(expression: str) -> Decimal:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if match is None:
        raise ValueError(f"cannot price schedule {expression!r}")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match[2].rstrip("s")]
    return Decimal(match[1]) * unit


def _targets(rule: Mapping[str, Any]) -> list[str]:
    return [json.dumps(target["Arn"]) for target in rule["Properties"].get("Targets", [])]


def _uses_database(environment: Mapping[str, Any]) -> bool:
    return "TEKOA_DATABASE_SECRET_ARN" in environment


def _scheduled_functions(
    templates: Mapping[str, Mapping[str, Any]],
) -> list[tuple[Mapping[str, Any], Decimal]]:
    """(function resource, seconds between runs) for every function a schedule rule invokes."""
    functions = dict(_of_type(templates, "AWS::Lambda::Function"))
    found = []
    for _, rule in _of_type(templates, "AWS::Events::Rule"):
        expression = rule["Properties"].get("ScheduleExpression")
        if not expression:
            continue
        period = _rate_seconds(expression)
        for target in _targets(rule):
            for function_id, function in functions.items():
                if f'"{function_id}"' in target:
                    found.append((function, period))
    return found


def _database_awake_share(templates: Mapping[str, Mapping[str, Any]], pause_after_s: Decimal) -> Decimal:
    """Share of the month an auto-pausing database is awake while the platform idles.

    A running task that uses the database keeps it awake for good (it writes every minute); so
    does a proxy, which holds connections open. Otherwise each scheduled run that connects keeps
    it awake for its own length plus the pause delay.
    """
    for _, service in _of_type(templates, "AWS::ECS::Service"):
        if int(service["Properties"].get("DesiredCount", 0)) >= 1:
            return Decimal(1)
    if _of_type(templates, "AWS::RDS::DBProxy"):
        return Decimal(1)
    shares = [
        (IDLE_RUN_SECONDS + pause_after_s) / period
        for function, period in _scheduled_functions(templates)
        if _uses_database(function["Properties"].get("Environment", {}).get("Variables", {}))
    ]
    return min(Decimal(1), sum(shares, Decimal(0)))


def idle_cost(templates: Mapping[str, Mapping[str, Any]]) -> list[LineItem]:
    """The monthly idle cost of the resources in `templates` (concern -> template JSON)."""
    items: list[LineItem] = []
    hour = HOURS_PER_MONTH

    for _, cluster in _of_type(templates, "AWS::RDS::DBCluster"):
        scaling = cluster["Properties"]["ServerlessV2ScalingConfiguration"]
        minimum = Decimal(str(scaling["MinCapacity"]))
        instances = [
            i
            for _, i in _of_type(templates, "AWS::RDS::DBInstance")
            if i["Properties"]["DBInstanceClass"] == "db.serverless"
        ]
        if minimum > 0:
            share, acu, note = Decimal(1), minimum, f"{minimum} ACU always on"
        else:
            share = _database_awake_share(templates, Decimal(scaling.get("SecondsUntilAutoPause", 300)))
            acu, note = (
                AWAKE_MIN_ACU,
                f"0 ACU, auto-pause; awake {share:.0%} of the month at {AWAKE_MIN_ACU} ACU",
            )
        items.append(
            LineItem(
                CATEGORIES[0],
                f"{len(instances)} instance(s), {note}",
                len(instances) * acu * share * hour * PRICE["aurora_acu_hour"],
            )
        )
    for _ in _of_type(templates, "AWS::RDS::DBProxy"):
        items.append(
            LineItem(
                CATEGORIES[1],
                f"{PRICE['rds_proxy_min_acu']} ACU minimum",
                PRICE["rds_proxy_min_acu"] * hour * PRICE["rds_proxy_acu_hour"],
            )
        )

    endpoint_azs = sum(
        len(endpoint["Properties"].get("SubnetIds", []))
        for _, endpoint in _of_type(templates, "AWS::EC2::VPCEndpoint")
        if endpoint["Properties"].get("VpcEndpointType") == "Interface"
    )
    if endpoint_azs:
        items.append(
            LineItem(
                CATEGORIES[2],
                f"{endpoint_azs} endpoint-AZs",
                endpoint_azs * hour * PRICE["interface_endpoint_az_hour"],
            )
        )

    gateways = _of_type(templates, "AWS::EC2::NatGateway")
    if gateways:
        items.append(
            LineItem(
                CATEGORIES[3],
                f"{len(gateways)} NAT gateway(s)",
                len(gateways) * hour * PRICE["nat_gateway_hour"],
            )
        )
    subnets = dict(_of_type(templates, "AWS::EC2::Subnet"))
    public_ips = len(_of_type(templates, "AWS::EC2::EIP"))
    for _, instance in _of_type(templates, "AWS::EC2::Instance"):
        props = instance["Properties"]
        instance_type = props["InstanceType"]
        items.append(LineItem(CATEGORIES[3], f"{instance_type} instance", hour * EC2_HOUR[instance_type]))
        volumes = [
            Decimal(m["Ebs"]["VolumeSize"]) for m in props.get("BlockDeviceMappings", []) if "Ebs" in m
        ]
        disk = sum(volumes, Decimal(0)) or DEFAULT_ROOT_VOLUME_GB
        items.append(LineItem(CATEGORIES[3], f"{disk} GB gp3 root volume", disk * PRICE["ebs_gp3_gb_month"]))
        subnet = subnets.get(props.get("SubnetId", {}).get("Ref", ""), {})
        if subnet.get("Properties", {}).get("MapPublicIpOnLaunch"):
            public_ips += 1
    if public_ips:
        items.append(
            LineItem(
                CATEGORIES[3],
                f"{public_ips} public IPv4 address(es)",
                public_ips * hour * PRICE["public_ipv4_hour"],
            )
        )

    task_definitions = dict(_of_type(templates, "AWS::ECS::TaskDefinition"))
    for _, service in _of_type(templates, "AWS::ECS::Service"):
        count = int(service["Properties"].get("DesiredCount", 0))
        if count == 0:
            continue
        task = task_definitions[service["Properties"]["TaskDefinition"]["Ref"]]["Properties"]
        vcpu, memory_gb = Decimal(task["Cpu"]) / 1024, Decimal(task["Memory"]) / 1024
        if task.get("RuntimePlatform", {}).get("CpuArchitecture") != "ARM64":
            raise ValueError("only Graviton (ARM64) Fargate prices are in the table")
        hourly = vcpu * PRICE["fargate_arm_vcpu_hour"] + memory_gb * PRICE["fargate_arm_gb_hour"]
        items.append(
            LineItem(CATEGORIES[4], f"{count} x {vcpu} vCPU / {memory_gb} GB", count * hour * hourly)
        )

    keys = _of_type(templates, "AWS::KMS::Key")
    if keys:
        items.append(LineItem(CATEGORIES[5], f"{len(keys)} keys", len(keys) * PRICE["kms_key_month"]))
    secrets = _of_type(templates, "AWS::SecretsManager::Secret")
    if secrets:
        items.append(LineItem(CATEGORIES[6], f"{len(secrets)} secrets", len(secrets) * PRICE["secret_month"]))

    alarms = _of_type(templates, "AWS::CloudWatch::Alarm")
    custom = {
        (alarm["Properties"]["Namespace"], alarm["Properties"]["MetricName"])
        for _, alarm in alarms
        if not str(alarm["Properties"].get("Namespace", "AWS/")).startswith("AWS/")
    }
    dashboards = _of_type(templates, "AWS::CloudWatch::Dashboard")
    monitoring = (
        len(alarms) * PRICE["alarm_month"]
        + len(dashboards) * PRICE["dashboard_month"]
        + len(custom) * PRICE["custom_metric_month"]
    )
    if monitoring:
        what = f"{len(alarms)} alarms, {len(dashboards)} dashboard(s), {len(custom)} custom metric(s)"
        items.append(LineItem(CATEGORIES[7], what, monitoring))
    budgets = _of_type(templates, "AWS::Budgets::Budget")
    if budgets:
        items.append(
            LineItem(
                CATEGORIES[8],
                f"{len(budgets)} budget(s)",
                len(budgets) * DAYS_PER_MONTH * PRICE["budget_day"],
            )
        )

    for function, period in _scheduled_functions(templates):
        runs = HOURS_PER_MONTH * 3600 / period
        memory_gb = Decimal(function["Properties"].get("MemorySize", 128)) / 1024
        compute = runs * memory_gb * IDLE_RUN_SECONDS * PRICE["lambda_arm_gb_second"]
        requests = runs / 1_000_000 * PRICE["lambda_million_requests"]
        items.append(
            LineItem(
                CATEGORIES[9], f"{runs:.0f} runs x {IDLE_RUN_SECONDS} s x {memory_gb} GB", compute + requests
            )
        )
    return items


def monthly_total(items: Iterable[LineItem]) -> Decimal:
    """The month's cost, rounded to cents."""
    return _cents(sum((item.usd for item in items), Decimal(0)))


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def markdown_table(profiles: Mapping[str, list[LineItem]]) -> str:
    """The README table: one row per category, one column per profile, the total last."""
    names = list(profiles)
    lines = [
        "| resource | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for category in CATEGORIES:
        cells = []
        for name in names:
            in_category = [item for item in profiles[name] if item.category == category]
            cells.append(f"${_cents(sum((i.usd for i in in_category), Decimal(0)))}" if in_category else "—")
        if any(cell != "—" for cell in cells):
            lines.append(f"| {category} | " + " | ".join(cells) + " |")
    lines.append(
        "| **total per month** | " + " | ".join(f"**${monthly_total(profiles[n])}**" for n in names) + " |"
    )
    return "\n".join(lines)


# --- Synthesis and the README ---------------------------------------------------------------------

# The variants the README shows: context on top of cdk.json's. Bundling does not change what is
# billed, so it is skipped to keep the report fast and offline.
VARIANTS: dict[str, dict[str, str]] = {
    "prod": {"stage": "prod", "bundle": "false"},
    "dev": {"stage": "dev", "bundle": "false"},
    "dev + market stream": {"stage": "dev", "market_stream": "true", "bundle": "false"},
}
README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- idle-cost:begin (python -m infra.cost --write-readme) -->", "<!-- idle-cost:end -->"


def synthesised_templates(context: Mapping[str, str], outdir: Path) -> dict[str, dict[str, Any]]:
    """Synthesise the app with `context` into `outdir`; return concern -> template."""
    from infra.app import build, new_app

    app = new_app(outdir=str(outdir), context=dict(context))
    stacks = build(app)
    app.synth()
    return {
        concern: json.loads((outdir / f"{artifact}.template.json").read_text())
        for concern, artifact in stacks.artifact_ids().items()
    }


def report(profiles: Mapping[str, list[LineItem]]) -> str:
    """The README block: the table and what it leaves out."""
    return "\n".join(
        [
            markdown_table(profiles),
            "",
            "List prices, us-east-1, on-demand, no free tier (source and date: `infra/cost.py`). Not in the",
            "table because they follow use, not time: requests (API Gateway, Lambda, SQS, EventBridge,",
            "KMS, Secrets Manager calls), log ingestion and storage (including VPC flow logs), X-Ray",
            "traces, Aurora storage and I/O, S3 and ECR storage, data transfer and NAT processing.",
        ]
    )


def write_readme(block: str, readme: Path = README) -> None:
    """Replace the README's idle-cost block with `block`."""
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n" + block + "\n" + text[end:])


def readme_block(readme: Path = README) -> str:
    """What the README's idle-cost block holds now."""
    text = readme.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n")


def main(argv: list[str] | None = None) -> int:
    """Print (or write into README.md) the idle-cost table of every variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-readme", action="store_true", help="update README.md's idle-cost block")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        profiles = {
            name: idle_cost(synthesised_templates(context, Path(scratch) / str(index)))
            for index, (name, context) in enumerate(VARIANTS.items())
        }
    block = report(profiles)
    if args.write_readme:
        write_readme(block)
    sys.stdout.write(block + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Every tunable of the CDK app in one place, so a reviewer sees the platform's shape at a glance.

Resource *names* are not here: they come from `tekoa.names.ResourceNames`, which the local
cloud shares, so local and AWS resources cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STAGE = "dev"
# Mirrors tekoa.settings.Settings.stage, so a stage the processes would reject fails at synth.
STAGE_PATTERN = r"^[a-z][a-z0-9-]{0,19}$"

# --- CPU architecture: one choice for every artefact. Graviton is ~20% cheaper per GB-s, and the
# zip bundle's wheels, the Lambda, the image assets and the Fargate task must all agree.
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
IMAGE_PLATFORM = ecr_assets.Platform.LINUX_ARM64
FARGATE_CPU_ARCHITECTURE = ecs.CpuArchitecture.ARM64
# The python3.12 runtime is Amazon Linux 2023 (glibc 2.34): wheels up to manylinux_2_34 run
# there. manylinux2014 alone would miss packages that now publish only manylinux_2_28 wheels.
LAMBDA_WHEEL_PLATFORM = "aarch64-manylinux_2_34"  # uv's spelling of manylinux_2_34_aarch64
PYTHON_VERSION = "3.12"
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_12

# --- Network
VPC_CIDR = "10.40.0.0/16"
MAX_AZS = 2  # Aurora's subnet group needs two AZs even when compute uses one
SUBNET_CIDR_MASK = 22
# The dev profile's NAT: the smallest Graviton instance forwards a dev stage's API calls easily.
NAT_INSTANCE_TYPE = "t4g.nano"

# --- Database
DB_ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_16_6
DB_NAME = "tekoa"
DB_USERNAME = "tekoa_admin"
DB_PORT = 5432
# Capacity (min, max, auto-pause) is per cost profile: see infra/config.py.
DB_BACKUP_RETENTION = Duration.days(7)
DB_DEV_BACKUP_RETENTION = Duration.days(1)
# How long a client waits for a connection (RDS Proxy borrow, or Aurora resuming from a pause).
DB_CONNECT_TIMEOUT_S = 30

# --- Storage
# Charts are re-rendered from candles when asked for again; context `chart_retention_days`.
DEFAULT_CHART_RETENTION_DAYS = 30
NONCURRENT_VERSION_EXPIRY = Duration.days(7)
LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# --- Execution
EXECUTOR_MEMORY_MB = 1024
# A batch of ten orders; a live one may wait on its exchange (ccxt's timeout is 10 s).
EXECUTOR_TIMEOUT_S = 30
EXECUTOR_BATCH_SIZE = 10
RECONCILER_MEMORY_MB = 1024
RECONCILER_TIMEOUT = Duration.minutes(2)
# One tick for thousands of bots is a few seconds; fanned-out shards each take a part.
EVALUATOR_MEMORY_MB = 2048
EVALUATOR_TIMEOUT_S = 120

# --- Messaging
# Poison orders stop after a handful of tries instead of blocking their message group forever.
ORDER_MAX_RECEIVE_COUNT = 5
# AWS asks for at least six times the consumer's timeout, or in-flight batches reappear.
ORDER_VISIBILITY_TIMEOUT = Duration.seconds(6 * EXECUTOR_TIMEOUT_S)
CHART_MAX_RECEIVE_COUNT = 3
# Must exceed the consumer Lambda's timeout (AWS recommends 6x) or in-flight messages reappear.
QUEUE_VISIBILITY_TIMEOUT = Duration.seconds(180)
DLQ_RETENTION = Duration.days(14)

# --- Lambda concurrency. Reservations are off unless `-c reserved_concurrency=true`: an account
# with the default quota of 10 refuses any. When on, the API is capped (it cannot starve the
# account's other functions) and ingest and migrations run one at a time.
API_RESERVED_CONCURRENCY = 100
ONE_AT_A_TIME = 1

# --- API
API_MEMORY_MB = 1024  # more memory = more CPU = faster cold start of FastAPI + pydantic
API_TIMEOUT = Duration.seconds(29)  # API Gateway integrations stop waiting at 30 s
API_THROTTLE_RATE = 100  # requests per second, per stage
API_THROTTLE_BURST = 200
WS_STAGE_NAME = "live"
WS_ROUTES_MEMORY_MB = 512
WS_ROUTES_TIMEOUT = Duration.seconds(29)  # API Gateway integrations stop waiting at 29 s
PUSH_MEMORY_MB = 512
PUSH_TIMEOUT = Duration.seconds(60)
NOTIFY_MEMORY_MB = 256
NOTIFY_TIMEOUT = Duration.seconds(60)  # a channel may take notify_timeout_s; a batch holds ten
NOTIFY_MAX_RECEIVE_COUNT = 3  # a retry that crashes the function (not a refused delivery) 3 times

# --- Migrations (a trigger runs them on deploy)
MIGRATE_MEMORY_MB = 512
MIGRATE_TIMEOUT = Duration.minutes(5)  # also how long the deploy waits for the answer

# --- Maintenance (scheduled housekeeping; the schedule is in tekoa.schedules)
MAINTENANCE_MEMORY_MB = 256
MAINTENANCE_TIMEOUT = Duration.minutes(5)

# --- Ingest
INGEST_MEMORY_MB = 2048
INGEST_TIMEOUT = Duration.minutes(10)

# --- Charts: a render takes ~0.1 s warm; a batch of a few keeps a cold start's cost shared.
# 2 GB buys more than one vCPU (Lambda sizes CPU by memory). QUEUE_VISIBILITY_TIMEOUT >= 6x timeout.
CHARTS_MEMORY_MB = 2048
CHARTS_TIMEOUT = Duration.seconds(30)
CHARTS_BATCH_SIZE = 5

# --- Market stream (Fargate)
MARKET_STREAM_CPU = 512
MARKET_STREAM_MEMORY_MB = 1024
MARKET_STREAM_HEALTH_URL = "http://127.0.0.1:8080/health"
# The X-Ray daemon sidecar: the task's segments go to it over UDP on the task's loopback.
XRAY_DAEMON_DOCKERFILE = "fargate/xray-daemon/Dockerfile"
XRAY_DAEMON_ADDRESS = "127.0.0.1:2000"
XRAY_DAEMON_MEMORY_MB = 64
# Long enough to flush the open candle and close the exchange socket after SIGTERM.
MARKET_STREAM_STOP_TIMEOUT = Duration.seconds(45)

# Files that never belong in an asset: they are large (.venv), secret-prone (.tekoa) or irrelevant.
ASSET_EXCLUDES = (
    ".venv",
    ".cache",
    ".git",
    "cdk.out",
    ".tekoa",
    "node_modules",
    "tests",
    "bench",
    "infra",
    "**/__pycache__",
    "**/*.pyc",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "*.egg-info",
    "build",
    "dist",
)

# --- Alarms: evaluated over ALARM_PERIOD; each fires after ALARM_EVALUATION_PERIODS breaching
# periods (one for counts that should be zero).
ALARM_PERIOD = Duration.minutes(5)
ALARM_EVALUATION_PERIODS = 3
API_5XX_ALARM = 5  # server errors per period
API_LATENCY_P95_ALARM_MS = 3_000
DB_CPU_ALARM_PERCENT = 80
DB_ACU_ALARM_PERCENT = 90  # of the profile's max capacity
# Connections alarm at this share of the sum of the workloads' connection limits.
DB_CONNECTIONS_ALARM_SHARE = 0.8
# The stream publishes candle age every minute: beyond this the newest candle is overdue.
CANDLE_AGE_ALARM_S = 300

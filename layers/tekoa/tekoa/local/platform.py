"""`tekoa up`: the whole platform on one machine, each part its own process.

The parts, in the order they can start (parts with nothing between them start together):

    postgres       embedded PostgreSQL (unless DATABASE_URL is given)
    aws            moto's server: the AWS endpoint (unless AWS_ENDPOINT_URL is given)
    setup          once: database created, migrations applied, AWS resources provisioned
    api            the REST API under uvicorn, one worker per CPU core
    market-stream  the market-stream service, the same entry point as the Fargate task
    executor       the executor's Lambda handler on the order queue, fed as Lambda's SQS event
                   source mapping feeds it (`tekoa.local.sqs_poller`)
    charts         the chart function's Lambda handler on the chart queue, fed as Lambda's SQS
                   event source mapping feeds it (`tekoa.local.sqs_poller`)
    scheduler      fires scheduled handlers as EventBridge would (`tekoa.schedules`)
    ws-gateway     API Gateway's WebSocket API: the route handler, and @connections for pushes
    bus            the event bus's rules invoking their functions (`tekoa.bus_rules`)

A new part is one more `Part(...)` in `PARTS`: its entry point, ports, readiness probe and the
parts it needs. `tekoa.local.supervisor` starts, watches, restarts and stops them.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

from tekoa.bus_rules import BUS_RULES
from tekoa.local.aws import LOCAL_CREDENTIALS
from tekoa.local.postgres import APP_DATABASE, EmbeddedPostgres, database_url
from tekoa.local.process import stop_on_signals
from tekoa.local.supervisor import Part, Probe, StartupError, Supervisor
from tekoa.schedules import SCHEDULES
from tekoa.settings import Settings

__all__ = ["PARTS", "StartupError", "local_settings", "up"]


def http_answers(url: str) -> Probe:
    """Ready once `url` answers HTTP at all (any status: the server runs)."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own loopback URL
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    return probe


def markets_fresh(url: str) -> Probe:
    """Ready once the market stream's /health says every market it follows is fresh."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                markets = json.load(response).get("markets", {})
        except (OSError, ValueError):
            return False
        return bool(markets) and all(market.get("fresh") for market in markets.values())

    return probe


def database_answers(conninfo: str) -> Probe:
    """Ready once the server accepts a connection."""

    def probe() -> bool:
        try:
            with psycopg.connect(conninfo, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    return probe


def _embedded(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.data_dir / "pgdata")


def _aws_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.aws_port}"


def _api_url(settings: Settings) -> str:
    return f"http://{settings.api_host}:{settings.api_port}"


def _ws_url(settings: Settings) -> str:
    return f"http://{settings.ws_host}:{settings.ws_port}"


def _market_health_url(settings: Settings) -> str:
    return f"http://{settings.market_health_host}:{settings.market_health_port}/health"


PARTS: tuple[Part, ...] = (
    Part(
        "postgres",
        "tekoa.local.postgres:serve",
        enabled=lambda s: not s.database_url or s.database_url == local_database_url(s),
        ready=lambda s: database_answers(_embedded(s).admin_conninfo),
        where=lambda s: f"embedded PostgreSQL 16, data in {_embedded(s).data_dir}",
        stop_signal=signal.SIGINT,  # fast shutdown: rolls back and disconnects at once
        stop_timeout_s=30,
    ),
    Part(
        "aws",
        "tekoa.local.aws:serve",
        enabled=lambda s: not s.aws_endpoint_url or s.aws_endpoint_url == _aws_url(s),
        ports=lambda s: {s.aws_port: "TEKOA_AWS_PORT"},
        ready=lambda s: http_answers(_aws_url(s)),
        where=_aws_url,
    ),
    Part(
        "setup",
        "tekoa.local.setup:main",
        after=("postgres", "aws"),
        once=True,
    ),
    Part(
        "api",
        "functions.api.local:serve",
        after=("setup",),
        ports=lambda s: {s.api_port: "TEKOA_API_PORT"},
        ready=lambda s: http_answers(f"{_api_url(s)}/health"),
        where=lambda s: f"{_api_url(s)}  ({s.api_worker_count} workers; docs at /docs)",
    ),
    Part(
        "market-stream",
        "tekoa.market.stream.service:main",
        after=("setup",),
        ports=lambda s: {s.market_health_port: "TEKOA_MARKET_HEALTH_PORT"},
        # Ready when the markets' history is loaded: the API then serves candles at once.
        ready=lambda s: markets_fresh(_market_health_url(s)),
        where=lambda s: (
            f"{s.market_exchange} {', '.join(s.market_symbol_list)}; health {_market_health_url(s)}"
        ),
        stop_timeout_s=35,  # it flushes closed candles on SIGTERM (budget 25 s)
    ),
    Part(
        "executor",
        "functions.executor.local:serve",
        after=("setup",),
        where=lambda s: f"batches of 10 from {s.names.order_queue}",
        stop_timeout_s=35,  # a batch in hand finishes (the handler has no deadline locally)
    ),
    Part(
        "evaluator",
        "functions.evaluator.local:serve",
        after=("setup",),
        where=lambda s: f"candle.closed from {s.names.event_bus}",
    ),
    Part(
        "charts",
        "functions.charts.local:serve",
        after=("setup",),
        where=lambda s: f"renders from {s.names.chart_queue} into {s.charts_bucket_name}",
        stop_timeout_s=35,  # a batch in hand finishes
    ),
    Part(
        "scheduler",
        "tekoa.local.scheduler:main",
        after=("setup",),
        where=lambda _: ", ".join(f"{s.name} {s.rate}" for s in SCHEDULES),
    ),
    Part(
        "ws-gateway",
        "tekoa.local.websocket_gateway:main",
        after=("setup",),
        ports=lambda s: {s.ws_port: "TEKOA_WS_PORT"},
        ready=lambda s: http_answers(f"{_ws_url(s)}/health"),
        where=lambda s: f"{_ws_url(s).replace('http://', 'ws://')}  (@connections at {_ws_url(s)})",
    ),
    Part(
        "bus",
        "tekoa.local.bus:main",
        after=("setup",),
        where=lambda _: ", ".join(
            f"{rule.name} ({len(rule.detail_types)} event types)" for rule in BUS_RULES
        ),
    ),
)


def local_database_url(settings: Settings) -> str:
    """The embedded server's application database."""
    return database_url(_embedded(settings).admin_conninfo, APP_DATABASE)


def local_settings(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """The settings every part runs with, and the environment that gives it to them: the
    embedded database and local AWS endpoint filled in unless configured."""
    data_dir = settings.data_dir.resolve()
    settings = settings.model_copy(update={"data_dir": data_dir})
    env = {"TEKOA_DATA_DIR": str(data_dir)}
    updates: dict[str, object] = {}
    if not settings.database_url:
        updates["database_url"] = env["DATABASE_URL"] = local_database_url(settings)
    if not settings.aws_endpoint_url:
        updates["aws_endpoint_url"] = env["AWS_ENDPOINT_URL"] = _aws_url(settings)
        # moto's KMS keys vanish with the process; broker secrets stored in one run must open
        # in the next, so the local platform wraps data keys with its key file.
        updates["key_provider"] = env["TEKOA_KEY_PROVIDER"] = "file"
        # Webhooks to this machine (a receiver under development) are what a local platform is for.
        if "TEKOA_NOTIFY_ALLOW_INSECURE_URLS" not in os.environ:
            env["TEKOA_NOTIFY_ALLOW_INSECURE_URLS"] = "true"
            updates["notify_allow_insecure_urls"] = True
        for key, value in LOCAL_CREDENTIALS.items():
            env[key] = os.environ.get(key, value)
    return settings.model_copy(update=updates), env


def up(settings: Settings) -> None:
    """Start every part, print what runs where, and supervise them until SIGINT or SIGTERM.

    StartupError names the part (or the taken port) when start-up fails.
    """
    settings, env = local_settings(settings)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(PARTS, settings, env)
    stopping = threading.Event()
    previous = stop_on_signals(stopping.set)
    try:
        supervisor.start(stopping)
        if not stopping.is_set():
            print("Tekoa is running:\n" + supervisor.table() + "\nPress Ctrl-C to stop.", flush=True)
            supervisor.supervise(stopping)
        print("Stopping…", flush=True)
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

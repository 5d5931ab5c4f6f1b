"""What the market stream tells CloudWatch and X-Ray in AWS: the candle-age metric the freshness
alarm watches (EMF lines on stdout, which the awslogs driver turns into metrics), and segments
sent to the X-Ray daemon beside it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tekoa.db.connection import PooledDatabase
from tekoa.market.stream.service import MarketStreamService
from tekoa.observability import CANDLE_AGE_METRIC, METRICS_NAMESPACE, SERVICE_NAME
from tests.integration.market.market_support import T0, M, config, eventually, run, simulated, start, stop


def _emf_values(output: str) -> list[float]:
    """Values of the candle-age metric in the EMF lines of `output`."""
    values = []
    for line in output.splitlines():
        if not line.startswith("{") or "_aws" not in line:
            continue
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == METRICS_NAMESPACE
        assert [m["Name"] for m in directive["Metrics"]] == [CANDLE_AGE_METRIC]
        assert directive["Metrics"][0]["Unit"] == "Seconds"
        assert document["service"] == SERVICE_NAME  # the dimension the alarm names
        value = document[CANDLE_AGE_METRIC]
        values.extend(float(v) for v in (value if isinstance(value, list) else [value]))
    return values


def test_the_stream_publishes_how_old_its_newest_candle_is(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def body() -> None:
        # Given a market whose clock stops half a minute into minute four
        exchange = simulated(start_ms=T0, stop_ms=T0 + 4 * M + 30_000)
        database = PooledDatabase(database_url, max_size=2)
        service = MarketStreamService(
            exchange, database, None, config(metrics_every_s=0.05), clock_ms=exchange.now_ms
        )

        # When it has streamed everything and published a few times
        task = await start(service)
        await eventually(lambda: service.candle_age_s() == 30.0, "the minute-3 candle closed 30 s ago")
        await eventually(lambda: 30.0 in _emf_values(capsys.readouterr().out), "the age published")
        await stop(service, task)
        database.close()

    run(body)


def test_no_metric_is_published_unless_asked(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def body() -> None:
        exchange = simulated(start_ms=T0, stop_ms=T0 + 2 * M)
        database = PooledDatabase(database_url, max_size=2)
        service = MarketStreamService(exchange, database, None, config(), clock_ms=exchange.now_ms)
        task = await start(service)
        await eventually(lambda: service.counters["candles_written"] > 0, "candles written")
        await stop(service, task)
        database.close()

    run(body)
    assert _emf_values(capsys.readouterr().out) == []


def test_with_no_market_followed_nothing_is_stale(database_url: str) -> None:
    database = PooledDatabase(database_url, max_size=1)
    try:
        exchange = simulated(start_ms=T0, stop_ms=T0 + M)
        service = MarketStreamService(exchange, database, None, config(symbols=()), clock_ms=exchange.now_ms)
        assert service.candle_age_s() == 0.0
    finally:
        database.close()


def test_process_tracing_sends_segments_to_the_daemon_address() -> None:
    # Given a UDP socket where the X-Ray daemon would listen
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(20)
        port = daemon.getsockname()[1]
        script = textwrap.dedent(
            """
            from tekoa.observability import start_process_tracing, traced
            assert start_process_tracing("tekoa-market-stream")
            with traced("market-stream.write-candles"):
                pass
            """
        )
        env: dict[str, Any] = {"AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}", "PATH": "/usr/bin:/bin"}

        # When a process that started tracing finishes one unit of work (in its own interpreter:
        # tracing patches botocore for the whole process)
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr

        # Then the daemon received its segment
        header, _, body = daemon.recv(65_536).decode().partition("\n")
    assert json.loads(header) == {"format": "json", "version": 1}
    segment = json.loads(body)
    assert segment["name"] == "market-stream.write-candles"
    assert segment["trace_id"].startswith("1-")


def test_without_a_daemon_address_tracing_stays_off() -> None:
    from tekoa.observability import start_process_tracing, traced

    assert start_process_tracing("tekoa-market-stream") is False
    with traced("anything"):
        pass

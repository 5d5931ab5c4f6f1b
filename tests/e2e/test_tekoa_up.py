"""`tekoa up` for real: a subprocess on free ports, driven over HTTP, stopped by signals and kills.

Starting the platform costs seconds, so one test walks a whole life: start, crash two parts
(each restarted alone), Ctrl-C, start again at once, kill -9 the supervisor, start again at
once; the data, the sign-in and the list cursors of the first run still work in the last.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, private_directory
from tests.e2e.support import ROOT, alive, eventually, platform_env, running_platform

pytestmark = pytest.mark.xdist_group("e2e")
PARTS = {
    "postgres",
    "aws",
    "api",
    "market-stream",
    "executor",
    "evaluator",
    "charts",
    "scheduler",
    "ws-gateway",
    "bus",
}
PASSWORD = "correct horse battery staple"


def test_the_platform_survives_crashes_ctrl_c_and_kill_9_and_keeps_sessions_and_data() -> None:
    ports = {"api": free_port(), "aws": free_port(), "market": free_port(), "ws": free_port()}
    with private_directory("tekoa-e2e-") as state:
        data_dir = state / "data"

        # Run 1: every part its own process; a user, a stored key and a paged list.
        with running_platform(data_dir, ports) as first:
            pids = first.pids()
            assert set(pids) == PARTS, first.output()
            cores = len(os.sched_getaffinity(0))
            assert f"({cores} workers" in next(line for line in first.lines if line.startswith("  api "))
            assert len(set(pids.values())) == len(PARTS) and first.process.pid not in pids.values()
            health = httpx.get(f"{first.base}/health", timeout=10)
            assert health.status_code == 200, health.text  # market data ready once the table shows
            session = httpx.post(
                f"{first.base}/v1/auth/register",
                json={"email": "keep@example.com", "password": PASSWORD},
                timeout=30,
            ).json()["tokens"]
            auth = {"Authorization": f"Bearer {session['access_token']}"}
            credential = httpx.post(
                f"{first.base}/v1/broker-credentials",
                json={
                    "exchange": "simulated",
                    "label": "sim",
                    "api_key": "KEY-1234-abcd",
                    "secret": "s" * 32,
                },
                headers=auth,
                timeout=30,
            ).json()
            for name in ("a", "b"):
                created = httpx.post(
                    f"{first.base}/v1/strategies",
                    json={"name": name, "definition": _grid()},
                    headers=auth,
                    timeout=30,
                )
                assert created.status_code == 201, created.text
            cursor = httpx.get(f"{first.base}/v1/strategies?limit=1", headers=auth, timeout=30).json()[
                "next_cursor"
            ]
            candles = _candles(first.base, auth)
            assert candles, "the simulated market stream should have stored candles"
            _chart_png(first.base, auth)

            # A manual paper market order fills (the executor part, at the stream's last trade);
            # a limit far under the market rests.
            bought = _order(first.base, auth, {"side": "buy", "quantity": "0.01"})
            eventually(lambda: _status(first.base, auth, bought) == "filled", "the market order filled")
            floor = (Decimal(candles[-1]["low"]) / 2).quantize(Decimal("0.01"))
            resting = _order(
                first.base,
                auth,
                {"side": "buy", "type": "limit", "quantity": "0.01", "limit_price": str(floor)},
            )
            eventually(lambda: _status(first.base, auth, resting) == "open", "the limit order rests")

            # A crashed part is restarted alone: the others keep their processes.
            crashed = ("market-stream", "api")
            for part in crashed:
                os.kill(pids[part], signal.SIGKILL)
            restarted = {
                part: eventually(lambda part=part: first.restarted_pid(part), f"{part} restarted")
                for part in crashed
            }
            assert all(alive(pid) for name, pid in pids.items() if name not in crashed), first.output()
            assert all(restarted[part] != pids[part] for part in crashed)
            pids = {**pids, **restarted}
            eventually(
                lambda: httpx.get(f"{first.base}/v1/me", headers=auth, timeout=5).status_code == 200,
                "the restarted API serves the session",
            )
            eventually(
                lambda: httpx.get(f"http://127.0.0.1:{ports['market']}/health", timeout=5).status_code == 200,
                "the restarted market stream serves its health",
            )

            # Ctrl-C: everything stops, in order, and the supervisor exits cleanly.
            first.process.send_signal(signal.SIGINT)
            assert first.process.wait(timeout=60) == 0, first.output()
        assert not any(alive(pid) for pid in pids.values())

        # Run 2, started at once: the same data, the same session, the same cursors. (One API
        # worker from here on: run 1 had one per core, as by default.)
        with running_platform(data_dir, ports, TEKOA_API_WORKERS="1") as second:
            me = httpx.get(f"{second.base}/v1/me", headers=auth, timeout=30)
            page = httpx.get(
                f"{second.base}/v1/strategies", params={"limit": 1, "cursor": cursor}, headers=auth
            )
            verified = httpx.post(
                f"{second.base}/v1/broker-credentials/{credential['id']}/verify", headers=auth, timeout=30
            )
            assert me.status_code == 200, me.text
            assert [item["name"] for item in page.json()["items"]] == ["a"], page.text
            assert verified.status_code == 200, verified.text  # decrypts after the AWS endpoint restarted
            assert _status(second.base, auth, resting) == "open"  # a resting order survives restarts
            positions = httpx.get(f"{second.base}/v1/positions", headers=auth, timeout=30).json()["items"]
            assert [p["position"]["quantity"] for p in positions] == ["0.01"], positions

            # kill -9 of the supervisor: every part goes with it.
            second_pids = second.pids()
            second.process.kill()
            second.process.wait(timeout=30)
            eventually(
                lambda: not any(alive(pid) for pid in second_pids.values()), "the parts died with it", 30
            )

        # Run 3, started at once after the kill: the database recovers, the session still works.
        with running_platform(data_dir, ports, TEKOA_API_WORKERS="1") as third:
            me = httpx.get(f"{third.base}/v1/me", headers=auth, timeout=30)
            assert me.status_code == 200, me.text
            third.process.send_signal(signal.SIGTERM)
            assert third.process.wait(timeout=60) == 0, third.output()


def _grid() -> dict[str, Any]:
    return {
        "kind": "builtin",
        "bot_type": "grid",
        "params": {
            "lower_price": "50000",
            "upper_price": "70000",
            "levels": 11,
            "spacing": "geometric",
            "order_size": {"amount": "0.001", "unit": "base"},
        },
    }


def _order(base: str, auth: dict[str, str], order: dict[str, str]) -> str:
    response = httpx.post(
        f"{base}/v1/orders",
        json={"exchange": "simulated", "symbol": "BTC/USDT", **order},
        headers=auth,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    order_id: str = response.json()["id"]
    return order_id


def _status(base: str, auth: dict[str, str], order_id: str) -> str:
    response = httpx.get(f"{base}/v1/orders/{order_id}", headers=auth, timeout=10)
    assert response.status_code == 200, response.text
    status: str = response.json()["order"]["status"]
    return status


def _candles(base: str, auth: dict[str, str]) -> list[Any]:
    response = httpx.get(
        f"{base}/v1/market/candles",
        params={"exchange": "simulated", "symbol": "BTC/USDT", "timeframe": "1m", "limit": 5},
        headers=auth,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def _chart_png(base: str, auth: dict[str, str]) -> None:
    """A chart asked for over the API is rendered by the charts part, and its URL is a PNG."""
    chart = httpx.post(
        f"{base}/v1/charts",
        json={"exchange": "simulated", "symbol": "BTC/USDT", "timeframe": "1m", "bars": 30},
        headers=auth,
        timeout=30,
    )
    assert chart.status_code in (200, 202), chart.text
    url = eventually(
        lambda: httpx.get(f"{base}/v1/charts/{chart.json()['id']}", headers=auth, timeout=10).json()["url"],
        "the chart rendered",
    )
    image = httpx.get(url, timeout=10)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_up_refuses_a_taken_port_before_starting_anything() -> None:
    with private_directory("tekoa-e2e-port-") as state, socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tekoa.cli", "up"],
            cwd=ROOT,
            env=platform_env(state / "data", {"api": taken, "aws": free_port(), "market": free_port()}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        started_database = (state / "data" / "pgdata").exists()

    assert result.returncode == 1
    assert f"127.0.0.1:{taken} (TEKOA_API_PORT)" in result.stderr
    assert "already in use" in result.stderr
    assert not started_database  # the ports are checked first

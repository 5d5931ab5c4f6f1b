"""`tekoa up` for real: a subprocess on free ports, driven over HTTP, stopped by signal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.xdist_group("e2e")
ROOT = Path(__file__).resolve().parents[2]


def _env(data_dir: Path, api_port: int, aws_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"}}
    env.update(
        TEKOA_DATA_DIR=str(data_dir),
        TEKOA_API_PORT=str(api_port),
        TEKOA_AWS_PORT=str(aws_port),
        TEKOA_MARKET_HEALTH_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def running_platform(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    api_port, aws_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tekoa.cli", "up"],
        cwd=ROOT,
        env=_env(data_dir, api_port, aws_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"tekoa up exited early:\n{process.stdout.read() if process.stdout else ''}"
                )
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("tekoa up did not become healthy within 60 s")
            time.sleep(0.2)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                raise


def test_up_serves_health_stops_on_sigterm_and_keeps_its_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    with running_platform(data_dir) as (base, process):
        health = httpx.get(f"{base}/health").json()
        registered = httpx.post(
            f"{base}/v1/auth/register",
            json={"email": "keep@example.com", "password": "correct horse battery staple"},
            timeout=30,
        )
        auth = {"Authorization": f"Bearer {registered.json()['tokens']['access_token']}"}
        credential = httpx.post(
            f"{base}/v1/broker-credentials",
            json={"exchange": "simulated", "label": "sim", "api_key": "KEY-1234-abcd", "secret": "s" * 32},
            headers=auth,
            timeout=30,
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert health["database"]["ok"] and health["aws"]["ok"]
    assert registered.status_code == 201
    assert credential.status_code == 201

    with running_platform(data_dir) as (base, _):
        login = httpx.post(
            f"{base}/v1/auth/login",
            json={"email": "keep@example.com", "password": "correct horse battery staple"},
            timeout=30,
        )
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        # Verifying decrypts the stored secret: the local AWS endpoint was restarted since.
        verified = httpx.post(
            f"{base}/v1/broker-credentials/{credential.json()['id']}/verify", headers=auth, timeout=30
        )
        candles = _first_candles(base, auth)
    assert login.status_code == 200
    assert verified.status_code == 200, verified.text
    assert candles.status_code == 200, candles.text
    assert candles.json()["items"], "the simulated market stream should have stored candles"


def _first_candles(base: str, auth: dict[str, str]) -> httpx.Response:
    # The stream backfills recent history from the simulated exchange right after start.
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(
            f"{base}/v1/market/candles",
            params={"exchange": "simulated", "symbol": "BTC/USDT", "timeframe": "1m", "limit": 5},
            headers=auth,
            timeout=30,
        )
        if response.status_code != 200 or response.json()["items"] or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_up_refuses_a_taken_port_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tekoa.cli", "up"],
            cwd=ROOT,
            env=_env(tmp_path / "state", free_port(), taken),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert f"127.0.0.1:{taken}" in result.stderr
    assert "already in use" in result.stderr

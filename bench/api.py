"""API latency and throughput: authenticated reads against `tekoa up`, then against the API alone.

Run: `python bench/api.py` (about two minutes). It starts `tekoa up` on free ports with its
data in a temp dir, signs a user in, creates 20 strategies, then measures two reads

    GET /v1/me                       (the caller's account)
    GET /v1/strategies?limit=20      (a page of 20 strategies)

with 1 and with 100 concurrent clients (keep-alive connections, each sending its next request
when the previous answer arrived), printing p50 and p99 latency, requests per second, and the
CPU time the API's processes and PostgreSQL's spent per request (ms). Then
it stops the platform and serves the same app alone (the `api` part's own command: uvicorn
with the same workers) on the same database, with only PostgreSQL and the AWS endpoint
running, and measures again: the difference is what the platform's other parts cost the API.

Before loading it, the bench also measures what an idle `tekoa up` spends (every part's CPU
over a few seconds, printed under the table): the parts share the cores with the API.

The load generator is a small asyncio HTTP/1.1 client in this process: it shares the machine's
cores with the server, so on a small machine its own work is part of what limits the figures.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = 20
CONCURRENCY = (1, 100)
PATHS = ("/v1/me", f"/v1/strategies?limit={STRATEGIES}")
WARMUP_S = 2.0
MEASURE_S = 10.0
IDLE_WINDOWS, IDLE_WINDOW_S = 5, 2.0
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Result:
    target: str
    path: str
    clients: int
    requests: int
    p50_ms: float
    p99_ms: float
    per_s: float
    errors: int
    api_cpu_ms: float
    db_cpu_ms: float


def _cpu_s(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _postgres(data_dir: Path) -> list[psutil.Process]:
    postmaster = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    return _tree(postmaster)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _client(
    host: str,
    port: int,
    request: bytes,
    until: float,
    warm_until: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (start := time.perf_counter()) < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if start >= warm_until:
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


async def _load(
    host: str, port: int, path: str, token: str, clients: int
) -> tuple[list[float], list[int], float]:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors: list[int] = []
    warm_until = time.perf_counter() + WARMUP_S
    until = warm_until + MEASURE_S
    await asyncio.gather(
        *(_client(host, port, request, until, warm_until, latencies, errors) for _ in range(clients))
    )
    return latencies, errors, MEASURE_S


def measure(target: str, base_port: int, token: str, api_pid: int, data_dir: Path) -> list[Result]:
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    results = []
    for path in PATHS:
        for clients in CONCURRENCY:
            api, db = _tree(api_pid), _postgres(data_dir)
            api_before, db_before = _cpu_s(api), _cpu_s(db)
            latencies, errors, seconds = run(_load("127.0.0.1", base_port, path, token, clients))
            # CPU per request over warm-up and measurement alike (both send the same requests).
            total = len(latencies) * (WARMUP_S + MEASURE_S) / MEASURE_S
            api_cpu = (_cpu_s(_tree(api_pid)) - api_before) / total * 1000
            db_cpu = (_cpu_s(_postgres(data_dir)) - db_before) / total * 1000
            ms = np.array(latencies) * 1000
            results.append(
                Result(
                    target,
                    path,
                    clients,
                    len(ms),
                    float(np.percentile(ms, 50)),
                    float(np.percentile(ms, 99)),
                    len(ms) / seconds,
                    len(errors),
                    api_cpu,
                    db_cpu,
                )
            )
            print_row(results[-1])
    return results


def print_row(result: Result) -> None:
    print(
        f"{result.target:<16} {result.path:<26} {result.clients:>7} {result.p50_ms:>9.2f}"
        f" {result.p99_ms:>9.2f} {result.per_s:>9.0f} {result.requests:>9} {result.errors:>6}"
        f" {result.api_cpu_ms:>8.2f} {result.db_cpu_ms:>8.2f}",
        flush=True,
    )


def _wait(url: str, process: subprocess.Popen[bytes], what: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2)  # any answer: the server runs
            return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in {timeout_s} s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def idle_cpu_percent(pid: int) -> float:
    """The CPU the process tree of `pid` spends, in % of one core: the median of a few short
    windows, so that a one-off (a part's first scheduled run importing its handler) does not
    count as what idling costs."""
    processes = _tree(pid)
    windows = []
    for _ in range(IDLE_WINDOWS):
        before = _cpu_s(processes)
        time.sleep(IDLE_WINDOW_S)
        windows.append((_cpu_s(processes) - before) / IDLE_WINDOW_S * 100)
    return float(np.median(windows))


@contextmanager
def platform(data_dir: Path, env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """`tekoa up`, once its table shows (every part ready, market data loaded); yields its
    pid and the pid of its `api` part."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tekoa.cli", "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 180
        while not any(line.startswith("Press Ctrl-C") for line in lines):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tekoa up did not start:\n" + "".join(lines[-30:]))
            time.sleep(0.2)
        (api_pid,) = [int(line.split()[2]) for line in lines if line.startswith("  api ")]
        yield process.pid, api_pid
    finally:
        _stop(process)


@contextmanager
def api_alone(data_dir: Path, env: dict[str, str]) -> Iterator[int]:
    """PostgreSQL and the AWS endpoint (the API reads its signing key there), then the `api`
    part's own command: nothing else runs."""
    from tekoa.local.aws import LocalAwsEndpoint, local_jwt_signing_key, provision
    from tekoa.local.platform import local_settings
    from tekoa.local.postgres import EmbeddedPostgres
    from tekoa.settings import load_settings

    settings, extra = local_settings(
        load_settings(
            data_dir=data_dir, aws_port=int(env["TEKOA_AWS_PORT"]), api_port=int(env["TEKOA_API_PORT"])
        )
    )
    database = EmbeddedPostgres(data_dir / "pgdata")
    database.start()
    aws = LocalAwsEndpoint(port=settings.aws_port)
    aws.start()
    child_env = {**env, **extra}
    for key, value in extra.items():
        os.environ[key] = value
    provision(settings, jwt_signing_key=local_jwt_signing_key(data_dir))
    process = subprocess.Popen(
        [sys.executable, "-m", "tekoa.local.part", "functions.api.local:serve"],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(f"http://127.0.0.1:{settings.api_port}/health", process, "the API")
        yield process.pid
    finally:
        _stop(process)
        aws.stop()
        database.stop()


def seed(base: str) -> str:
    """A signed-in user with STRATEGIES strategies; returns the access token."""
    tokens = httpx.post(
        f"{base}/v1/auth/register", json={"email": "bench@example.com", "password": PASSWORD}
    ).json()
    token: str = tokens["tokens"]["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    for i in range(STRATEGIES):
        definition = {
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
        response = httpx.post(
            f"{base}/v1/strategies", json={"name": f"grid {i}", "definition": definition}, headers=auth
        )
        response.raise_for_status()
    return token


def main() -> None:
    """Measure against `tekoa up`, then the API alone; print one table."""
    with tempfile.TemporaryDirectory(prefix="tekoa-bench-api-") as directory:
        data_dir = Path(directory) / "data"
        ports = {
            "TEKOA_API_PORT": free_port(),
            "TEKOA_AWS_PORT": free_port(),
            "TEKOA_MARKET_HEALTH_PORT": free_port(),
        }
        env = {
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"}},
            **{k: str(v) for k, v in ports.items()},
            "TEKOA_DATA_DIR": str(data_dir),
            "TEKOA_LOG_LEVEL": "WARNING",
        }
        base = f"http://127.0.0.1:{ports['TEKOA_API_PORT']}"
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"{cores} CPU cores; {WARMUP_S:g} s warm-up, then {MEASURE_S:g} s per row\n")
        print(
            f"{'target':<16} {'request':<26} {'clients':>7} {'p50 ms':>9} {'p99 ms':>9}"
            f" {'req/s':>9} {'requests':>9} {'errors':>6} {'api cpu':>8} {'db cpu':>8}"
        )
        with platform(data_dir, env) as (up_pid, api_pid):
            token = seed(base)
            time.sleep(2)  # the writes' echoes (events, pushes) settle
            idle = idle_cpu_percent(up_pid)
            measure("tekoa up", ports["TEKOA_API_PORT"], token, api_pid, data_dir)
        with api_alone(data_dir, env) as api_pid:
            measure("API alone", ports["TEKOA_API_PORT"], token, api_pid, data_dir)
        print(
            f"\ntekoa up idle: {idle:.1f}% of one core, every part together"
            f" (median of {IDLE_WINDOWS} windows of {IDLE_WINDOW_S:g} s)"
        )


if __name__ == "__main__":
    main()

"""Live updates: 1,000 WebSocket clients on the local gateway, publish → delivery latency.

Run: `python bench/realtime.py` (about two minutes). It starts `tekoa up` on free ports with
its data in a temp dir, signs a user in, opens CLIENTS connections to the `ws-gateway` part with
the user's token, and subscribes each to one market (one the market stream does not follow, so
its forming candles do not mix in). Then it publishes `candle.closed` events for that market
two ways and times each from the moment it is published to its arrival at every subscriber:

    fan-out   the push function's code (`FanOut.event`, as the push Lambda runs it) called
              in this process: recipients from PostgreSQL, one @connections POST each
    bus       `put_events` on the local bus: moto's rule → the `bus` part → the push handler

It prints p50/p99 of the publishing call itself, of "delivered to all subscribers" (the last
client's arrival) and of single deliveries, and the gateway's memory per connection (RSS growth
over CLIENTS connections). The target is p99 ≤ 100 ms to all 1,000. The clients run in
CLIENT_PROCESSES processes of their own, but on the same cores as the platform: on a small
machine their work is part of what the figures show. So it also prints the CPU each process
spent per delivered message on each path (`bench` is this process: the fan-out path's pusher;
`bus` the bus path's; `others` every other part of the platform, mostly polling): on a busy
machine latency says little, CPU per message still says what a delivery costs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 1_000
EVENTS = 100
CLIENT_PROCESSES = 2
MARKET = {"exchange": "simulated", "symbol": "ETH/USDT", "timeframe": "1m"}
PASSWORD = "correct horse battery staple"
_TABLE_ROW = re.compile(r"^  (\S+)\s+pid (\d+)\s")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def platform(env: dict[str, str]) -> Iterator[dict[str, int]]:
    """`tekoa up` once its table shows; yields the pid of each part."""
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
        deadline = time.monotonic() + 240
        while not any(line.startswith("Press Ctrl-C") for line in lines):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tekoa up did not start:\n" + "".join(lines[-30:]))
            time.sleep(0.2)
        yield {m[1]: int(m[2]) for line in lines if (m := _TABLE_ROW.match(line))}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _rss_mb(pid: int) -> float:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


class Client(asyncio.Protocol):
    """One subscriber, reduced to what the bench needs: the upgrade, one masked frame (the
    subscription), then whole unmasked text frames as the gateway sends them (API Gateway sends
    each message as one frame). The `websockets` client cost about 50 µs of CPU per message, on
    the cores of the platform being measured; real subscribers are elsewhere."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.buffer = bytearray()
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        if not self.upgraded.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            if head.split(b" ", 2)[1] != b"101":
                self.upgraded.set_exception(RuntimeError(head.decode("latin-1")))
                return
            self.upgraded.set_result(None)
        while len(self.buffer) >= 2:
            length, start = self.buffer[1] & 0x7F, 2
            if length >= 126:
                start = 4 if length == 126 else 10
                if len(self.buffer) < start:
                    return
                length = int.from_bytes(self.buffer[2:start])
            if len(self.buffer) < start + length:
                return
            opcode, payload = self.buffer[0] & 0x0F, bytes(self.buffer[start : start + length])
            del self.buffer[: start + length]
            if opcode == 0x1:
                self.clients.received(self, payload, now)

    def send_text(self, text: str) -> None:
        assert self.transport is not None
        payload, mask = text.encode(), os.urandom(4)
        size = (
            bytes([0x80 | len(payload)])
            if len(payload) < 126
            else bytes([0x80 | 126]) + len(payload).to_bytes(2)
        )
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.transport.write(b"\x81" + size + mask + masked)


class Clients:
    """Subscribed connections in this process, recording when each event marker reaches each."""

    def __init__(self) -> None:
        self.connections: list[Client] = []
        self.arrivals: dict[int, list[float]] = defaultdict(list)
        self.complete: dict[int, asyncio.Event] = defaultdict(asyncio.Event)

    async def open(self, host: str, port: int, token: str, count: int) -> None:
        semaphore = asyncio.Semaphore(50)
        loop = asyncio.get_running_loop()

        async def one() -> None:
            async with semaphore:
                _, client = await loop.create_connection(lambda: Client(self), host, port)
                assert client.transport is not None
                key = base64.b64encode(os.urandom(16)).decode()
                upgrade = (
                    f"GET /?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                client.transport.write(upgrade.encode())
                await asyncio.wait_for(client.upgraded, 60)
                client.send_text(json.dumps({"action": "subscribe", "markets": [MARKET]}))
                await asyncio.wait_for(client.subscribed, 60)
                self.connections.append(client)

        await asyncio.gather(*(one() for _ in range(count)))

    def received(self, client: Client, payload: bytes, at: float) -> None:
        message = json.loads(payload)
        if message["type"] == "candle_update":
            marker = message["data"]["open_time"]
            self.arrivals[marker].append(at)
            if len(self.arrivals[marker]) == len(self.connections):
                self.complete[marker].set()
        elif message["type"] == "subscribed":
            client.subscribed.set_result(None)
        else:
            raise RuntimeError(f"unexpected message: {message}")

    async def wait_for(self, marker: int, timeout_s: float = 20.0) -> list[float]:
        try:
            await asyncio.wait_for(self.complete[marker].wait(), timeout_s)
        except TimeoutError:
            raise RuntimeError(
                f"event {marker}: {len(self.arrivals[marker])} of {len(self.connections)} arrived"
            ) from None
        del self.complete[marker]
        return self.arrivals.pop(marker)


def client_process(host: str, port: int, token: str, count: int, pipe: Any) -> None:
    """CLIENT_PROCESSES of these hold the connections (their own cores and interpreters, as real
    clients are): open, say so, then report the arrival times of each marker asked for."""

    async def serve() -> None:
        clients = Clients()
        await clients.open(host, port, token, count)
        pipe.send("open")
        loop = asyncio.get_running_loop()
        while True:
            marker = await loop.run_in_executor(None, pipe.recv)
            if marker is None:
                break
            pipe.send(await clients.wait_for(marker))
        for client in clients.connections:
            assert client.transport is not None
            client.transport.close()

    asyncio.run(serve())


def _candle(marker: int) -> dict[str, Any]:
    return {
        **{key: MARKET[key] for key in ("exchange", "symbol", "timeframe")},
        "open_time": marker,
        "close_time": marker + 59_999,
        "open": "100",
        "high": "101",
        "low": "99",
        "close": "100.5",
        "volume": "3",
        "trades": 7,
    }


class CpuMeter:
    """CPU time spent by groups of processes (a part with its children: PostgreSQL's backends, the
    API's workers) between two readings."""

    def __init__(self, groups: dict[str, list[int]], alone: set[int]) -> None:
        self.groups = {
            name: [p for p in psutil.process_iter() if p.pid in pids] for name, pids in groups.items()
        }
        self.alone = alone  # counted without their children (this process: its children are the rest)

    def read(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for name, roots in self.groups.items():
            total = 0.0
            for root in roots:
                family = [root] if root.pid in self.alone else [root, *root.children(recursive=True)]
                for process in family:
                    try:
                        times = process.cpu_times()
                    except psutil.NoSuchProcess:
                        continue
                    total += times.user + times.system
            seconds[name] = total
        return seconds


Measured = tuple[list[float], list[float], list[float], dict[str, float]]


def measure(pipes: list[Any], publish: Any, first_marker: int, meter: CpuMeter) -> Measured:
    """(ms until the publish call returned, ms to all subscribers, ms per single delivery) per
    event, and the CPU ms each group of processes spent per delivered message."""
    before = meter.read()
    returned: list[float] = []
    to_all: list[float] = []
    single: list[float] = []
    for i in range(EVENTS):
        marker = first_marker + i * 60_000
        for pipe in pipes:
            pipe.send(marker)
        start = time.time()
        publish(_candle(marker))
        returned.append((time.time() - start) * 1000)
        arrivals = [t for pipe in pipes for t in pipe.recv()]
        to_all.append((max(arrivals) - start) * 1000)
        single.extend((t - start) * 1000 for t in arrivals)
        time.sleep(0.05)
    after = meter.read()
    return (
        returned,
        to_all,
        single,
        {name: (after[name] - before[name]) * 1000 / len(single) for name in after},
    )


def _row(name: str, measured: Measured) -> dict[str, float]:
    returned, to_all, single, cpu = measured
    figures = [np.percentile(np.array(x), q) for x in (returned, to_all, single) for q in (50, 99)]
    print(f"{name:<10} {len(to_all):>7} " + " ".join(f"{f:>10.1f}" for f in figures), flush=True)
    return cpu


def run(settings: Any, token: str, pids: dict[str, int]) -> None:
    from tekoa.aws.events import BusEvent, EventBridgePublisher
    from tekoa.aws.push import ManagementApiPusher
    from tekoa.db.connection import PooledDatabase
    from tekoa.names import EventType
    from tekoa.realtime.fanout import FanOut

    gateway_pid = pids["ws-gateway"]
    before_mb = _rss_mb(gateway_pid)
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    opened = time.time()
    for _ in range(CLIENT_PROCESSES):
        here, there = context.Pipe()
        process = context.Process(
            target=client_process,
            args=(settings.ws_host, settings.ws_port, token, CLIENTS // CLIENT_PROCESSES, there),
        )
        process.start()
        pipes.append(here)
        processes.append(process)
    for pipe in pipes:
        assert pipe.recv() == "open"
    opened_s = time.time() - opened
    time.sleep(1.0)
    after_mb = _rss_mb(gateway_pid)
    print(
        f"{CLIENTS} clients connected and subscribed in {opened_s:.1f} s; gateway RSS {before_mb:.0f} → "
        f"{after_mb:.0f} MB: {(after_mb - before_mb) * 1024 / CLIENTS:.1f} KiB per connection",
        flush=True,
    )
    database = PooledDatabase(settings.database_url, max_size=2)
    fan_out = FanOut(
        database, ManagementApiPusher.from_boto3(settings.websocket_management_url, settings.aws_region)
    )
    publisher = EventBridgePublisher(settings)
    meter = CpuMeter(
        {
            "bench": [os.getpid()],  # the fan-out path pushes from here, the bus path from `bus`
            "bus": [pids["bus"]],
            "moto": [pids["aws"]],
            "postgres": [pids["postgres"]],
            "gateway": [gateway_pid],
            "clients": [process.pid for process in processes if process.pid is not None],
            "others": [
                pid for name, pid in pids.items() if name not in {"bus", "aws", "postgres", "ws-gateway"}
            ],
        },
        alone={os.getpid()},
    )
    heads = ("call p50", "call p99", "all p50", "all p99", "one p50", "one p99")
    print(f"{'path (ms)':<10} {'events':>7} " + " ".join(f"{head:>10}" for head in heads))

    def fan_out_path(detail: dict[str, Any]) -> None:
        fan_out.event(EventType.CANDLE_CLOSED, detail)

    def bus_path(detail: dict[str, Any]) -> None:
        publisher.publish([BusEvent(EventType.CANDLE_CLOSED, detail)])

    # Warm-up, not shown: each path's first events pay one-off costs (clients and connections
    # made, the local bus's first parse of its target templates).
    measure(pipes, fan_out_path, 0, meter)
    measure(pipes, bus_path, 30_000_000, meter)
    cpu = {
        "fan-out": _row("fan-out", measure(pipes, fan_out_path, 60_000_000, meter)),
        "bus": _row("bus", measure(pipes, bus_path, 120_000_000, meter)),
    }
    groups = list(meter.groups)
    print(f"{'CPU ms per delivered message':<30} " + " ".join(f"{g:>9}" for g in [*groups, "total"]))
    for path, spent in cpu.items():
        figures = [spent[g] for g in groups]
        print(f"{path:<30} " + " ".join(f"{f:>9.3f}" for f in [*figures, sum(figures)]), flush=True)
    for pipe in pipes:
        pipe.send(None)
    for process in processes:
        process.join(30)
    database.close()


def main() -> None:
    from tekoa.local.platform import local_settings
    from tekoa.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="tekoa-bench-realtime-") as tmp:
        data_dir = Path(tmp) / "data"
        ports = {"api": free_port(), "aws": free_port(), "market": free_port(), "ws": free_port()}
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"}}
        env.update(
            TEKOA_DATA_DIR=str(data_dir),
            TEKOA_API_PORT=str(ports["api"]),
            TEKOA_AWS_PORT=str(ports["aws"]),
            TEKOA_MARKET_HEALTH_PORT=str(ports["market"]),
            TEKOA_WS_PORT=str(ports["ws"]),
            TEKOA_MARKET_SYMBOLS="BTC/USDT",
            TEKOA_MARKET_HISTORY_DAYS="0.05",
            TEKOA_API_WORKERS="1",
            TEKOA_PASSWORD_HASH_MEMORY_KIB="8192",
        )
        with platform(env) as pids:
            settings, extra = local_settings(
                load_settings(
                    data_dir=data_dir, aws_port=ports["aws"], api_port=ports["api"], ws_port=ports["ws"]
                )
            )
            os.environ.update(extra)
            base = f"http://127.0.0.1:{ports['api']}"
            registered = httpx.post(
                f"{base}/v1/auth/register",
                json={"email": "bench@example.com", "password": PASSWORD},
                timeout=30,
            )
            registered.raise_for_status()
            run(settings, registered.json()["tokens"]["access_token"], pids)


if __name__ == "__main__":
    main()

"""`tekoa up` as a subprocess for end-to-end tests: started on the ports given, read line by line,
stopped by SIGTERM (killed if it hangs)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
_TABLE_ROW = re.compile(r"^  (\S+)\s+pid (\d+)\s")


class Platform:
    """A running `tekoa up`: its process, its output so far and the pids it printed."""

    def __init__(self, process: subprocess.Popen[str], base: str) -> None:
        self.process = process
        self.base = base
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def pids(self) -> dict[str, int]:
        return {m[1]: int(m[2]) for line in self.lines if (m := _TABLE_ROW.match(line))}

    def restarted_pid(self, part: str) -> int | None:
        found = [re.search(rf"\| {part} restarted \(pid (\d+)\)", line) for line in self.lines]
        hits = [int(m[1]) for m in found if m]
        return hits[-1] if hits else None


def platform_env(data_dir: Path, ports: dict[str, int], **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"}}
    env.update(
        TEKOA_DATA_DIR=str(data_dir),
        TEKOA_API_PORT=str(ports["api"]),
        TEKOA_AWS_PORT=str(ports["aws"]),
        TEKOA_MARKET_HEALTH_PORT=str(ports["market"]),
        TEKOA_WS_PORT=str(ports.get("ws") or free_port()),
        TEKOA_MARKET_SYMBOLS="BTC/USDT",
        TEKOA_MARKET_HISTORY_DAYS="0.05",
        TEKOA_PASSWORD_HASH_MEMORY_KIB="8192",
        PYTHONUNBUFFERED="1",
        **settings,
    )
    return env


def eventually(condition: Callable[[], Any], what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = condition()
        except (httpx.TransportError, OSError):
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def running_platform(data_dir: Path, ports: dict[str, int], **settings: str) -> Iterator[Platform]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tekoa.cli", "up"],
        cwd=ROOT,
        env=platform_env(data_dir, ports, **settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    platform = Platform(process, f"http://127.0.0.1:{ports['api']}")
    try:

        def ready() -> bool:
            assert process.poll() is None, f"tekoa up exited early:\n{platform.output()}"
            return "Press Ctrl-C to stop." in platform.lines

        eventually(ready, "tekoa up printed its table", timeout_s=120)
        yield platform
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        platform.reader.join(10)

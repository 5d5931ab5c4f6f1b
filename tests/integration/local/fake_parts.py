"""Entry points of tiny parts for the supervisor's tests (run by `tekoa.local.part`)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path


def _marker(name: str) -> Path:
    return Path(os.environ["FAKE_PARTS_DIR"]) / name


def server() -> None:
    """Listens on FAKE_PORT (ready once it accepts), records its stop, exits on SIGTERM."""
    name = os.environ["TEKOA_PART"]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(os.environ[f"FAKE_PORT_{name.upper()}"])))
    listener.listen()
    print(f"{name} listening", flush=True)

    def stop(*_: object) -> None:
        with _marker("stops").open("a") as stops:
            stops.write(f"{name} {time.monotonic()}\n")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        connection, _ = listener.accept()
        connection.close()


def worker() -> None:
    """Runs until SIGTERM, recording its stop."""
    name = os.environ["TEKOA_PART"]
    print(f"{name} working\nsecond line", flush=True)

    def stop(*_: object) -> None:
        with _marker("stops").open("a") as stops:
            stops.write(f"{name} {time.monotonic()}\n")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        time.sleep(1)


def setup() -> None:
    """A one-shot part: counts its runs."""
    with _marker("setup-runs").open("a") as runs:
        runs.write("run\n")


def broken() -> None:
    """Fails at once."""
    print("cannot start: misconfigured", flush=True)
    sys.exit(3)

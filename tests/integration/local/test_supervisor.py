"""The supervisor of `tekoa up`, with tiny parts: start order, readiness, one tagged log stream,
a crashed part restarted alone, one-shot parts re-run after what they need restarted, ordered
stop, and start-up failures named."""

from __future__ import annotations

import io
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tekoa.local.supervisor import Part, StartupError, Supervisor, ensure_ports_free
from tekoa.settings import load_settings
from tests.conftest import free_port

ENTRY = "tests.integration.local.fake_parts"


def _listening(port: int) -> Callable[[Any], Callable[[], bool]]:
    def probe() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    return lambda _: probe


def _eventually(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[Supervisor, io.StringIO, Path, threading.Event]]:
    db_port, api_port = free_port(), free_port()
    parts = (
        Part("db", f"{ENTRY}:server", ports=lambda _: {db_port: "DB_PORT"}, ready=_listening(db_port)),
        Part("setup", f"{ENTRY}:setup", after=("db",), once=True),
        Part(
            "api",
            f"{ENTRY}:server",
            after=("setup",),
            ports=lambda _: {api_port: "API_PORT"},
            ready=_listening(api_port),
        ),
        Part("worker", f"{ENTRY}:worker", after=("setup",)),
    )
    env = {"FAKE_PARTS_DIR": str(tmp_path), "FAKE_PORT_DB": str(db_port), "FAKE_PORT_API": str(api_port)}
    log = io.StringIO()
    supervisor = Supervisor(parts, load_settings(), env, log=log)
    stopping = threading.Event()
    supervisor.start(stopping)
    watcher = threading.Thread(target=supervisor.supervise, args=(stopping, 0.05), daemon=True)
    watcher.start()
    try:
        yield supervisor, log, tmp_path, stopping
    finally:
        stopping.set()
        watcher.join(10)
        supervisor.stop()


def test_parts_run_as_their_own_processes_after_what_they_need(platform: Any) -> None:
    supervisor, log, directory, _ = platform

    pids = supervisor.pids()

    assert set(pids) == {"db", "api", "worker"}  # setup ran once and is done
    assert len(set(pids.values())) == 3 and os.getpid() not in pids.values()
    assert (directory / "setup-runs").read_text() == "run\n"
    lines = log.getvalue().splitlines()
    assert "worker | worker working" in lines and "worker | second line" in lines
    assert lines.index("db     | db listening") < lines.index("api    | api listening")


def test_a_killed_part_is_restarted_alone_and_what_depended_on_it_is_redone(platform: Any) -> None:
    supervisor, log, directory, _ = platform
    before = supervisor.pids()

    os.kill(before["db"], signal.SIGKILL)

    _eventually(lambda: supervisor.pids().get("db") not in (None, before["db"]), "db restarted")
    _eventually(lambda: (directory / "setup-runs").read_text() == "run\nrun\n", "setup re-run")
    after = supervisor.pids()
    assert after["api"] == before["api"] and after["worker"] == before["worker"]
    assert _alive(after["api"]) and _alive(after["worker"])
    assert f"db (pid {before['db']}) exited with status -9; restarting it in 0.5 s" in log.getvalue()


def test_parts_stop_in_reverse_order_of_what_they_need(platform: Any) -> None:
    supervisor, _, directory, stopping = platform
    pids = supervisor.pids()

    stopping.set()
    supervisor.stop()

    stopped = [line.split()[0] for line in (directory / "stops").read_text().splitlines()]
    assert stopped.index("db") > stopped.index("api") and stopped.index("db") > stopped.index("worker")
    assert not any(_alive(pid) for pid in pids.values())


def test_a_part_that_cannot_start_stops_the_start_with_its_name(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    parts = (
        Part("db", f"{ENTRY}:server", ports=lambda _: {port: "DB_PORT"}, ready=_listening(port)),
        Part("api", f"{ENTRY}:broken", after=("db",), ready=_listening(api_port)),
    )
    log = io.StringIO()
    supervisor = Supervisor(
        parts, load_settings(), {"FAKE_PARTS_DIR": str(tmp_path), "FAKE_PORT_DB": str(port)}, log=log
    )

    with pytest.raises(StartupError, match="api exited with status 3 while starting"):
        supervisor.start()

    assert "api | cannot start: misconfigured" in log.getvalue()
    assert supervisor.pids() == {}
    assert (tmp_path / "stops").read_text().split()[0] == "db"


def test_a_port_whose_connections_are_in_time_wait_is_free() -> None:
    # A server that closed its side first leaves the port in TIME_WAIT (what a stop or a
    # crash of `tekoa up` leaves behind); a new server may listen there.
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server closes first: its end goes to TIME_WAIT
        time.sleep(0.05)
        client.close()

    ensure_ports_free({port: "TEKOA_API_PORT"})


def test_a_port_someone_listens_on_is_named_with_its_setting() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]

        with pytest.raises(StartupError, match=rf"127\.0\.0\.1:{port} \(TEKOA_API_PORT\)"):
            ensure_ports_free({port: "TEKOA_API_PORT"})

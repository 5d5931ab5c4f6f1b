"""`tekoa up`: the whole platform on one machine, supervised.

Parts start in order (database, AWS endpoint, resources, migrations, then every registered
service), a table says what runs where, and Ctrl-C / SIGTERM stops them in reverse order.
Later capabilities plug in with `register_service` (WebSocket gateway, scheduler, SQS
poller, market stream) without touching the supervisor.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

from tekoa.db.connection import PooledDatabase
from tekoa.db.migrate import migrate
from tekoa.local.aws import LocalAwsEndpoint, ProvisionedResources, provision
from tekoa.local.postgres import APP_DATABASE, EmbeddedPostgres, ensure_database
from tekoa.observability import logger
from tekoa.settings import Settings, get_settings


class StartupError(RuntimeError):
    """A part could not start; the message says which and why."""


@dataclass(frozen=True, slots=True)
class RuntimeContext:
    """What every local service is given: settings (with the live endpoints) and shared adapters."""

    settings: Settings
    database: PooledDatabase
    aws: ProvisionedResources


class LocalService(Protocol):
    """A long-running part of the local platform."""

    name: str

    def ports(self) -> list[int]:
        """TCP ports on 127.0.0.1 it will bind (checked before anything starts)."""
        ...

    def start(self) -> str:
        """Start in the background; return where it runs (for the table)."""
        ...

    def stop(self) -> None: ...


ServiceFactory = Callable[[RuntimeContext], LocalService]
_registry: list[tuple[str, ServiceFactory]] = []


def register_service(name: str, factory: ServiceFactory) -> None:
    """Add a service to every `tekoa up` (later registrations start later)."""
    if any(existing == name for existing, _ in _registry):
        raise ValueError(f"service {name!r} is already registered")
    _registry.append((name, factory))


def registered_services() -> list[tuple[str, ServiceFactory]]:
    _load_builtin_services()
    return list(_registry)


def _load_builtin_services() -> None:
    # Importing the module registers its services; kept in one list so the set is explicit.
    import tekoa.local.services  # noqa: F401


def ensure_ports_free(ports: dict[int, str], host: str = "127.0.0.1") -> None:
    """Fail with a clear message naming every taken port and the setting that moves it."""
    taken = []
    for port, owner in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                taken.append(f"  {host}:{port} ({owner})")
    if taken:
        raise StartupError(
            "These ports are already in use — is another `tekoa up` running?\n"
            + "\n".join(taken)
            + "\nStop it, or choose other ports (TEKOA_API_PORT, TEKOA_AWS_PORT)."
        )


class Platform:
    """Starts and stops the local platform's parts in order."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._stops: list[tuple[str, Callable[[], None]]] = []
        self.table: list[tuple[str, str]] = []
        self.context: RuntimeContext | None = None

    def start(self) -> RuntimeContext:
        """Bring every part up; on failure stop what started and raise StartupError."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> RuntimeContext:
        settings = self.settings
        factories = registered_services()
        ensure_ports_free(
            {settings.aws_port: "local AWS endpoint"} if settings.aws_endpoint_url is None else {}
        )

        database_url = settings.database_url
        if database_url is None:
            postgres = EmbeddedPostgres(settings.data_dir / "pgdata")
            admin = postgres.start()
            self._stops.append(("postgres", postgres.stop))
            database_url = ensure_database(admin, APP_DATABASE)
            self.table.append(("postgres", f"embedded PostgreSQL 16, data in {postgres.data_dir}"))
        else:
            self.table.append(("postgres", "DATABASE_URL"))

        endpoint_url = settings.aws_endpoint_url
        updates: dict[str, object] = {"database_url": database_url}
        if endpoint_url is None:
            endpoint = LocalAwsEndpoint(port=settings.aws_port)
            endpoint_url = endpoint.start()
            self._stops.append(("aws", endpoint.stop))
            # moto's KMS keys vanish with the process; broker secrets stored in one run must
            # open in the next, so the local platform wraps data keys with its key file.
            updates["key_provider"] = "file"
            os.environ["TEKOA_KEY_PROVIDER"] = "file"
        updates["aws_endpoint_url"] = endpoint_url
        self.table.append(("aws", endpoint_url))

        # Every part of this process, and any child, sees the live endpoints.
        os.environ["DATABASE_URL"] = database_url
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
        get_settings.cache_clear()
        settings = self.settings = settings.model_copy(update=updates)

        applied = migrate(database_url)
        logger.info("migrations", extra={"applied": applied})
        resources = provision(settings)
        database = PooledDatabase(database_url, max_size=settings.db_pool_max)
        self._stops.append(("database pool", database.close))
        context = self.context = RuntimeContext(settings=settings, database=database, aws=resources)

        services = [factory(context) for _, factory in factories]
        ensure_ports_free({port: service.name for service in services for port in service.ports()})
        for service in services:
            where = service.start()
            self._stops.append((service.name, service.stop))
            self.table.append((service.name, where))
        return context

    def stop(self) -> None:
        """Stop everything that started, newest first; keep going past failures."""
        while self._stops:
            name, stop = self._stops.pop()
            try:
                stop()
            except Exception:
                logger.exception("stopping a part failed", extra={"part": name})

    def describe(self) -> str:
        width = max((len(name) for name, _ in self.table), default=0)
        lines = [f"  {name.ljust(width)}  {where}" for name, where in self.table]
        return "Tekoa is running:\n" + "\n".join(lines) + "\nPress Ctrl-C to stop."


def run_until_signalled(platform: Platform) -> None:
    """Start the platform, print the table, and block until SIGINT or SIGTERM."""
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        platform.start()
        print(platform.describe(), flush=True)
        stopping.wait()
        print("Stopping…", flush=True)
    finally:
        platform.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

"""Shared fixtures: a real PostgreSQL (embedded, one per test worker), a migrated template
database cloned per test, a real moto server on loopback, and the API served over HTTP."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Tekoa")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
# Tests must never reach real AWS, whatever the developer's shell holds.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_var, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

DATA_DIR = Path(__file__).parent / "data"
TEMPLATE_DB = "tekoa_template"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_directory(prefix: str) -> Iterator[Path]:
    """A directory of this process alone, outside pytest's temp root.

    pytest's root is shared by every session on the machine: each new session makes it private
    again (mode 0700) and rotates old sessions out, which cuts off a server another session
    runs there as the `pgserver` user. A database of its own must not live there.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[str]:
    """Admin conninfo of a throwaway embedded PostgreSQL 16 for this test worker."""
    from tekoa.local.postgres import EmbeddedPostgres

    with private_directory("tekoa-test-pg-") as directory:
        server = EmbeddedPostgres(directory / "data", durable=False)
        admin = server.start()
        yield admin
        server.stop()


@pytest.fixture(scope="session")
def template_database(pg_admin: str) -> str:
    """A database migrated once; each test gets a copy (CREATE DATABASE … TEMPLATE)."""
    from tekoa.db.migrate import migrate
    from tekoa.local.postgres import ensure_database

    migrate(ensure_database(pg_admin, TEMPLATE_DB))
    return TEMPLATE_DB


@pytest.fixture
def database_url(pg_admin: str, template_database: str) -> Iterator[str]:
    """A fresh, fully migrated database of this test's own."""
    from tekoa.local.postgres import drop_database, ensure_database

    name = f"t_{uuid.uuid4().hex[:16]}"
    url = ensure_database(pg_admin, name, template=template_database)
    yield url
    drop_database(pg_admin, name)


@pytest.fixture
def empty_database_url(pg_admin: str) -> Iterator[str]:
    """A database with no migrations applied."""
    from tekoa.local.postgres import drop_database, ensure_database

    name = f"e_{uuid.uuid4().hex[:16]}"
    yield ensure_database(pg_admin, name)
    drop_database(pg_admin, name)


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """A real moto server on a free loopback port."""
    from tekoa.local.aws import LocalAwsEndpoint

    endpoint = LocalAwsEndpoint(port=free_port())
    url = endpoint.start()
    yield url
    endpoint.stop()


@pytest.fixture(scope="session")
def aws_settings(aws_endpoint: str) -> Any:
    """Settings pointing at the moto server, with the platform's resources provisioned."""
    from tekoa.local.aws import provision
    from tekoa.settings import load_settings

    settings = load_settings(stage="test", aws_endpoint_url=aws_endpoint, database_url=None)
    provision(settings)
    return settings


@pytest.fixture
def settings(aws_settings: Any, database_url: str) -> Any:
    """Complete settings for one test: its own database, the shared moto endpoint."""
    return aws_settings.model_copy(update={"database_url": database_url})


def use_verifier(api: Any, verifier: Any) -> None:
    """Have the running API (`api` fixture) verify broker credentials with `verifier`."""
    import dataclasses

    api.app.state.context = dataclasses.replace(api.app.state.context, credential_verifier=verifier)


class LiveServer:
    """An ASGI app served by uvicorn on a loopback port in a background thread (`config`: how
    the app wants to be served, `uvicorn.Config`'s signature without the app)."""

    def __init__(self, app: Any, config: Callable[..., Any] | None = None) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        make = config or partial(uvicorn.Config, app, lifespan="off")
        self.server = uvicorn.Server(make("127.0.0.1", self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def api(settings: Any) -> Iterator[Any]:
    """The real API over HTTP on loopback: an httpx client with base_url set."""
    import httpx

    from functions.api.app import create_app
    from functions.api.context import ApiContext
    from tekoa.db.connection import PooledDatabase

    database = PooledDatabase(settings.database_url, max_size=4)
    app = create_app(ApiContext.build(settings, database))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client
    database.close()

"""Every process the platform runs in AWS, in one registry: what it imports, how it is packaged,
and which database role it logs in as.

Constructs build their functions and images from these entries, the runtime-dependency test
imports every entry's start module in a clean interpreter that sees only its bundle, and the
Data stack creates one database login (and secret) per entry that has one. A new function is
one more entry here plus its construct; tests/infra fails while the two disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tekoa.db.connection import APP_ROLE, SERVICE_ROLE


@dataclass(frozen=True, slots=True)
class DatabaseLogin:
    """The PostgreSQL role a workload logs in as: no privileges of its own (NOINHERIT), only the
    right to switch into the group roles it needs per transaction, and a cap on its connections
    so that no single workload can exhaust the database (or the proxy's pool)."""

    role: str
    member_of: tuple[str, ...]
    connection_limit: int


@dataclass(frozen=True, slots=True)
class Workload:
    """One deployable process.

    - `module`: imported at start (a Lambda's handler module, or the container's main module).
    - `extras`: pyproject extras installed beside the base dependencies (each function installs
      only what it imports; the API must never pull numpy).
    - `package`: a zip built on this machine, or a container image built from `dockerfile`.
    - `sources`: repo path -> path inside the bundle (for images: what the Dockerfile copies
      into the interpreter's path).
    """

    name: str
    module: str
    extras: tuple[str, ...]
    package: Literal["zip", "image"]
    sources: dict[str, str] = field(default_factory=dict)
    dockerfile: str | None = None
    database_login: DatabaseLogin | None = None
    lambda_handler: bool = True
    image_command: tuple[str, ...] | None = None
    """For an image shared by several functions: the command that picks this one's handler."""

    @property
    def handler(self) -> str:
        """Lambda handler string (`module.handler`)."""
        return f"{self.module}.handler"

    @property
    def build_args(self) -> dict[str, str]:
        """Docker build arguments: the Dockerfile installs exactly these extras."""
        return {"EXTRAS": " ".join(self.extras)}


# The shared package sits at the root of every bundle so `import tekoa` works without a layer.
_TEKOA = {"layers/tekoa/tekoa": "tekoa"}
_FUNCTIONS = {"functions/__init__.py": "functions/__init__.py"}

API = Workload(
    name="api",
    module="functions.api.handler",
    extras=("api",),
    package="zip",
    sources={**_FUNCTIONS, "functions/api": "functions/api", **_TEKOA},
    # Requests act for one user (tekoa_app); sign-in look-ups act for the platform (tekoa_service).
    database_login=DatabaseLogin("tekoa_api", (APP_ROLE, SERVICE_ROLE), connection_limit=100),
)
WS_ROUTES = Workload(
    name="ws-routes",
    module="functions.api.websocket",
    extras=("api",),
    package="zip",
    sources={**_FUNCTIONS, "functions/api": "functions/api", **_TEKOA},
    # A connection is recorded as its user (tekoa_app); its owner is looked up by connection id
    # (tekoa_service, the only thing a route knows).
    database_login=DatabaseLogin("tekoa_ws", (APP_ROLE, SERVICE_ROLE), connection_limit=50),
)
PUSH = Workload(
    name="push",
    module="functions.push.handler",
    extras=(),
    package="zip",
    sources={**_FUNCTIONS, "functions/push": "functions/push", **_TEKOA},
    # Recipients of any user's event: the platform's own cross-tenant read (tekoa_service); the
    # position a fill moved is read as its owner (tekoa_app).
    database_login=DatabaseLogin("tekoa_push", (APP_ROLE, SERVICE_ROLE), connection_limit=20),
)
NOTIFY = Workload(
    name="notify",
    module="functions.notify.handler",
    extras=("api",),  # cryptography opens the sealed channel secrets
    package="zip",
    sources={**_FUNCTIONS, "functions/notify": "functions/notify", **_TEKOA},
    # Reads the event owner's channels and writes to their activity feed, as that user (tekoa_app);
    # the daily summary finds whom to tell across users (tekoa_service).
    database_login=DatabaseLogin("tekoa_notify", (APP_ROLE, SERVICE_ROLE), connection_limit=20),
)
MIGRATE = Workload(
    name="migrate",
    module="functions.migrate.handler",
    extras=(),
    package="zip",
    sources={**_FUNCTIONS, "functions/migrate": "functions/migrate", **_TEKOA},
    # Migrations own the schema: they run as the cluster's master user, and create the logins.
    database_login=None,
)
INGEST = Workload(
    name="ingest",
    module="functions.ingest.handler",
    extras=("compute", "exchange", "llm"),
    package="image",
    dockerfile="functions/ingest/Dockerfile",
    sources={**_FUNCTIONS, "functions/ingest": "functions/ingest", **_TEKOA},
    database_login=DatabaseLogin("tekoa_ingest", (SERVICE_ROLE,), connection_limit=10),
)
CHARTS = Workload(
    name="charts",
    module="functions.charts.handler",
    extras=("compute", "charts"),
    package="image",
    dockerfile="functions/charts/Dockerfile",
    sources={**_FUNCTIONS, "functions/charts": "functions/charts", **_TEKOA},
    # Every chart is read and written as its owner: render requests and trade events name the user.
    database_login=DatabaseLogin("tekoa_charts", (APP_ROLE,), connection_limit=10),
)
MARKET_STREAM = Workload(
    name="market-stream",
    module="tekoa.market.stream.service",
    extras=("compute", "exchange"),
    package="image",
    dockerfile="fargate/market-stream/Dockerfile",
    sources=dict(_TEKOA),
    database_login=DatabaseLogin("tekoa_market_stream", (SERVICE_ROLE,), connection_limit=10),
    lambda_handler=False,
)

MAINTENANCE = Workload(
    name="maintenance",
    module="functions.maintenance.handler",
    extras=(),
    package="zip",
    sources={**_FUNCTIONS, "functions/maintenance": "functions/maintenance", **_TEKOA},
    # Purges platform bookkeeping (idempotency keys, sign-in and sign-up attempts): service role.
    database_login=DatabaseLogin("tekoa_maintenance", (SERVICE_ROLE,), connection_limit=2),
)

_EXECUTION_SOURCES = {
    **_FUNCTIONS,
    "functions/executor": "functions/executor",
    "functions/reconciler": "functions/reconciler",
    **_TEKOA,
}
EXECUTOR = Workload(
    name="executor",
    module="functions.executor.handler",
    # The engine's fill model and protection kernels (numba) and ccxt for live accounts.
    extras=("compute", "exchange"),
    package="image",
    dockerfile="functions/executor/Dockerfile",
    sources=_EXECUTION_SOURCES,
    # Orders are booked as their owner (tekoa_app); publishing clears the shared outbox (tekoa_service).
    database_login=DatabaseLogin("tekoa_executor", (APP_ROLE, SERVICE_ROLE), connection_limit=50),
)
RECONCILER = Workload(
    name="reconciler",
    module="functions.reconciler.handler",
    extras=("compute", "exchange"),
    package="image",
    dockerfile="functions/executor/Dockerfile",
    sources=_EXECUTION_SOURCES,
    database_login=DatabaseLogin("tekoa_reconciler", (APP_ROLE, SERVICE_ROLE), connection_limit=5),
    image_command=("functions.reconciler.handler.handler",),
)

EVALUATOR = Workload(
    name="evaluator",
    module="functions.evaluator.handler",
    # The engine: indicators and kernels (numpy/numba).
    extras=("compute",),
    package="image",
    dockerfile="functions/evaluator/Dockerfile",
    sources={**_FUNCTIONS, "functions/evaluator": "functions/evaluator", **_TEKOA},
    # Works across tenants (every running bot): the service role only.
    database_login=DatabaseLogin("tekoa_evaluator", (SERVICE_ROLE,), connection_limit=20),
    # Named, not left to the Dockerfile's CMD: the schedule test finds the function by it.
    image_command=("functions.evaluator.handler.handler",),
)

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        API,
        WS_ROUTES,
        PUSH,
        NOTIFY,
        MIGRATE,
        INGEST,
        CHARTS,
        MARKET_STREAM,
        MAINTENANCE,
        EXECUTOR,
        RECONCILER,
        EVALUATOR,
    )
}
DATABASE_LOGINS: tuple[DatabaseLogin, ...] = tuple(
    w.database_login for w in WORKLOADS.values() if w.database_login is not None
)
